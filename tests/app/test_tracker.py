"""The tracker on real photos: names stay stable between full detections, faces that move are
followed, a new face is found and encoded, and names are recomputed once they are old.

The clock is a plain number the test advances, so no assertion depends on how fast this machine is.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeface.detector import Detector, overlap
from edgeface.model import load_model
from edgeface.recogniser import Recogniser
from edgeface.tracker import TrackedResult, Tracker
from edgeface.values import Box
from servers import face_frame


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def frame(sample_photos: Path) -> np.ndarray:
    """RGB 1280x720: Obama (~90 px face, left) and Biden (~63 px, right) on grey."""
    return cv2.cvtColor(face_frame(sample_photos), cv2.COLOR_BGR2RGB)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(obama_model: Path, clock: Clock) -> Tracker:
    return Tracker(Detector(), Recogniser(load_model(obama_model)), track_seconds=1.0, clock=clock)


def names(result: TrackedResult) -> list[str]:
    return [item.match.name for item in result.detections]


def test_names_stay_stable_and_are_not_re_encoded_between_full_detections(
    tracker: Tracker, clock: Clock, frame: np.ndarray
) -> None:
    first = tracker.analyse(frame)
    assert (first.full_frame, first.encoded, names(first)) == (True, 2, ["Barack Obama", "Unknown"])

    moved = np.roll(frame, (4, 6), axis=(0, 1))  # the faces move 6 px right and 4 px down
    for step in range(1, 10):
        clock.now += 0.1
        later = tracker.analyse(moved if step % 2 else frame)
        assert (later.full_frame, later.encoded, names(later)) == (False, 0, ["Barack Obama", "Unknown"])
        for old, new in zip(first.detections, later.detections, strict=True):
            assert new.match == old.match  # the name and distance of the encoding are kept
            assert overlap(old.box, new.box) > 0.5  # the box is detected afresh, near the old one


def test_old_names_are_recomputed_with_a_full_detection(
    tracker: Tracker, clock: Clock, frame: np.ndarray
) -> None:
    tracker.analyse(frame)
    clock.now += 1.0
    again = tracker.analyse(frame)
    assert (again.full_frame, again.encoded, names(again)) == (True, 2, ["Barack Obama", "Unknown"])


def test_a_new_face_is_found_by_the_next_full_detection_and_encoded(
    tracker: Tracker, clock: Clock, frame: np.ndarray
) -> None:
    biden = Detector().detect(frame)[1]
    alone = frame.copy()
    alone[biden.top - 40 : biden.bottom + 40, biden.left - 40 : biden.right + 40] = 96  # Obama only
    assert names(tracker.analyse(alone)) == ["Barack Obama"]

    clock.now += 0.5
    between = tracker.analyse(frame)  # Biden walks in: only the regions of known faces are scanned
    assert (between.encoded, names(between)) == (0, ["Barack Obama"])

    clock.now += 0.5
    full = tracker.analyse(frame)
    assert full.full_frame and names(full) == ["Barack Obama", "Unknown"]
    assert full.encoded == 2


def test_a_face_lost_around_its_box_makes_the_same_update_scan_the_whole_frame(
    tracker: Tracker, clock: Clock, frame: np.ndarray
) -> None:
    tracker.analyse(frame)
    clock.now += 0.1
    empty = tracker.analyse(np.full_like(frame, 96))
    assert (empty.full_frame, empty.detections) == (True, [])
    clock.now += 0.1
    back = tracker.analyse(frame)
    assert (back.full_frame, back.encoded, names(back)) == (True, 2, ["Barack Obama", "Unknown"])

    clock.now += 0.1
    obama = back.detections[0].box
    left = frame.copy()
    left[obama.top - 40 : obama.bottom + 40, obama.left - 40 : obama.right + 40] = 96  # Obama walks off
    rest = tracker.analyse(left)
    assert (rest.full_frame, rest.encoded, names(rest)) == (True, 0, ["Unknown"])  # Biden keeps his name


def test_tracking_off_detects_and_encodes_every_update(
    obama_model: Path, clock: Clock, frame: np.ndarray
) -> None:
    tracker = Tracker(Detector(), Recogniser(load_model(obama_model)), track_seconds=0.0, clock=clock)
    for _ in range(2):
        result = tracker.analyse(frame)
        assert (result.full_frame, result.encoded, names(result)) == (True, 2, ["Barack Obama", "Unknown"])


def test_overlap_is_intersection_over_union() -> None:
    box = Box(top=0, right=10, bottom=10, left=0)
    assert overlap(box, box) == 1.0
    assert overlap(box, Box(top=0, right=15, bottom=10, left=5)) == pytest.approx(50 / 150)
    assert overlap(box, Box(top=20, right=30, bottom=30, left=20)) == 0.0
    with pytest.raises(ValueError, match="track_seconds"):
        Tracker(Detector(), Recogniser(None), track_seconds=-1.0)


def test_working_alone_a_faces_name_rests_on_all_its_attempts(
    tracker: Tracker, clock: Clock, frame: np.ndarray
) -> None:
    for attempts in (1, 2, 3):  # one full detection and encoding per track_seconds
        obama, biden = (item.match for item in tracker.analyse(frame).detections)
        assert (obama.name, obama.attempts) == ("Barack Obama", attempts)
        assert (biden.name, biden.attempts) == ("Unknown", attempts)
        clock.now += 1.0
