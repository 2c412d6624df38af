"""Where the scanner looks for new faces: where the picture changed, the whole frame after a cut;
when the scene cuts (`SceneWatch`, on every captured frame); and how a new scene's first scan is
shared between the workers (`SceneShare`).

Finding a 40 px face needs HOG at 2x (`FACE_RATIO` 1, `FACE_LOC_NTU` 1): ~0.35 s for a whole
1280x720 frame on one core, far too much for every frame. But a face that appears changes the
picture where it appears (someone walks in, turns to the camera, the scene cuts), and the faces
already on screen are followed (edgeface.tracks). So each scan compares the frame with the last
scanned one on a 160x90 grey thumbnail (well under 1 ms) and scans at full sensitivity

- the whole frame on the first frame and after a cut (`reset()`; the capture's SceneWatch sees
  a cut between two consecutive frames: more than CUT_FRACTION of the thumbnail changed), or
  when more than that changed since the last scan (a camera pan: faces followed so far stay);
- otherwise the regions that changed, except those in the column of a followed face (its own
  head and body moving), grown by a face's size;
- and, when nothing changed and a patrol is due, one tile of the frame (of TILES), in turn: a
  face that was there all along but never found (too turned away to be found then) is looked
  for again. Without a patrol nothing is scanned and the reference stays: the scanner looks at
  every frame (under 1 ms), so a face that walks in is scanned on the frame it changed enough
  on, and a slow change adds up against the last scanned frame.

Faces smaller than the configured scale finds (25-36 px at the default 2x) get a finer look
(`FineLook`): where the picture changed but the scan found no face, the same region again at
FINE_SCALE, each part of the frame at most every FINE_SECONDS, so that a far-away person who
moves is found while a clock overlay that changes every second costs one small look a while.

When the scanner may scan is `ScanBudget`'s: SCAN_DUTY of the time on average (a pan rescanned
whole costs at most half a core), but up to BURST_SECONDS at once, so the first scans of a face
that appears after a quiet while start at once instead of after a fixed rest.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edgeface.detector import overlap
from edgeface.values import Box

THUMBNAIL = (160, 90)  # (width, height) of the change map
THRESHOLD = 18  # grey levels a thumbnail pixel must change by
CUT_FRACTION = 0.4  # more of the thumbnail changed than this: a new scene
WHOLE_FRACTION = 0.5  # changed regions larger than this share of the frame: scan it whole
PAD = 48  # px added around a changed region (a face's edge changes before its middle)
TILES = (3, 2)  # columns x rows of the rotating idle scan
TILE_OVERLAP = 96  # px tiles overlap by, so that a face on a seam is whole in one tile
HALVES_OVERLAP = 256  # px the two halves of a new scene's scan overlap by (faces to ~250 px)
SCAN_DUTY = 0.5  # share of the time the scanner spends scanning, on average, while the picture keeps changing
BURST_SECONDS = 0.6  # scanning seconds it may spend at once after a quiet while (within SCAN_DUTY on average)
LONGEST_REST = 0.6  # seconds: a face that appears meanwhile is not kept waiting longer
FINE_SCALE = 3.2  # HOG finds faces from ~80 px where it looks: from 25 px at this scale
FINE_SECONDS = 2.0  # a cell of the frame is looked at finely at most this often
FINE_MOST = 1 / 8  # share of the frame a region may have to be looked at finely (not a pan, not a cut)
FINE_CELLS = (8, 4)  # columns x rows of the cells FINE_SECONDS applies to


@dataclass(frozen=True)
class ScanPlan:
    regions: list[Box]  # where to scan, full-frame pixels (none: nothing changed, no patrol)
    whole: bool = False  # the whole frame (first frame, a new scene, a pan)
    idle: bool = False  # nothing changed: one tile of the rotation, or nothing


def thumbnail(bgr: np.ndarray) -> np.ndarray:
    """The change map's view of `bgr` (HxWx3 uint8): THUMBNAIL-sized, grey, slightly blurred."""
    import cv2  # noqa: PLC0415

    small = cv2.resize(bgr, THUMBNAIL, interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0), dtype=np.uint8)


