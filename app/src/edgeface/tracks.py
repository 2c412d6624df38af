"""The faces on screen, between the two inference workers: where each is and who it is.

The scanner (edgeface.scanning decides where it looks) finds faces and encodes them; the
follower re-detects each known face around its last box on every frame, at the scale that makes
it ~FOLLOW_SIZE px (a 45 px face is scanned at 2x, a 200 px one at 0.45x: a few ms each). Both
report here, each about the frame it worked on: a scan's faces are matched with the tracks by
where each track was *on the scanned frame* (every track keeps its boxes of the last frames),
so a face that moved while the scan ran keeps its name and its votes (edgeface.naming).

A face the follower loses (a turn, a blur) is still shown for HOLD_SECONDS at its last box and
dropped after LOST_SECONDS unless found again; a scene cut drops every face at once.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from edgeface.detector import grown, overlap
from edgeface.naming import NameVote
from edgeface.values import Box, Detection, Match

FOLLOW_SIZE = 90.0
"""Face height (px) the follower scales each region to: what HOG finds surely and cheaply."""
FOLLOW_MARGIN = 0.5
"""A followed face's region: its box grown by this x its size on every side ..."""
FOLLOW_GROWTH = 0.1
"""... plus this x its size for every frame since the box was seen (a scan's find arrives frames
late; a face crossing the picture in 2 s moves ~0.1 of its width a frame), up to FOLLOW_REACH."""
FOLLOW_REACH = 2.0
HOLD_SECONDS = 0.4
"""A face not found again is still shown this long at its last box (a turn, a blurred frame)."""
LOST_SECONDS = 1.0
"""A face not found again for this long is gone."""
FRESH_FRAMES = 2
"""A face a scan found is shown only once it was found on a frame at most this much older than
the one drawn on (a whole-frame scan takes several frames: the face may have moved meanwhile)."""
SAME_FACE = 0.3
"""IoU from which a box is the same face as a track's box."""
FIRST_ATTEMPTS = 3
"""Attempts made while a face is new, RETRY_SECONDS apart (a face one attempt does not name
surely is named by the second within ~0.1 s); then one every RECHECK_SECONDS."""
RETRY_SECONDS = 0.1
RECHECK_SECONDS = 2.0
CLAIM_SECONDS = 1.0
"""An attempt handed out (`to_encode`) is not handed out again until it is reported, or this long
(its worker failed): two workers never encode the same face at once."""


@dataclass
class FaceTrack:
    id: int
    box: Box
    vote: NameVote
    found_at: float  # clock seconds it was last found
    followed: bool = False  # the follower has found it at least once
    attempt_at: float = float("-inf")  # clock seconds of its last encoding
    claimed_at: float = float("-inf")  # clock seconds an attempt was handed out, until reported
    history: collections.deque[tuple[int, Box]] = field(default_factory=lambda: collections.deque(maxlen=90))

    def box_at(self, frame_number: int) -> Box:
        """Where the face was on frame `frame_number` (the nearest earlier frame it was seen on)."""
        earlier = [box for number, box in self.history if number <= frame_number]
        return earlier[-1] if earlier else self.history[0][1]

    @property
    def newest(self) -> int:
        """Number of the newest frame the face was seen on (`box` is where)."""
        return max(number for number, _ in self.history) if self.history else 0

    def seen(self, frame_number: int, box: Box, now: float) -> None:
        if not self.history or frame_number >= self.newest:
            self.box = box
        self.history.append((frame_number, box))
        self.found_at = max(self.found_at, now)


@dataclass(frozen=True)
class TrackedFace:
    """A face the tracks hold: its track id, where it is, its voted name, its attempts so far."""

    id: int
    box: Box
    match: Match
    tried: int


@dataclass(frozen=True)
class FollowRegion:
    track: int  # FaceTrack.id
    region: Box
    scale: float


