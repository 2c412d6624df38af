"""Finding and following faces at the default settings, on real photos: a 45 px face is found,
followed when it moves, and keeps its name and votes; the scanner looks where the picture changed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeface.config import AppConfig
from edgeface.detector import Detector
from edgeface.model import load_model
from edgeface.pipeline import Pipeline
from edgeface.recogniser import Recogniser, encode_faces
from edgeface.scanning import (
    LONGEST_REST,
    ScanBudget,
    ScanPlanner,
    SceneWatch,
    StillFaces,
    halves,
    pieces,
)
from edgeface.source import Frame
from edgeface.tracks import CLAIM_SECONDS, HOLD_SECONDS, LOST_SECONDS, RETRY_SECONDS, FaceTracks
from edgeface.values import UNKNOWN, Box
from servers import face_crop


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def small_face_frame(photos: Path, x: int = 400, y: int = 300, height: int = 45) -> np.ndarray:
    """BGR 1280x720 on grey with Obama's face `height` px tall at about (x, y)."""
    frame = np.full((720, 1280, 3), 96, dtype=np.uint8)
    crop = face_crop(photos / "obama.jpg", height)
    frame[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
    return frame


def tracking(model: Path) -> tuple[Clock, FaceTracks, Recogniser]:
    clock = Clock()
    return clock, FaceTracks(named=0.6, min_size=40, clock=clock), Recogniser(load_model(model))


@pytest.fixture(scope="module")
def detector() -> Detector:
    config = AppConfig()
    return Detector(config.face_loc_model, config.face_ratio, config.face_loc_ntu)


WHOLE = Box(0, 1280, 720, 0)
NOBODY = Recogniser(None)


def scan(
    tracks: FaceTracks, detector: Detector, recogniser: Recogniser, bgr: np.ndarray, number: int
) -> None:
    """What the scanning worker does with a ScanJob of the whole frame, in process."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    found = detector.detect_in(rgb, [WHOLE])
    candidates = recogniser.candidates(encode_faces(rgb, found))
    tracks.scanned(number, found, [(None, box, near) for box, near in zip(found, candidates, strict=True)])


def follow(tracks: FaceTracks, detector: Detector, bgr: np.ndarray, number: int) -> None:
    """What the following worker does with a FollowJob, in process."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    regions = tracks.follow_regions(number, rgb.shape[:2])
    tracks.followed(
        number, {item.track: detector.detect_at(rgb, item.region, item.scale) for item in regions}
    )


def test_a_45_px_face_is_found_at_the_default_settings(sample_photos: Path, detector: Detector) -> None:
    frame = small_face_frame(sample_photos)
    plan = ScanPlanner().plan(frame, [])
    assert plan.whole and plan.regions == [Box(0, 1280, 720, 0)]  # the first frame is scanned whole

    (box,) = detector.detect_in(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), plan.regions)

    assert 38 <= box.height <= 52


def test_a_small_face_is_followed_as_it_moves_and_keeps_its_name(
    sample_photos: Path, detector: Detector, obama_model: Path
) -> None:
    clock, tracks, recogniser = tracking(obama_model)
    first = small_face_frame(sample_photos, height=48)
    scan(tracks, detector, recogniser, first, 1)
    (named,) = tracks.shown()
    assert named.match.name == "Barack Obama" and named.match.score is not None

    for step in range(1, 6):  # 12 px a frame to the right
        clock.now += 1 / 15
        follow(tracks, detector, small_face_frame(sample_photos, x=400 + 12 * step, height=48), 1 + step)

    (moved,) = tracks.shown()
    assert moved.match == named.match
    assert moved.box.left - named.box.left == pytest.approx(60, abs=8)


def test_a_scan_of_an_older_frame_votes_for_the_face_that_moved_since(
    sample_photos: Path, detector: Detector, obama_model: Path
) -> None:
    _, tracks, recogniser = tracking(obama_model)
    scan(tracks, detector, recogniser, small_face_frame(sample_photos, height=60), 1)
    for step in range(1, 5):
        follow(tracks, detector, small_face_frame(sample_photos, x=400 + 20 * step, height=60), 1 + step)

    # A scan made on frame 2 arrives now: its face is where the track was on frame 2, not now.
    scan(tracks, detector, recogniser, small_face_frame(sample_photos, x=420, height=60), 2)

    (face,) = tracks.shown()
    assert face.match.name == "Barack Obama" and face.match.attempts == 2