def changed(grey: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """1 where two thumbnails differ by more than THRESHOLD, grown by one pixel; else 0."""
    import cv2  # noqa: PLC0415

    mask = (cv2.absdiff(grey, reference) > THRESHOLD).astype(np.uint8)
    return np.asarray(cv2.dilate(mask, np.ones((3, 3), np.uint8)), dtype=np.uint8)


class SceneWatch:
    """Tells a scene cut from one frame to the next (well under 1 ms a frame): the faces drawn
    so far are then someone else's, wherever they were."""

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None

    def cut(self, bgr: np.ndarray, grey: np.ndarray | None = None) -> bool:
        """Whether `bgr` starts a new scene (the first frame does); `grey`: its thumbnail when
        already made (`Frame.grey`), else it is made here."""
        grey = thumbnail(bgr) if grey is None else grey
        previous, self._previous = self._previous, grey
        return previous is None or bool(changed(grey, previous).mean() > CUT_FRACTION)


class ScanPlanner:
    """Plans each scan from the frame and the followed faces; `plan()` per scan, in order."""

    def __init__(self) -> None:
        self._reference: np.ndarray | None = None
        self._tile = 0

    def reset(self) -> None:
        """A new scene (a cut, the stream back): its next frame is scanned whole."""
        self._reference = None

    def plan(
        self, bgr: np.ndarray, followed: Sequence[Box], patrol: bool = True, grey: np.ndarray | None = None
    ) -> ScanPlan:
        """What to scan on `bgr` (HxWx3 uint8; `grey`: its thumbnail when already made), the faces
        being followed at `followed`; when nothing changed, the next tile if `patrol`, else
        nothing (and `bgr` is not the reference the next plan compares with)."""
        import cv2  # noqa: PLC0415

        height, width = bgr.shape[:2]
        whole = Box(0, width, height, 0)
        grey = thumbnail(bgr) if grey is None else grey
        reference, self._reference = self._reference, grey
        if reference is None:
            return ScanPlan([whole], whole=True)
        mask = changed(grey, reference)
        if mask.mean() > CUT_FRACTION:
            return ScanPlan([whole], whole=True)
        scale_x, scale_y = width / THUMBNAIL[0], height / THUMBNAIL[1]
        zones = [_body_zone(box) for box in followed]
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        regions = []
        for left, top, w, h, _area in stats[1:count]:
            box = Box(
                max(0, int(top * scale_y) - PAD),
                min(width, int((left + w) * scale_x) + PAD),
                min(height, int((top + h) * scale_y) + PAD),
                max(0, int(left * scale_x) - PAD),
            )
            if not any(_inside(box, zone) for zone in zones):
                regions.append(box)
        regions = _merged(regions)
        if sum(box.width * box.height for box in regions) > WHOLE_FRACTION * width * height:
            return ScanPlan([whole], whole=True)
        if regions:
            return ScanPlan(regions)
        if not patrol:
            self._reference = reference
            return ScanPlan([], idle=True)
        self._tile = (self._tile + 1) % (TILES[0] * TILES[1])
        return ScanPlan([_tile(self._tile, width, height)], idle=True)


class StillFaces:
    """Whether the picture around every face on screen is as it was when they were last followed
    (on the change map's thumbnail, under 1 ms): the follower then keeps them where they are
    instead of asking a worker, so that people standing still cost next to nothing. A real follow
    still comes at least every HOLD_SECONDS, and whenever the faces on screen are not the ones
    followed last."""

    HOLD_SECONDS = 1.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._reference: np.ndarray | None = None
        self._faces: frozenset[int] = frozenset()
        self._at = float("-inf")
        self._grey: np.ndarray | None = None

    def unchanged(
        self, bgr: np.ndarray, faces: Sequence[tuple[int, Box]], grey: np.ndarray | None = None
    ) -> bool:
        """Whether the faces (track id, box) on `bgr` (HxWx3; `grey`: its thumbnail when already
        made) can be kept without a follow."""
        self._grey = thumbnail(bgr) if grey is None else grey
        reference = self._reference
        if (
            reference is None
            or not faces
            or frozenset(track for track, _ in faces) != self._faces
            or self.clock() - self._at > self.HOLD_SECONDS
        ):
            return False
        mask = changed(self._grey, reference)
        height, width = bgr.shape[:2]
        scale_x, scale_y = THUMBNAIL[0] / width, THUMBNAIL[1] / height
        for _, box in faces:
            grow_y, grow_x = box.height // 2, box.width // 2
            top, bottom = int((box.top - grow_y) * scale_y), int((box.bottom + grow_y) * scale_y) + 1
            left, right = int((box.left - grow_x) * scale_x), int((box.right + grow_x) * scale_x) + 1
            if mask[max(top, 0) : bottom, max(left, 0) : right].any():
                return False
        return True

    def followed(self, faces: Sequence[tuple[int, Box]]) -> None:
        """A real follow of `faces` was made on the frame last asked about: the new reference."""
        self._reference, self._at = self._grey, self.clock()
        self._faces = frozenset(track for track, _ in faces)


class FineLook:
    """Where a scan at the configured scale found no face although the picture changed, whether
    to look again at FINE_SCALE (`regions`): a small region (at most FINE_MOST of the frame) whose
    cells were not looked at finely in the last FINE_SECONDS. What moves there may be a person
    too far away for the configured scale (a 25-35 px face); a region that keeps changing (a
    clock, a screen, leaves) costs one fine look per FINE_SECONDS, not one per frame."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._looked: dict[tuple[int, int], float] = {}  # cell -> when it was last looked at finely

    def regions(self, changed: Sequence[Box], found: Sequence[Box], size: tuple[int, int]) -> list[Box]:
        """The `changed` regions (of a frame of `size`, (height, width)) to look at finely, given
        the faces `found` in them at the configured scale; those are marked looked at now."""
        height, width = size
        now = self.clock()
        fine = []
        for region in changed:
            if region.width * region.height > FINE_MOST * width * height:
                continue
            if any(overlap(face, region) > 0 for face in found):
                continue  # the faces that moved there are found: they are the tracks'
            cells = _cells(region, width, height)
            if all(now - self._looked.get(cell, float("-inf")) < FINE_SECONDS for cell in cells):
                continue
            self._looked.update(dict.fromkeys(cells, now))
            fine.append(region)
        return fine


def _cells(region: Box, width: int, height: int) -> list[tuple[int, int]]:
    """The FINE_CELLS cells (column, row) `region` of a `width` x `height` frame touches."""
    columns, rows = FINE_CELLS
    first_column, last_column = region.left * columns // width, (max(region.right, 1) - 1) * columns // width
    first_row, last_row = region.top * rows // height, (max(region.bottom, 1) - 1) * rows // height
    return [
        (column, row)
        for column in range(first_column, min(last_column, columns - 1) + 1)
        for row in range(first_row, min(last_row, rows - 1) + 1)
    ]


class SceneShare:
    """A new scene's first scan, shared out: cut in halves (`halves`) for the first workers free
    to take one, each part known until reported (`done`), so that no worker scans the scene again
    while a part of it is still on its way (its faces would be found and encoded twice)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._pending = True  # the next take() cuts a new scene
        self._parts: list[Box] = []  # parts nobody took yet
        self._out: set[int] = set()  # parts taken, not yet reported
        self._ids = itertools.count()

    def restart(self) -> None:
        """A new scene (a cut, the stream back): what was shared of the last one is forgotten."""
        with self._changed:
            self._pending, self._parts = True, []
            self._out.clear()
            self._changed.notify_all()

    def take(self, whole: Callable[[], Box], split: bool) -> tuple[int, Box] | None:
        """(id, region) of a part nobody took yet, or None. The first take of a scene calls
        `whole()` for the region to scan, cut in halves when `split` (two workers scan it)."""
        with self._changed:
            if self._pending:
                self._pending = False
                region = whole()
                self._parts = halves(region) if split else [region]
            if not self._parts:
                return None
            part = next(self._ids)
            self._out.add(part)
            return part, self._parts.pop()

    def done(self, part: int) -> None:
        """Part `part` is reported (its faces are the tracks' now), or its worker failed."""
        with self._changed:
            self._out.discard(part)
            self._changed.notify_all()

    def busy(self) -> bool:
        """Whether a worker is scanning a part of the scene."""
        with self._changed:
            return bool(self._out)

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s until no part is out; whether none is."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._out, timeout)


class ScanBudget:
    """How long the scanner rests after each scan: none while it has spent less than `duty` of
    the time scanning (with up to `burst` seconds at once), else until it is back within that,
    LONGEST_REST at most; a new scene owes nothing (`forgive()`)."""

    def __init__(
        self,
        duty: float = SCAN_DUTY,
        burst: float = BURST_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.duty, self.burst, self.clock = duty, burst, clock
        self._credit = burst  # scanning seconds it may spend now
        self._at = clock()

    def spend(self, seconds: float) -> float:
        """A scan took `seconds`: the seconds to rest before the next one."""
        now = self.clock()
        credit = min(self.burst, self._credit + (now - self._at) * self.duty) - seconds
        self._credit, self._at = max(credit, -LONGEST_REST * self.duty), now
        return max(0.0, -self._credit / self.duty)

    def forgive(self) -> None:
        """A new scene: its first scans start at once, whatever the last one's spent."""
        self._credit = max(self._credit, 0.0)


def _body_zone(face: Box) -> Box:
    """Where a followed face's own head and body move: its box, 1.5 widths either side, from a
    height and PAD above it (the hair, and the PAD a changed region is grown by) to 6 heights
    below."""
    return Box(
        face.top - face.height - PAD,
        face.right + int(face.width * 1.5),
        face.bottom + face.height * 6,
        face.left - int(face.width * 1.5),
    )


def _inside(box: Box, zone: Box) -> bool:
    return (
        zone.top <= box.top
        and box.bottom <= zone.bottom
        and zone.left <= box.left
        and box.right <= zone.right
    )


def _merged(boxes: list[Box]) -> list[Box]:
    """Overlapping boxes joined into their bounding boxes, until none overlap."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i, first in enumerate(merged):
            for j in range(i + 1, len(merged)):
                second = merged[j]
                if overlap(first, second) > 0:
                    merged[i] = Box(
                        min(first.top, second.top),
                        max(first.right, second.right),
                        max(first.bottom, second.bottom),
                        min(first.left, second.left),
                    )
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return merged


def _tile(index: int, width: int, height: int) -> Box:
    columns, rows = TILES
    column, row = index % columns, index // columns
    tile_w, tile_h = width // columns, height // rows
    return Box(
        max(0, row * tile_h - TILE_OVERLAP // 2),
        min(width, (column + 1) * tile_w + TILE_OVERLAP // 2),
        min(height, (row + 1) * tile_h + TILE_OVERLAP // 2),
        max(0, column * tile_w - TILE_OVERLAP // 2),
    )


def pieces(regions: Sequence[Box], most: int) -> list[Box]:
    """`regions` with each larger than `most` px² cut into a grid of pieces that overlap by
    TILE_OVERLAP px (a face up to that wide is whole in one of them): one job per piece, so that
    no scan holds a worker long while a cut or a new face waits on any camera."""
    cut: list[Box] = []
    for region in regions:
        area = region.width * region.height
        if area <= most:
            cut.append(region)
            continue
        count = -(-area // most)
        columns = max(1, round((count * region.width / max(region.height, 1)) ** 0.5))
        cut += _grid(region, columns, -(-count // columns))
    return cut


def _grid(region: Box, columns: int, rows: int) -> list[Box]:
    width, height = region.width / columns, region.height / rows
    return [
        Box(
            max(region.top, int(region.top + row * height) - TILE_OVERLAP // 2),
            min(region.right, int(region.left + (column + 1) * width) + TILE_OVERLAP // 2),
            min(region.bottom, int(region.top + (row + 1) * height) + TILE_OVERLAP // 2),
            max(region.left, int(region.left + column * width) - TILE_OVERLAP // 2),
        )
        for row in range(rows)
        for column in range(columns)
    ]


def halves(region: Box) -> list[Box]:
    """`region` cut into a left and a right half that overlap by HALVES_OVERLAP px, for two
    workers to scan at once: a face up to that wide is whole in one of them."""
    middle = (region.left + region.right) // 2
    return [
        Box(region.top, min(region.right, middle + HALVES_OVERLAP // 2), region.bottom, region.left),
        Box(region.top, region.right, region.bottom, max(region.left, middle - HALVES_OVERLAP // 2)),
    ]
