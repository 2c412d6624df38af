"""Tracking stage: detection + recognition over consecutive frames, without redoing what still holds.

A full-frame HOG detection costs ~90 ms on 1280x720 and a 128-d encoding ~75 ms per face, so
doing both on every frame gives a few updates a second. Faces on a camera move little from one
frame to the next, so between full detections the tracker only

- re-detects faces in the regions around where the last full detection found them (a few ms:
  `detect_near`; anchored there, as boxes found in small regions drift from frame to frame), and
- reuses the name and distance of a face whose box overlaps (IoU >= MIN_OVERLAP) a box named less
  than `track_seconds` ago, encoding only new faces and faces whose name has grown old.

A face's name comes from its attempts so far (edgeface.naming.NameVote, as with two workers): an
attempt on a face that continues an earlier one is added to that face's vote, so one bad
encoding does not flip a name.

When a tracked face is not found around its box (it left, or this frame blurred it), the same
update falls back to a full-frame detection, so an update never silently drops a face.

Every `track_seconds` it detects on the whole frame again (new faces appear within that time) and
re-encodes every face. `track_seconds=0` turns tracking off: every update detects on the whole
frame and encodes every face, as `edgeface.inference.analyse` does.

This is how a worker works alone (AUTO: one worker, or updates no more frequent than
FACE_TRACK_SECONDS); with a follower and a scanner, edgeface.tracks keeps the faces instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edgeface.detector import Detector, overlap
from edgeface.naming import NameVote
from edgeface.recogniser import Recogniser, encode_faces
from edgeface.values import Box, Detection, Match

MIN_OVERLAP = 0.3
"""IoU above which a box is the same face as a tracked one (faces move a few px per frame)."""


@dataclass(frozen=True)
class Track:
    """A face seen in the latest update and when its name was last computed from an encoding."""

    box: Box
    match: Match
    named_at: float  # clock seconds of the encoding behind `match`
    anchor: Box  # the box of the last full-frame detection: where to look for the face next
    vote: NameVote  # the face's attempts so far: `match` is their verdict


@dataclass(frozen=True)
class TrackedResult:
    detections: list[Detection]
    full_frame: bool  # True when the whole frame was scanned (not just around known faces)
    encoded: int  # faces encoded in this update (the others reused a recent name)


class Tracker:
    """Detects and names the faces of successive frames; `analyse(rgb)` per frame, in order."""

    def __init__(
        self,
        detector: Detector,
        recogniser: Recogniser,
        track_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        unknown: float | None = None,
    ) -> None:
        """`unknown`: the distance from which a named face is surely someone else (NameVote)."""
        if not track_seconds >= 0.0:  # also refuses NaN
            raise ValueError(f"track_seconds must be >= 0, got {track_seconds}")
        self.detector = detector
        self.recogniser = recogniser
        self.track_seconds = track_seconds
        self.clock = clock
        self.unknown = unknown
        self.tracks: list[Track] = []
        self._full_at = float("-inf")

    def analyse(self, rgb: np.ndarray) -> TrackedResult:
        """Find and name the faces in `rgb` (HxWx3 uint8, RGB order), the next frame of the stream."""
        now = self.clock()
        full_frame = not self.tracks or now - self._full_at >= self.track_seconds
        if full_frame:
            boxes = self.detector.detect(rgb)
            self._full_at = now
        else:
            boxes = self.detector.detect_near(rgb, [track.anchor for track in self.tracks])
            if len(boxes) < len(self.tracks):  # a face left or was missed: look everywhere now
                boxes, full_frame, self._full_at = self.detector.detect(rgb), True, now
        recent = [self._recent(box, now) for box in boxes]
        stale = [index for index, track in enumerate(recent) if track is None]
        nearest = self.recogniser.candidates(encode_faces(rgb, [boxes[index] for index in stale]))
        attempts = dict(zip(stale, nearest, strict=True))
        tracks = []
        for index, box in enumerate(boxes):
            anchor = box if full_frame else _anchor_of(box, self.tracks)
            track = recent[index]
            if track is not None:  # named recently: the name holds
                tracks.append(Track(box, track.match, track.named_at, anchor, track.vote))
                continue
            before = _nearest(box, self.tracks)  # the same face, named longer ago: its attempts count
            vote = before.vote if before is not None else NameVote(self.recogniser.tolerance, self.unknown)
            tracks.append(Track(box, vote.add(attempts[index], box.height), now, anchor, vote))
        self.tracks = tracks
        detections = [Detection(track.box, track.match) for track in self.tracks]
        return TrackedResult(detections, full_frame, len(stale))

    def _recent(self, box: Box, now: float) -> Track | None:
        """The tracked face `box` overlaps most, if it was named recently."""
        return _nearest(box, [track for track in self.tracks if now - track.named_at < self.track_seconds])


def _anchor_of(box: Box, tracks: Sequence[Track]) -> Box:
    """The anchor of the track `box` continues (`box` itself for a new face)."""
    nearest = _nearest(box, tracks)
    return box if nearest is None else nearest.anchor


def _nearest(box: Box, tracks: Sequence[Track]) -> Track | None:
    """The track `box` overlaps most, if by at least MIN_OVERLAP."""
    best: Track | None = None
    best_overlap = MIN_OVERLAP
    for track in tracks:
        shared = overlap(box, track.box)
        if shared >= best_overlap:
            best, best_overlap = track, shared
    return best