def test_a_lost_face_is_held_briefly_then_dropped(sample_photos: Path, detector: Detector) -> None:
    clock = Clock()
    tracks = FaceTracks(named=0.6, min_size=40, clock=clock)
    scan(tracks, detector, NOBODY, small_face_frame(sample_photos, height=60), 1)
    empty = np.full((720, 1280, 3), 96, dtype=np.uint8)

    clock.now += HOLD_SECONDS / 2
    follow(tracks, detector, empty, 2)
    assert [item.match.name for item in tracks.shown()] == [UNKNOWN]  # one frame without it: still shown

    clock.now += LOST_SECONDS
    follow(tracks, detector, empty, 3)
    assert tracks.shown() == [] and tracks.boxes() == []


def test_faces_smaller_than_the_minimum_size_are_not_tracked(sample_photos: Path, detector: Detector) -> None:
    tracks = FaceTracks(named=0.6, min_size=80, clock=Clock())
    scan(tracks, detector, NOBODY, small_face_frame(sample_photos, height=60), 1)

    assert tracks.boxes() == []


def test_the_scanner_looks_where_the_picture_changed_and_rescans_after_a_cut(sample_photos: Path) -> None:
    planner = ScanPlanner()
    still = small_face_frame(sample_photos, x=400)
    planner.plan(still, [])

    idle = planner.plan(still, [])
    assert idle.idle and not idle.whole  # nothing changed: one tile of the rotation

    walked_in = still.copy()
    walked_in[300:420, 1000:1100] = small_face_frame(sample_photos, x=1000)[300:420, 1000:1100]
    changed = planner.plan(walked_in, [])
    assert not changed.whole and len(changed.regions) == 1
    (region,) = changed.regions
    assert region.left <= 1000 and region.right >= 1100 and region.width < 400

    cut = planner.plan(np.full_like(still, 200), [])
    assert cut.whole and cut.regions == [Box(0, 1280, 720, 0)]


def test_a_scene_cut_is_told_from_one_frame_to_the_next_but_a_face_walking_in_is_not(
    sample_photos: Path,
) -> None:
    watch = SceneWatch()
    still = small_face_frame(sample_photos, x=400)
    assert watch.cut(still)  # the first frame starts a scene
    walked_in = small_face_frame(sample_photos, x=460, height=60)
    assert not watch.cut(walked_in)
    assert watch.cut(np.full_like(still, 200))


def test_a_cut_drops_every_face_and_ignores_scans_of_the_scene_before(
    sample_photos: Path, detector: Detector
) -> None:
    tracks = FaceTracks(named=0.6, min_size=40, clock=Clock())
    frame = small_face_frame(sample_photos, height=60)
    scan(tracks, detector, NOBODY, frame, 1)
    assert len(tracks.boxes()) == 1

    tracks.cut(5)
    scan(tracks, detector, NOBODY, frame, 4)  # a scan of frame 4 arriving after the cut on 5

    assert tracks.boxes() == [] and tracks.shown() == []


def test_a_face_found_frames_ago_is_looked_for_further_away(sample_photos: Path, detector: Detector) -> None:
    tracks = FaceTracks(named=0.6, min_size=40, clock=Clock())
    scan(tracks, detector, NOBODY, small_face_frame(sample_photos, height=45), 1)

    (near,) = tracks.follow_regions(2, (720, 1280))
    (far,) = tracks.follow_regions(11, (720, 1280))  # the scan's find is 10 frames old

    assert far.region.width > near.region.width * 1.5


def test_a_whole_frame_is_shared_in_two_halves_that_each_hold_a_200_px_face_on_the_seam() -> None:
    left, right = halves(WHOLE)
    assert left.left == 0 and right.right == 1280 and left.right - right.left >= 200
    assert left.width < 0.65 * 1280 and right.width < 0.65 * 1280


