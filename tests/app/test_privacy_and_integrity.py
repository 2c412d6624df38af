"""FACE_BLUR_UNKNOWN on a frame of real photos, and MODEL_SHA256 refusing a model file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from edgeface.annotator import annotate
from edgeface.config import AppConfig
from edgeface.detector import Detector
from edgeface.inference import analyse
from edgeface.model import ModelError, load_model
from edgeface.pipeline import Pipeline
from edgeface.recogniser import Recogniser
from edgeface.values import Box, Detection
from edgeface.web import create_app
from servers import face_frame, wait_until


@pytest.fixture(scope="module")
def scene(sample_photos: Path, obama_model: Path) -> tuple[np.ndarray, list[Detection]]:
    """The 1280x720 frame of Obama (known to the model) and Biden (Unknown), and its detections."""
    frame = face_frame(sample_photos)
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    detections = analyse(rgb, Detector(), Recogniser(load_model(obama_model), 0.6))
    assert sorted(item.match.known for item in detections) == [False, True]
    return frame, detections


def inside(image: np.ndarray, box: Box, inset: int = 4) -> np.ndarray:
    """The pixels inside `box`, clear of its drawn outline."""
    return image[box.top + inset : box.bottom - inset, box.left + inset : box.right - inset].astype(np.int16)


def detail(image: np.ndarray, box: Box) -> float:
    """Mean absolute difference between neighbouring pixels inside `box`: a face's edges."""
    return float(np.abs(np.diff(inside(image, box), axis=1)).mean())


def test_unknown_faces_are_blurred_and_known_faces_are_not(scene: tuple[np.ndarray, list[Detection]]) -> None:
    frame, detections = scene

    blurred = annotate(frame, detections, blur_unknown=True)
    plain = annotate(frame, detections)

    for detection in detections:
        change = np.abs(inside(blurred, detection.box) - inside(frame, detection.box)).mean()
        if detection.match.known:
            assert change == 0
        else:
            assert change > 8, f"mean change {change:.1f} inside the Unknown box"
            assert detail(blurred, detection.box) < detail(frame, detection.box) / 3
        assert np.array_equal(inside(plain, detection.box), inside(frame, detection.box))


def test_the_served_video_blurs_the_unknown_face_only(
    video: Path, obama_model: Path, sample_photos: Path
) -> None:
    import cv2

    config = AppConfig(
        model_filename=obama_model,
        video_stream_url=str(video),
        video_processing_fps=2,
        inference_workers=1,
        face_blur_unknown=True,
        web_auth=False,
    )
    pipeline = Pipeline(config).start()
    try:
        status = wait_until(
            lambda: (s := pipeline.status())["names"] == ["Barack Obama", "Unknown"] and s, 120, "both faces"
        )
        viewer = pipeline.broadcaster.stream()  # someone watches: frames are drawn and encoded
        next(viewer)
        latest = pipeline.broadcaster.latest()
        assert latest is not None
        served = pipeline.broadcaster.wait_newer(latest.number, 5)  # annotated with those faces
        assert served is not None
        viewer.close()
    finally:
        pipeline.stop()
    image = cv2.imdecode(np.frombuffer(served.jpeg, np.uint8), cv2.IMREAD_COLOR)
    source = face_frame(sample_photos)

    for face in status["detections"]:
        box = Box(**face["box"])
        ratio = detail(image, box) / detail(source, box)
        if face["known"]:
            assert ratio > 0.5, f"{face['name']}: {ratio:.2f} of the detail left"
        else:
            assert ratio < 0.3, f"{face['name']}: {ratio:.2f} of the detail left"


def test_the_boxes_and_labels_stay_drawn_over_the_blur(scene: tuple[np.ndarray, list[Detection]]) -> None:
    frame, detections = scene
    blurred, plain = annotate(frame, detections, blur_unknown=True), annotate(frame, detections)
    for detection in detections:
        box = detection.box
        assert np.array_equal(blurred[box.top, box.left : box.right], plain[box.top, box.left : box.right])


def test_a_model_file_whose_sha256_differs_is_refused(obama_model: Path) -> None:
    actual = hashlib.sha256(obama_model.read_bytes()).hexdigest()

    assert load_model(obama_model, actual.upper()).people == ("Barack Obama",)
    with pytest.raises(ModelError, match=f"file sha256 {actual} is not MODEL_SHA256 {'0' * 64}"):
        load_model(obama_model, "0" * 64)


def test_a_model_that_fails_model_sha256_leaves_readyz_503_saying_why(video: Path, obama_model: Path) -> None:
    config = AppConfig(
        model_filename=obama_model,
        video_stream_url=str(video),
        video_processing_fps=2,
        inference_workers=1,
        model_sha256="0" * 64,
        web_auth=False,
    )
    pipeline = Pipeline(config)
    client = create_app(config, pipeline).test_client()
    pipeline.start()
    try:
        answer = wait_until(
            lambda: (
                (r := client.get("/readyz")).status_code == 503
                and "MODEL_SHA256" in " ".join(r.get_json()["reasons"])
                and r
            ),
            120,
            "readyz naming MODEL_SHA256",
        )
        status = client.get("/api/status").get_json()
    finally:
        pipeline.stop()

    assert "is not MODEL_SHA256" in answer.get_json()["reasons"][0]
    assert status["model"]["version"] is None and "MODEL_SHA256" in status["model"]["error"]


def metrics_text(per_person: bool, detections: list[Detection]) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    from edgeface.metrics import CameraMetrics, MetricFamilies

    registry = CollectorRegistry()
    CameraMetrics(MetricFamilies(registry, per_person=per_person), "door").update(detections)
    return generate_latest(registry).decode()


def test_metrics_name_nobody_unless_per_person_metrics_are_on(
    scene: tuple[np.ndarray, list[Detection]],
) -> None:
    _, detections = scene
    by_default = metrics_text(AppConfig().metrics_per_person, detections)
    assert 'edgeface_faces_total{camera="door",name="known"} 1.0' in by_default
    assert 'edgeface_faces_total{camera="door",name="Unknown"} 1.0' in by_default
    assert "Barack Obama" not in by_default
    per_person = metrics_text(True, detections)
    assert 'edgeface_faces_total{camera="door",name="Barack Obama"} 1.0' in per_person
