"""Detector, recogniser and annotator on a 1280x720 frame of real photos (faces ~90 and ~63 px)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeface.annotator import KNOWN_COLOUR, UNKNOWN_COLOUR, annotate, no_signal_frame
from edgeface.detector import Detector
from edgeface.inference import analyse
from edgeface.model import load_model
from edgeface.recogniser import Recogniser
from edgeface.values import UNKNOWN, Detection
from servers import face_frame


@pytest.fixture(scope="module")
def frame(sample_photos: Path) -> np.ndarray:
    return face_frame(sample_photos)


@pytest.fixture(scope="module")
def rgb(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frame[:, :, ::-1])


def test_default_settings_find_both_small_faces(rgb: np.ndarray) -> None:
    full_scale = Detector("hog", 1.0, 1).detect(rgb)
    assert sorted(box.height for box in full_scale) == pytest.approx([63, 90], abs=4)

    boxes = Detector().detect(rgb)

    assert len(boxes) == 2
    for found, reference in zip(boxes, full_scale, strict=True):
        assert abs(found.top - reference.top) < 15 and abs(found.left - reference.left) < 15


def test_the_seeds_default_ratio_finds_no_face(rgb: np.ndarray) -> None:
    """Why FACE_RATIO's default departs from the seed's 0.25."""
    assert Detector("hog", 0.25, 1).detect(rgb) == []


def test_the_detector_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="yolo"):
        Detector("yolo")
    with pytest.raises(ValueError, match="ratio"):
        Detector(ratio=0)


def recognise(rgb: np.ndarray, model_path: Path) -> list[Detection]:
    return analyse(rgb, Detector(), Recogniser(load_model(model_path)))


def border_colour(image: np.ndarray, detection: Detection) -> tuple[int, int, int]:
    """The BGR colour drawn on the middle of the box's left edge."""
    box = detection.box
    b, g, r = image[(box.top + box.bottom) // 2, box.left]
    return (int(b), int(g), int(r))


def test_known_face_is_named_and_drawn_green(rgb: np.ndarray, frame: np.ndarray, obama_model: Path) -> None:
    detections = recognise(rgb, obama_model)
    (obama,) = [item for item in detections if item.match.known]
    assert obama.match.name == "Barack Obama"
    assert obama.box.height > 80  # the larger face

    annotated = annotate(frame, detections)

    assert border_colour(annotated, obama) == KNOWN_COLOUR
    assert border_colour(frame, obama) != KNOWN_COLOUR  # drawn on a copy; the frame is untouched


def test_unknown_face_is_drawn_red(rgb: np.ndarray, frame: np.ndarray, obama_model: Path) -> None:
    detections = recognise(rgb, obama_model)
    (stranger,) = [item for item in detections if not item.match.known]
    assert stranger.match.name == UNKNOWN
    assert stranger.match.distance is not None and stranger.match.distance > 0.6

    annotated = annotate(frame, detections)

    assert border_colour(annotated, stranger) == UNKNOWN_COLOUR
    box = stranger.box
    label = annotated[box.bottom + 2 : box.bottom + 18, box.left : box.right]
    red = np.all(label == UNKNOWN_COLOUR, axis=2).mean()
    white = np.all(label > 200, axis=2).mean()
    assert red > 0.4 and white > 0.02  # a red bar with the name written in it


def test_colour_order_matters_for_dlib(frame: np.ndarray, obama_model: Path) -> None:
    """The pipeline converts BGR to RGB: the same frame fed as BGR matches Obama less closely."""
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    right = next(d for d in recognise(rgb, obama_model) if d.box.height > 80)
    wrong = [d for d in recognise(frame, obama_model) if d.box.height > 80]
    assert right.match.distance is not None
    assert not wrong or (wrong[0].match.distance or 1.0) > right.match.distance


def test_no_signal_frame_has_the_requested_size() -> None:
    image = no_signal_frame((640, 360), "stream lost")
    assert image.shape == (360, 640, 3)
    assert image.max() > 150  # the text is drawn