def test_without_a_patrol_an_unchanged_frame_is_not_scanned_and_a_slow_change_adds_up(
    sample_photos: Path,
) -> None:
    planner = ScanPlanner()
    still = small_face_frame(sample_photos, x=400)
    planner.plan(still, [])
    assert planner.plan(still, [], patrol=False).regions == []  # nothing to scan on this frame

    halfway, there = still.copy(), still.copy()
    halfway[300:420, 1000:1100] = 96 + 12  # each step too small to count on its own ...
    there[300:420, 1000:1100] = 96 + 24
    assert planner.plan(halfway, [], patrol=False).regions == []
    (region,) = planner.plan(there, [], patrol=False).regions  # ... but both are, since the last scan
    assert region.left <= 1000 and region.right >= 1100


def test_the_scanner_scans_at_once_after_a_quiet_while_and_half_the_time_while_busy() -> None:
    clock = Clock()
    budget = ScanBudget(duty=0.5, burst=0.6, clock=clock)
    clock.now += 0.1
    assert budget.spend(0.1) == 0.0  # a face walked in after a quiet while: no rest
    clock.now += 0.3
    assert budget.spend(0.3) == 0.0  # still within the burst

    rests = []
    for _ in range(20):  # a pan: whole-frame scans back to back
        clock.now += 0.35
        rest = budget.spend(0.35)
        clock.now += rest
        rests.append(rest)
    assert rests[-1] == pytest.approx(0.35)  # as long as it scanned: half a core

    assert budget.spend(2.0) == LONGEST_REST  # one long scan does not keep it away for long
    budget.forgive()  # a new scene
    assert budget.spend(0.0) == 0.0


def test_a_new_scenes_halves_go_to_whoever_is_free_first(sample_photos: Path) -> None:
    scene = Pipeline(AppConfig(inference_workers=2)).scene
    frame = small_face_frame(sample_photos)

    first = scene.part(frame)
    second = scene.part(frame)  # the other worker is busy: the same one takes the other half

    assert first and second and scene.part(frame) is None
    assert {first[1], second[1]} == set(halves(WHOLE))
    assert scene.plan(frame, [], patrol=False).regions == []  # later plans compare with it
    assert scene.share.busy()  # until both are reported, nobody scans the scene again
    scene.share.done(first[0])
    assert scene.share.busy() and not scene.share.wait(0.01)
    scene.share.done(second[0])
    assert not scene.share.busy() and scene.share.wait(0.0)

    scene.part(frame)  # nothing to take: the scene was shared out
    scene.begin(10)
    taken = scene.part(frame)
    assert taken and taken[1] in halves(WHOLE)
    scene.begin(20)  # a cut while a part is out: that part no longer holds anyone up
    assert not scene.share.busy()
    scene.share.done(taken[0])  # its late report changes nothing
    assert not scene.share.busy()


def test_a_cut_is_begun_once_by_whichever_thread_sees_it_first(sample_photos: Path) -> None:
    scene = Pipeline(AppConfig(inference_workers=2)).scene
    image = small_face_frame(sample_photos)
    cut = Frame(image, number=7, captured=0.0, received=0.0, scene=7)

    scene.enter(cut)  # the scanner has the cut frame before the display
    taken = scene.part(image)
    scene.enter(replace(cut, number=8))  # the display, a frame later: the same scene

    assert taken and scene.share.busy()  # not begun again: the half taken still counts
    other = scene.part(image)
    assert other and {taken[1], other[1]} == set(halves(WHOLE))
    scene.enter(replace(cut, number=30, scene=30))  # the next cut
    assert not scene.share.busy() and scene.part(image)