class FaceTracks:
    """Thread-safe: the follow loop and the scan loop report concurrently."""

    def __init__(
        self,
        named: float,
        unknown: float | None = None,
        min_size: int = 40,
        clock: Callable[[], float] = time.monotonic,
        *,
        recheck: float = RECHECK_SECONDS,
        ids: Iterator[int] | None = None,
    ) -> None:
        """`recheck`: seconds between the attempts of a face tried FIRST_ATTEMPTS times
        (FACE_TRACK_SECONDS; 0: as often as the workers are free); `ids`: where track ids come
        from (the device's cameras share one count, so a track id names one face on the device)."""
        self.named, self.unknown, self.min_size = named, unknown, min_size
        self.recheck = recheck
        self.clock = clock
        self._tracks: list[FaceTrack] = []
        self._scene = 0  # first frame of the current scene: reports on older frames are ignored
        self._ids = ids if ids is not None else itertools.count(1)
        self._lock = threading.Lock()

    def follow_regions(self, frame_number: int, size: tuple[int, int]) -> list[FollowRegion]:
        """Where the follower looks on frame `frame_number` of (height, width) `size`, per track:
        around its newest box, the wider the older that box is."""
        with self._lock:
            return [
                FollowRegion(
                    track.id, grown(track.box, _margin(track, frame_number), size), _follow_scale(track.box)
                )
                for track in self._tracks
            ]

    def followed(self, frame_number: int, found: Mapping[int, Sequence[Box]]) -> None:
        """The follower's finds on `frame_number`, per track id (its region's faces)."""
        now = self.clock()
        with self._lock:
            if frame_number < self._scene:
                return
            for track in self._tracks:
                hits = [box for box in found.get(track.id, ()) if box.height >= self.min_size]
                if hits:
                    track.seen(frame_number, max(hits, key=lambda box: overlap(box, track.box)), now)
                    track.followed = True
            self._forget(now)

    def to_encode(self, limit: int | None = None, untried: bool = False) -> list[tuple[int, Box]]:
        """(track id, box) of up to `limit` faces due for another recognition attempt, those never
        tried first (only those with `untried`); they are the caller's until its scan is reported."""
        now = self.clock()
        with self._lock:
            due = [
                track
                for track in self._tracks
                if _due(track, now, self.recheck) and not (untried and track.vote.total)
            ]
            due.sort(key=lambda track: track.vote.total > 0)  # stable: the older track first
            due = due[:limit]
            for track in due:
                track.claimed_at = now
            return [(track.id, track.box) for track in due]

    def faces(self) -> list[tuple[int, Box]]:
        """(track id, box) of every face on screen."""
        with self._lock:
            return [(track.id, track.box) for track in self._tracks]

    def held(self, frame_number: int) -> bool:
        """The picture around every face is unchanged on `frame_number` (edgeface.scanning.
        StillFaces): each is found again where it was, as a follow would find it. False (nothing
        done) when a face was never followed yet: it needs a real follow."""
        now = self.clock()
        with self._lock:
            if frame_number < self._scene or not all(track.followed for track in self._tracks):
                return False
            for track in self._tracks:
                track.seen(frame_number, track.box, now)
            return True

    def on_screen(self) -> list[TrackedFace]:
        """Every face held now that was tried at least once, with its voted name."""
        with self._lock:
            return [
                TrackedFace(track.id, track.box, track.vote.match(), track.vote.total)
                for track in self._tracks
                if track.vote.total
            ]

    def boxes(self) -> list[Box]:
        with self._lock:
            return [track.box for track in self._tracks]

    def scanned(
        self,
        frame_number: int,
        found: Sequence[Box],
        attempts: Sequence[tuple[int | None, Box, Mapping[str, float]]],
    ) -> None:
        """A scan of `frame_number`: the faces it `found` (new ones become tracks) and the
        recognition `attempts` made on it: (track id or None for a face it found, box, nearest
        people with their distances)."""
        now = self.clock()
        with self._lock:
            if frame_number < self._scene:
                return
            for box in found:
                if box.height >= self.min_size and self._track_on(frame_number, box) is None:
                    new = FaceTrack(next(self._ids), box, NameVote(self.named, self.unknown), now)
                    new.history.append((frame_number, box))
                    self._tracks.append(new)
            for track_id, box, candidates in attempts:
                track = self._by_id(track_id) if track_id is not None else self._track_on(frame_number, box)
                if track is None:
                    continue
                track.vote.add(candidates, box.height)
                track.attempt_at, track.claimed_at = now, float("-inf")
                if track_id is None:
                    track.seen(frame_number, box, now)

    def cut(self, frame_number: int = 0) -> None:
        """The scene changed on frame `frame_number`: every face is gone, and what the workers
        report about earlier frames (still on their way) is ignored."""
        with self._lock:
            self._tracks = []
            self._scene = max(self._scene, frame_number)

    def shown(self, frame_number: int | None = None) -> list[Detection]:
        """The faces to draw now (on frame `frame_number`): found within HOLD_SECONDS and tried
        at least once; a face only a scan has found, if it was on a frame at most FRESH_FRAMES
        older than `frame_number`."""
        now = self.clock()
        with self._lock:
            return [
                Detection(track.box, track.vote.match(), track.id)
                for track in self._tracks
                if now - track.found_at <= HOLD_SECONDS
                and track.vote.total
                and (track.followed or frame_number is None or frame_number - track.newest <= FRESH_FRAMES)
            ]

    def _forget(self, now: float) -> None:
        """Drop lost faces, and a track that became the same face as an older one."""
        kept: list[FaceTrack] = []
        for track in self._tracks:
            if now - track.found_at > LOST_SECONDS:
                continue
            if any(overlap(track.box, other.box) >= 0.5 for other in kept):
                continue
            kept.append(track)
        self._tracks = kept

    def _track_on(self, frame_number: int, box: Box) -> FaceTrack | None:
        best, best_overlap = None, SAME_FACE
        for track in self._tracks:
            shared = max(overlap(box, track.box_at(frame_number)), overlap(box, track.box))
            if shared >= best_overlap:
                best, best_overlap = track, shared
        return best

    def _by_id(self, track_id: int) -> FaceTrack | None:
        return next((track for track in self._tracks if track.id == track_id), None)


def _margin(track: FaceTrack, frame_number: int) -> float:
    age = max(0, frame_number - track.newest)
    return min(FOLLOW_REACH, FOLLOW_MARGIN + FOLLOW_GROWTH * age)


def _follow_scale(box: Box) -> float:
    return min(2.5, max(0.3, FOLLOW_SIZE / max(box.height, 1)))


def _due(track: FaceTrack, now: float, recheck: float) -> bool:
    wait = RETRY_SECONDS if track.vote.total < FIRST_ATTEMPTS else recheck
    return now - track.attempt_at >= wait and now - track.claimed_at >= CLAIM_SECONDS
