"""Liveness: every loop of the pipeline says when it will next make progress; `/healthz` reads it.

A loop calls `beat(within)` before each step that may legitimately take a while: "my next beat
comes within `within` seconds". A loop that misses its own deadline is stuck; one whose thread has
ended is dead. What counts as progress is the loop's own business, so that an idle loop is not
taken for a stuck one: the capture loop beats on every open attempt and backoff step (not only on
frames), an inference loop on every wait for a frame, the display on every frame or "no signal"
check, the MJPEG writer on every turn of its select loop (it starts with the first viewer).
"""

from __future__ import annotations

import threading
import time

GRACE = 3.0
"""Seconds added to every deadline: a busy 2-core machine delays threads by more than a loop's
nominal step, and a liveness probe must not restart a pod for that."""


class Heartbeat:
    """One loop's progress record; its thread is attached when it starts."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._due = 0.0  # time.monotonic() by which the next beat must come (0: none expected)
        self._last = 0.0
        self._thread: threading.Thread | None = None
        self._ended = False

    def attach(self, thread: threading.Thread, within: float) -> None:
        """`thread` runs this loop from now on; its first beat comes within `within` s."""
        self._thread, self._ended = thread, False
        self.beat(within)

    def beat(self, within: float) -> None:
        """Progress now; the next beat comes within `within` seconds (plus GRACE)."""
        now = time.monotonic()
        self._last, self._due = now, now + within + GRACE

    def end(self) -> None:
        """The loop stopped on purpose (shutdown): not a death."""
        self._ended = True

    def problem(self, now: float | None = None) -> str | None:
        """Why this loop is not healthy, or None (also None before it started and after `end`)."""
        thread = self._thread
        if thread is None or self._ended:
            return None
        if not thread.is_alive():
            return f"{self.name}: thread died"
        moment = time.monotonic() if now is None else now
        if moment > self._due:
            return f"{self.name}: stuck, no progress for {moment - self._last:.1f} s"
        return None


class Liveness:
    """The heartbeats of all of a pipeline's loops, by name."""

    def __init__(self) -> None:
        self._beats: dict[str, Heartbeat] = {}
        self._lock = threading.Lock()

    def heartbeat(self, name: str) -> Heartbeat:
        with self._lock:
            return self._beats.setdefault(name, Heartbeat(name))

    def names(self) -> list[str]:
        """The loops' names, in the order they were first asked for."""
        with self._lock:
            return list(self._beats)

    def end(self) -> None:
        """The pipeline is stopping: no loop counts as stuck or dead from now on."""
        with self._lock:
            beats = list(self._beats.values())
        for beat in beats:
            beat.end()

    def problems(self) -> list[str]:
        """One line per stuck or dead loop, naming it; empty when all is well."""
        now = time.monotonic()
        with self._lock:
            beats = list(self._beats.values())
        return [problem for beat in beats if (problem := beat.problem(now)) is not None]
