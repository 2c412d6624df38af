"""What the face detector really runs on, probed in the worker: said in its hello, /api/status,
/readyz and `edgeface doctor`; FACE_REQUIRE_CUDA=on turns /readyz 503 on the CPU, not /healthz.

This machine's dlib has no CUDA (the `no_cuda` fixture skips elsewhere): every detector here runs on
the CPU, which is what these tests assert.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from edgeface import web_cli
from edgeface.config import AppConfig, ConfigError, load_config
from edgeface.detector import DetectorBackend, probe_backend, runnable
from edgeface.inference import InferenceWorker
from edgeface.pipeline import Pipeline
from edgeface.status import NOT_PROBED
from edgeface.web import create_app
from servers import face_crop, free_port, wait_until

from .conftest import config_without_stream, whole_frame_scan

DETECTOR_FIELDS = {"model", "cuda", "devices", "required", "problem"}

MakeApp = Callable[..., tuple[Pipeline, FlaskClient]]


@pytest.fixture(scope="module", autouse=True)
def no_cuda() -> None:
    import dlib

    if dlib.DLIB_USE_CUDA:
        pytest.skip("these tests assert what runs where dlib has no CUDA")


def doctor(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edgeface")
    web_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["doctor", *argv])
    result: int = args.handler(args)
    return result


@pytest.fixture
def app_without_stream(obama_model: Path) -> Iterator[MakeApp]:
    """Starts apps with one worker and no stream (nothing listens at its address), each once its
    worker said hello: the worker idles, no frame costs a detection. Stopped after the test."""
    started: list[Pipeline] = []

    def make(**settings: object) -> tuple[Pipeline, FlaskClient]:
        config = config_without_stream(obama_model, **settings)
        pipeline = Pipeline(config)
        client = create_app(config, pipeline).test_client()
        started.append(pipeline.start())
        wait_until(lambda: pipeline.backend is not None, 120, "the worker's hello")
        return pipeline, client

    yield make
    for pipeline in started:
        pipeline.stop()


def test_hog_runs_on_the_cpu_without_a_problem() -> None:
    backend = probe_backend("hog")

    assert (backend.model, backend.cuda, backend.devices, backend.dlib_cuda) == ("hog", False, 0, False)
    assert backend.describe() == "hog on the CPU"
    assert backend.problem(required=False) is None
    assert backend.problem(required=True) == (
        "FACE_REQUIRE_CUDA=on but the detector runs on the CPU: FACE_LOC_MODEL=hog, dlib's HOG is CPU-only"
    )


def test_cnn_without_cuda_in_dlib_runs_on_the_cpu_with_a_problem() -> None:
    backend = probe_backend("cnn")

    assert backend == DetectorBackend("cnn", cuda=False, devices=0, dlib_cuda=False)
    assert backend.describe() == "cnn on the CPU (dlib built without CUDA)"
    problem = backend.problem(required=False)
    assert problem is not None
    assert problem.startswith("FACE_LOC_MODEL=cnn runs on the CPU (dlib built without CUDA)")
    assert "too slow for live video" in problem
    assert backend.problem(required=True) == (
        "FACE_REQUIRE_CUDA=on but the detector runs on the CPU: FACE_LOC_MODEL=cnn, dlib built without CUDA"
    )


def test_a_cnn_on_a_device_is_cuda_in_words_and_hog_beside_one_is_not() -> None:
    backend = DetectorBackend("hog", cuda=False, devices=1, dlib_cuda=True)  # as a Jetson's hog probes

    assert backend.describe() == "hog on the CPU"
    assert DetectorBackend("cnn", cuda=True, devices=1, dlib_cuda=True).describe() == "cnn on CUDA (1 device)"
    assert DetectorBackend("cnn", cuda=True, devices=1, dlib_cuda=True).problem(required=True) is None


def test_a_cuda_dlib_without_a_device_detects_with_hog_in_place_of_cnn() -> None:
    """A Jetson's pod without its GPU: dlib built with CUDA cannot count a device, and its CNN runs
    only on CUDA. HOG stands in rather than the worker dying on its first detection (a restart
    loop); readiness fails only with FACE_REQUIRE_CUDA=on."""
    error = "Error while calling cudaGetDeviceCount(&num_devices): CUDA driver version is insufficient"
    probed = DetectorBackend("cnn", cuda=False, devices=0, dlib_cuda=True, cuda_error=error)

    backend = runnable(probed)

    assert (backend.model, backend.instead_of, backend.cuda) == ("hog", "cnn", False)
    assert (
        backend.describe()
        == f"hog on the CPU, in place of cnn (dlib built with CUDA but sees no device: {error})"
    )
    assert backend.problem(required=False) == (
        f"FACE_LOC_MODEL=cnn cannot run here (dlib built with CUDA but sees no device: {error}):"
        " hog detects in its place, on the CPU"
    )
    assert backend.problem(required=True) == (
        "FACE_REQUIRE_CUDA=on but the detector runs on the CPU: FACE_LOC_MODEL=cnn, dlib built with CUDA"
        f" but sees no device: {error}; hog detects in its place"
    )
    # What can run is kept: a CNN on CUDA, a CNN of a dlib without CUDA (on the CPU), HOG.
    for kept in (
        DetectorBackend("cnn", cuda=True, devices=1, dlib_cuda=True),
        DetectorBackend("cnn", cuda=False, devices=0, dlib_cuda=False),
        DetectorBackend("hog", cuda=False, devices=0, dlib_cuda=True, cuda_error=error),
    ):
        assert runnable(kept) == kept


def test_a_cnn_worker_says_in_its_hello_that_it_runs_on_the_cpu_and_detects_there(
    obama_model: Path, sample_photos: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edgeface")
    worker = InferenceWorker(AppConfig(model_filename=obama_model, face_loc_model="cnn", face_ratio=0.5))
    assert worker.backend is None  # nothing is probed in this (the web) process
    worker.start()
    try:
        image = face_crop(sample_photos / "obama.jpg", 80)  # ~256x256: a CNN pass on the CPU
        result = worker.infer(image, whole_frame_scan(image))
    finally:
        worker.stop()

    assert worker.backend == DetectorBackend("cnn", cuda=False, devices=0, dlib_cuda=False)
    (attempt,) = result.attempts
    assert attempt.candidates["Barack Obama"] < 0.6
    (warning,) = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warning.startswith("FACE_LOC_MODEL=cnn runs on the CPU (dlib built without CUDA)")


@pytest.mark.parametrize(
    ("model", "found"), [("hog", "dlib's HOG is CPU-only"), ("cnn", "dlib built without CUDA")]
)
def test_face_require_cuda_makes_readyz_503_naming_it_while_healthz_stays_200(
    model: str, found: str, app_without_stream: MakeApp
) -> None:
    _, client = app_without_stream(face_loc_model=model, face_require_cuda=True)

    readyz, healthz = client.get("/readyz"), client.get("/healthz")

    reason = f"FACE_REQUIRE_CUDA=on but the detector runs on the CPU: FACE_LOC_MODEL={model}, {found}"
    assert readyz.status_code == 503
    body = readyz.get_json()
    assert body["ready"] is False and body["reasons"] == [reason]
    assert body["detector"] == {
        "model": model,
        "cuda": False,
        "devices": 0,
        "required": True,
        "problem": reason,
    }
    assert healthz.status_code == 200 and healthz.get_json() == {"status": "ok"}
    assert client.get("/api/status").get_json()["detector"] == body["detector"]


def test_cnn_on_the_cpu_is_ready_and_status_says_where_it_runs(app_without_stream: MakeApp) -> None:
    _, client = app_without_stream(face_loc_model="cnn")

    readyz = client.get("/readyz")
    detector = client.get("/api/status").get_json()["detector"]

    assert readyz.status_code == 200
    assert readyz.get_json()["ready"] is True and readyz.get_json()["model"] == {"version": "2401020304"}
    assert readyz.get_json()["detector"] == detector
    assert set(detector) == DETECTOR_FIELDS
    assert (detector["model"], detector["cuda"], detector["devices"], detector["required"]) == (
        "cnn",
        False,
        0,
        False,
    )
    assert detector["problem"].startswith("FACE_LOC_MODEL=cnn runs on the CPU")


def test_before_the_workers_hello_the_detector_is_the_configured_one_not_yet_probed(
    obama_model: Path,
) -> None:
    config = AppConfig(model_filename=obama_model, face_loc_model="cnn", web_auth=False)
    client = create_app(config, Pipeline(config)).test_client()  # never started

    readyz = client.get("/readyz")

    assert readyz.status_code == 503
    expected = {"model": "cnn", "cuda": False, "devices": 0, "required": False, "problem": NOT_PROBED}
    assert readyz.get_json()["detector"] == expected
    assert client.get("/api/status").get_json()["detector"] == expected


def test_doctor_says_what_the_detector_runs_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACE_LOC_MODEL", "cnn")
    monkeypatch.delenv("FACE_REQUIRE_CUDA", raising=False)

    assert doctor(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["detector"]) == DETECTOR_FIELDS
    assert report["detector"]["model"] == "cnn" and report["detector"]["cuda"] is False
    assert report["detector"]["problem"].startswith("FACE_LOC_MODEL=cnn runs on the CPU")
    assert report["detector_runs_on"] == "cnn on the CPU (dlib built without CUDA)"

    assert doctor([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "detector             cnn on the CPU (dlib built without CUDA)" in lines


def test_doctor_exits_non_zero_when_cuda_is_required_and_absent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACE_LOC_MODEL", "cnn")
    monkeypatch.setenv("FACE_REQUIRE_CUDA", "on")

    assert doctor(["--json"]) == 1
    captured = capsys.readouterr()
    reason = (
        "FACE_REQUIRE_CUDA=on but the detector runs on the CPU: FACE_LOC_MODEL=cnn, dlib built without CUDA"
    )
    assert json.loads(captured.out)["detector"] == {
        "model": "cnn",
        "cuda": False,
        "devices": 0,
        "required": True,
        "problem": reason,
    }
    assert captured.err.strip() == f"edgeface doctor: {reason}"


def test_face_require_cuda_is_an_on_off_switch_naming_itself_when_wrong() -> None:
    assert load_config({}).face_require_cuda is False
    assert load_config({"FACE_REQUIRE_CUDA": "on"}).face_require_cuda is True

    with pytest.raises(ConfigError) as raised:
        load_config({"FACE_REQUIRE_CUDA": "maybe"})
    assert str(raised.value) == "FACE_REQUIRE_CUDA='maybe' is invalid: expected on or off"


WEB_PROCESS = """
import json, sys, time
from edgeface.config import AppConfig
from edgeface.pipeline import Pipeline
from edgeface.web import create_app

config = AppConfig(model_filename=sys.argv[1], video_stream_url=sys.argv[2], inference_workers=1,
                   face_loc_model="cnn", web_auth=False)
pipeline = Pipeline(config).start()
client = create_app(config, pipeline).test_client()
deadline = time.monotonic() + 120
while pipeline.backend is None and time.monotonic() < deadline:
    time.sleep(0.1)
detector = client.get("/api/status").get_json()["detector"]
pipeline.stop()
print(json.dumps({"detector": detector, "dlib_loaded": "dlib" in sys.modules}))
"""


def test_the_web_process_never_loads_dlib_the_worker_probes_for_it(obama_model: Path) -> None:
    """CUDA does not survive a fork and the web process must open none: it learns where the
    detector runs from its worker's hello, with dlib never imported there."""
    stream = f"rtmp://127.0.0.1:{free_port()}/live/none"
    run = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, str(obama_model), stream],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    assert report["detector"]["model"] == "cnn" and report["detector"]["cuda"] is False
    assert report["detector"]["problem"].startswith("FACE_LOC_MODEL=cnn runs on the CPU")  # probed
    assert report["dlib_loaded"] is False
