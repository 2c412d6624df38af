"""A missing, corrupt or tampered model: a clear reason, faces still found (all Unknown), /readyz says why."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from edgeface.config import AppConfig
from edgeface.inference import InferenceWorker
from edgeface.pipeline import Pipeline
from edgeface.values import UNKNOWN
from edgeface.web import create_app
from servers import face_frame, wait_until


def bad_model(kind: str, directory: Path, good: Path) -> Path:
    path = directory / f"{kind}.data"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:300])
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"encodings": [], "names": []}))  # the seed's format: refused
    elif kind == "tampered":
        data = bytearray(good.read_bytes())
        data[data.index("Barack Obama".encode("utf-32-le"))] ^= 1  # flip one bit of a stored name
        path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("kind", "reasons"),
    [("truncated", ("truncated",)), ("pickle", ("pickle",)), ("tampered", ("damaged", "sha256"))],
)
def test_a_bad_model_file_names_every_face_unknown(
    kind: str, reasons: tuple[str, ...], tmp_path: Path, obama_model: Path, sample_photos: Path
) -> None:
    path = bad_model(kind, tmp_path, obama_model)
    worker = InferenceWorker(AppConfig(model_filename=path)).start()
    try:
        result = worker.infer(face_frame(sample_photos))
    finally:
        worker.stop()

    assert worker.model.error is not None
    assert str(path) in worker.model.error
    assert any(reason in worker.model.error for reason in reasons)
    assert len(result.detections) == 2
    assert {item.match.name for item in result.detections} == {UNKNOWN}


def test_missing_model_app_detects_faces_and_readyz_says_why(
    tmp_path: Path, video: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "model.data"
    config = AppConfig(model_filename=missing, video_stream_url=str(video), video_processing_fps=2)
    pipeline = Pipeline(config).start()
    try:
        client = create_app(config, pipeline).test_client()
        status = wait_until(
            lambda: (s := client.get("/api/status").get_json())["detections"] and s, 120, "faces detected"
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