def test_an_attempt_is_handed_out_once_new_faces_first(sample_photos: Path, detector: Detector) -> None:
    clock = Clock()
    tracks = FaceTracks(named=0.6, min_size=40, clock=clock)
    rgb = cv2.cvtColor(small_face_frame(sample_photos, height=60), cv2.COLOR_BGR2RGB)
    (old,) = detector.detect_in(rgb, [WHOLE])
    tracks.scanned(1, [old], [(None, old, {"obama": 0.4})])  # tried once
    new = Box(old.top, old.right + 500, old.bottom, old.left + 500)
    tracks.scanned(1, [new], [])  # found by a new scene's half: never tried
    clock.now += RETRY_SECONDS + 0.01

    assert tracks.to_encode(limit=1, untried=True) == [(2, new)]  # the follower takes the new face
    assert tracks.to_encode(limit=1, untried=True) == []  # nobody else takes it meanwhile
    assert tracks.to_encode() == [(1, old)]  # the scanner takes what is left
    assert tracks.to_encode() == []

    tracks.scanned(2, [], [(2, new, {"biden": 0.5})])  # reported: due again after RETRY_SECONDS
    clock.now += RETRY_SECONDS + 0.01
    assert tracks.to_encode() == [(2, new)]
    clock.now += CLAIM_SECONDS  # the worker trying face 1 died: it is handed out again
    assert (1, old) in tracks.to_encode()


def test_a_new_face_is_tried_again_soon_and_then_rarely(sample_photos: Path, detector: Detector) -> None:
    clock = Clock()
    tracks = FaceTracks(named=0.6, min_size=40, clock=clock)
    frame = small_face_frame(sample_photos, height=60)
    scan(tracks, detector, NOBODY, frame, 1)
    assert tracks.to_encode() == []

    for number in (2, 3):  # the next attempts, RETRY_SECONDS apart (a second one names a face surely)
        clock.now += RETRY_SECONDS + 0.01
        assert len(tracks.to_encode()) == 1
        scan(tracks, detector, NOBODY, frame, number)

    clock.now += RETRY_SECONDS + 0.01
    assert tracks.to_encode() == [] and RETRY_SECONDS <= 0.1


def test_a_face_in_an_unchanged_picture_is_kept_without_a_follow(sample_photos: Path) -> None:
    clock = Clock()
    still = StillFaces(clock=clock)
    frame = small_face_frame(sample_photos)
    face = [(1, Box(300, 445, 345, 400))]

    assert not still.unchanged(frame, face)  # nothing to compare with yet: a real follow
    still.followed(face)
    clock.now += 0.1
    marker = frame.copy()
    marker[690:710, 1000:1020] = 255  # something changed far from the face (a clock, a marker)
    assert still.unchanged(marker, face)
    turned = frame.copy()
    turned[310:340, 410:440] = 0  # the face itself changed
    assert not still.unchanged(turned, face)
    assert not still.unchanged(frame, [*face, (2, Box(100, 145, 145, 100))])  # a new face: follow it
    clock.now += StillFaces.HOLD_SECONDS
    assert not still.unchanged(frame, face)  # a real follow at least once a second


def test_a_held_face_is_found_again_where_it_was_unless_never_followed(sample_photos: Path) -> None:
    clock = Clock()
    tracks = FaceTracks(named=0.6, min_size=40, clock=clock)
    box = Box(300, 445, 345, 400)
    tracks.scanned(1, [box], [(None, box, {"obama": 0.4})])
    assert not tracks.held(2)  # found by a scan only: the follower must find it once

    tracks.followed(2, {1: [box]})
    clock.now += LOST_SECONDS  # long enough to be lost, but the picture did not change around it
    assert tracks.held(30)
    assert [item.box for item in tracks.shown(30)] == [box]


def test_a_large_scan_is_cut_in_pieces_that_cover_it_and_overlap() -> None:
    most = 1280 * 720 // 6
    small = Box(100, 500, 400, 100)

    assert pieces([small], most) == [small]
    cut = pieces([WHOLE], most)
    assert len(cut) == 6 and all(box.width * box.height <= most * 1.4 for box in cut)
    covered = np.zeros((720, 1280), dtype=bool)
    for box in cut:
        covered[box.top : box.bottom, box.left : box.right] = True
    assert covered.all()
    # A face up to TILE_OVERLAP wide on a seam is whole in one piece.
    face = Box(300, 480, 380, 400)
    assert any(box.left <= face.left and face.right <= box.right for box in cut if box.top <= face.top)
