"""A missing, corrupt, tampered or inflating model: a clear reason, faces still found (all Unknown),
/readyz says why; and the tolerance the app names faces with."""

from __future__ import annotations

import io
import json
import pickle
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgeface import web_cli
from edgeface.config import AppConfig
from edgeface.inference import InferenceWorker
from edgeface.model import MAX_INFLATED_BYTES, ModelError, load_model, save_model
from edgeface.pipeline import Pipeline
from edgeface.values import UNKNOWN
from edgeface.web import create_app
from servers import face_frame, wait_until

from .conftest import whole_frame_scan

GIB = 1 << 30


def write_zip_bomb(path: Path, inflated: int = 2 * GIB) -> Path:
    """A valid npz whose `encodings.npy` is a float64 array of `inflated` bytes of zeros, deflated
    to ~1/1000 of that (written block by block: identical deflate blocks of 16 MiB of zeros)."""
    chunk = bytes(16 << 20)
    header = io.BytesIO()
    rows = inflated // (128 * 8)
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (rows, 128)}
    )
    head = header.getvalue()
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    blocks = (rows * 128 * 8) // len(chunk)
    last = deflate.flush(zlib.Z_FINISH)
    crc = zlib.crc32(head)
    for _ in range(blocks):
        crc = zlib.crc32(chunk, crc)
    size = len(head) + blocks * len(chunk)
    compressed = len(first) + blocks * len(block) + len(last)
    name = b"encodings.npy"
    zip64 = struct.pack("<HHQQ", 1, 16, size, compressed)  # sizes past 4 GiB's 32-bit fields
    with path.open("wb") as out:
        out.write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                45,
                0,
                8,
                0,
                0x21,
                crc,
                0xFFFFFFFF,
                0xFFFFFFFF,
                len(name),
                len(zip64),
            )
        )
        out.write(name + zip64 + first)
        for _ in range(blocks):
            out.write(block)
        out.write(last)
        directory = out.tell()
        out.write(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                45,
                45,
                0,
                8,
                0,
                0x21,
                crc,
                0xFFFFFFFF,
                0xFFFFFFFF,
                len(name),
                len(zip64),
                0,
                0,
                0,
                0,
                0,
            )
        )
        out.write(name + zip64)
        length = out.tell() - directory
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, length, directory, 0))
    return path


@pytest.fixture(scope="session")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_zip_bomb(tmp_path_factory.mktemp("bomb") / "model.data")


def bad_model(kind: str, directory: Path, good: Path) -> Path:
    path = directory / f"{kind}.data"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:300])
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"encodings": [], "names": []}))  # the seed's format: refused
    elif kind == "bomb":
        write_zip_bomb(path)
    elif kind == "tampered":
        data = bytearray(good.read_bytes())
        data[data.index("Barack Obama".encode("utf-32-le"))] ^= 1  # flip one bit of a stored name
        path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("kind", "reasons"),
    [
        ("truncated", ("truncated",)),
        ("pickle", ("pickle",)),
        ("tampered", ("damaged", "sha256")),
        ("bomb", ("refusing to inflate 2048.0 MiB",)),
    ],
)
def test_a_bad_model_file_names_every_face_unknown(
    kind: str, reasons: tuple[str, ...], tmp_path: Path, obama_model: Path, sample_photos: Path
) -> None:
    path = bad_model(kind, tmp_path, obama_model)
    worker = InferenceWorker(AppConfig(model_filename=path)).start()
    try:
        frame = face_frame(sample_photos)
        result = worker.infer(frame, whole_frame_scan(frame))
    finally:
        worker.stop()

    assert worker.model.error is not None
    assert str(path) in worker.model.error
    assert any(reason in worker.model.error for reason in reasons)
    assert len(result.found) == len(result.attempts) == 2
    assert all(attempt.candidates == {} for attempt in result.attempts)  # nobody near: Unknown


