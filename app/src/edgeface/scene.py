"""A camera's scene, in one object: when it cuts, how the first scan of a new scene is shared out,
and where the next scans look.

- The capture thread asks `watch(image, grey)` of every frame (edgeface.scanning.SceneWatch, well under
  1 ms): a cut makes that frame the first of a new scene (`Frame.scene`).
- The first thread to see a frame of a new scene (the display or an inference loop) begins it
  (`enter`): the faces followed so far are someone else's (`FaceTracks.cut`), none is drawn until
  found again (`clear`), the next scan is of the whole frame, and a resting scanner wakes up.
- That whole-frame scan is cut in halves (`part`), both handed to the workers at once by the loop
  that took them, so that a cut's faces are found in half the time with two workers; `plan`
  gives every later scan (edgeface.scanning.ScanPlanner).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from edgeface.scanning import ScanPlan, ScanPlanner, SceneShare, SceneWatch
from edgeface.source import Frame
from edgeface.tracks import FaceTracks
from edgeface.values import Box


class Scene:
    def __init__(self, tracks: FaceTracks, clear: Callable[[int], None], split: bool) -> None:
        """`clear(frame_number)`: draw no face from that frame on; `split`: a new scene's first scan
        is cut in halves (two workers or more)."""
        self._tracks, self._clear, self._split = tracks, clear, split
        self._watch = SceneWatch()
        self._planner = ScanPlanner()
        self._planner_lock = threading.Lock()
        self.share = SceneShare()
        self._started = 0  # Frame.scene of the newest scene begun
        self._started_lock = threading.Lock()
        self.cut_event = threading.Event()  # set on a cut and at stop: a resting scanner wakes up

    def watch(self, image: np.ndarray, grey: np.ndarray) -> bool:
        """Whether `image` (`grey`: its thumbnail), the next frame captured, starts a new scene
        (capture thread only)."""
        return self._watch.cut(image, grey)

    def enter(self, frame: Frame) -> None:
        """Begin the scene `frame` is of, unless begun: by the first thread to see one of its
        frames, so that no scan of a cut starts unshared."""
        with self._started_lock:
            if frame.scene <= self._started:
                return
            self._started = frame.scene
        self.begin(frame.scene)

    def begin(self, frame_number: int) -> None:
        """The scene cut on frame `frame_number`: its faces are not the ones followed so far. None
        is drawn from this frame on until found again, and the frame is scanned whole."""
        self._tracks.cut(frame_number)
        self._clear(frame_number)
        self.restart()
        self.cut_event.set()

    def current(self, frame: Frame) -> bool:
        """Whether `frame` is of the newest scene begun (no cut since)."""
        with self._started_lock:
            return frame.scene >= self._started

    def lost(self) -> None:
        """The stream is away: its faces are gone, and its first frame back is scanned whole."""
        self._clear(0)
        self._tracks.cut()
        self.restart()

    def restart(self) -> None:
        """The next scan is of the whole frame (the stream is back, a new scene, a failed scan)."""
        with self._planner_lock:
            self._planner.reset()
            self.share.restart()

    def part(self, image: np.ndarray, grey: np.ndarray | None = None) -> tuple[int, Box] | None:
        """(id, region) of a part of a new scene's first scan that nobody took yet, to scan on
        `image` (HxWx3; `grey`: its thumbnail when already made), or None; `share.done(id)` once
        reported. The first caller after restart() cuts `image` in halves
        (edgeface.scanning.halves) and makes it the reference of the next plans; a camera's loop
        takes every half there is (edgeface.camera)."""
        with self._planner_lock:
            return self.share.take(
                lambda: self._planner.plan(image, [], grey=grey).regions[0], split=self._split
            )

    def plan(
        self, image: np.ndarray, followed: Sequence[Box], patrol: bool = True, grey: np.ndarray | None = None
    ) -> ScanPlan:
        """The next scan's plan on `image` (`grey`: its thumbnail), the faces followed at `followed`."""
        with self._planner_lock:
            return self._planner.plan(image, followed, patrol, grey)

    def rest(self, seconds: float) -> bool:
        """Rest up to `seconds` unless the scene cuts meanwhile (True then)."""
        if self.cut_event.wait(seconds):
            self.cut_event.clear()
            return True
        return False