def test_missing_model_app_detects_faces_and_readyz_says_why(
    tmp_path: Path, video: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "model.data"
    config = AppConfig(
        model_filename=missing, video_stream_url=str(video), video_processing_fps=2, web_auth=False
    )
    pipeline = Pipeline(config).start()
    try:
        client = create_app(config, pipeline).test_client()
        status = wait_until(
            lambda: len((s := client.get("/api/status").get_json())["detections"]) == 2 and s,
            120,
            "both faces detected",
        )
        readyz = client.get("/readyz")
    finally:
        pipeline.stop()

    assert status["names"] == [UNKNOWN]
    assert len(status["detections"]) == 2
    assert status["model"]["error"] and str(missing) in status["model"]["error"]
    assert readyz.status_code == 503
    (reason,) = readyz.get_json()["reasons"]
    assert reason.startswith("model not loaded") and str(missing) in reason
    assert any("model not loaded" in record.getMessage() for record in caplog.records)
    assert np.isfinite(status["source"]["input_fps"])


def test_a_zip_bomb_is_refused_from_its_directory_before_inflating(zip_bomb: Path) -> None:
    import zipfile

    (member,) = zipfile.ZipFile(zip_bomb).infolist()  # a real archive: zipfile reads it
    assert member.file_size > 2 * GIB - 1024 and zip_bomb.stat().st_size < 4 << 20

    started = time.monotonic()
    with pytest.raises(ModelError) as refused:
        load_model(zip_bomb)
    seconds = time.monotonic() - started

    print(f"zip bomb refused in {seconds * 1000:.1f} ms: {refused.value}")
    assert seconds < 1.0
    assert str(refused.value) == (
        f"{zip_bomb}: refusing to inflate 2048.0 MiB from {zip_bomb.stat().st_size / (1 << 20):.1f} MiB on"
        f" disk (encodings.npy: 2048.0 MiB); an edgeface model inflates to at most"
        f" {MAX_INFLATED_BYTES / (1 << 20):.1f} MiB"
    )


def test_a_zip_bomb_leaves_the_app_running_with_unknown_faces_and_readyz_saying_why(
    zip_bomb: Path, video: Path
) -> None:
    config = AppConfig(
        model_filename=zip_bomb, video_stream_url=str(video), video_processing_fps=2, web_auth=False
    )
    pipeline = Pipeline(config)
    client = create_app(config, pipeline).test_client()
    pipeline.start()
    try:
        status = wait_until(
            lambda: len((s := client.get("/api/status").get_json())["detections"]) == 2 and s,
            120,
            "both faces detected",
        )
        # The first worker may detect before the second has said hello (readyz: "starting").
        wait_until(lambda: pipeline.pool.ready, 60, "every worker started")
        readyz, healthz = client.get("/readyz"), client.get("/healthz")
    finally:
        pipeline.stop()

    assert status["names"] == [UNKNOWN]
    assert readyz.status_code == 503
    (reason,) = readyz.get_json()["reasons"]
    assert reason.startswith(f"model not loaded: {zip_bomb}: refusing to inflate 2048.0 MiB")
    assert healthz.status_code == 200  # alive: a bad model is a readiness matter, not a restart


def model_with_tolerance(obama_model: Path, directory: Path, tolerance: float) -> Path:
    model = load_model(obama_model)
    path = directory / f"tolerance-{tolerance}.data"
    save_model(type(model)(model.encodings, model.names, {**model.metadata, "tolerance": tolerance}), path)
    return path


def recognize(model: Path, photo: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    import argparse

    parser = argparse.ArgumentParser(prog="edgeface")
    web_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["recognize", str(photo), "--model", str(model), "--json"])
    assert args.handler(args) == 0
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    return report


def test_faces_are_named_with_the_models_tolerance_unless_face_tolerance_is_set(
    obama_model: Path,
    sample_photos: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """obama2.jpg is 0.3-0.45 from obama.jpg: a model validated at 0.2 must not name it."""
    strict = model_with_tolerance(obama_model, tmp_path, 0.2)
    monkeypatch.delenv("FACE_TOLERANCE", raising=False)

    report = recognize(strict, sample_photos / "obama2.jpg", capsys)
    assert report["tolerance"] == 0.2
    assert [face["name"] for face in report["faces"]] == [UNKNOWN]  # type: ignore[attr-defined]

    monkeypatch.setenv("FACE_TOLERANCE", "0.6")
    report = recognize(strict, sample_photos / "obama2.jpg", capsys)
    assert report["tolerance"] == 0.6
    assert [face["name"] for face in report["faces"]] == ["Barack Obama"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("configured", "expected"),
    [(None, {"value": 0.45, "source": "model"}), (0.5, {"value": 0.5, "source": "FACE_TOLERANCE"})],
)
def test_api_status_reports_the_tolerance_in_use_and_where_it_came_from(
    configured: float | None,
    expected: dict[str, object],
    obama_model: Path,
    video: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = model_with_tolerance(obama_model, tmp_path, 0.45)
    config = AppConfig(
        model_filename=model,
        video_stream_url=str(video),
        face_tolerance=configured,
        inference_workers=1,
        web_auth=False,
    )
    pipeline = Pipeline(config)
    client = create_app(config, pipeline).test_client()
    pipeline.start()
    try:
        wait_until(lambda: client.get("/readyz").status_code == 200, 120, "the worker up")
        status = client.get("/api/status").get_json()
    finally:
        pipeline.stop()

    assert status["tolerance"] == expected
    overrides = [r.getMessage() for r in caplog.records if "overrides" in r.getMessage()]
    if configured is None:
        assert overrides == []
    else:
        assert (
            overrides == ["FACE_TOLERANCE=0.5 overrides the tolerance 0.45 the model was validated with"] * 1
        )
