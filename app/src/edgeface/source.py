"""Source stage: one capture thread that keeps only the newest frame, and survives a dropped stream.

Inputs: an RTMP/RTSP/HTTP URL, a video file (played at its own rate, looped) or a local camera
index. A source is shown (`description`: the log, `/api/status`'s `source.error`) with its URL's
password and query values as `***` (edgeface.redaction).

Stream faults. OpenCV's FFmpeg `read()` blocks ~30 s when a publisher vanishes and opening an RTMP
stream probes for ~5 s. So:
- every capture is opened with `CAP_PROP_OPEN_TIMEOUT_MSEC` and `CAP_PROP_READ_TIMEOUT_MSEC`; a
  read that times out leaves the FFmpeg demuxer broken ("Packet mismatch" on every later read,
  measured), so the read timeout decides when a connection is given up and reopened. It is long
  (`read_timeout`: 5 s, or 3x VIDEO_STALL_SECONDS if more): a 1 fps stream waits ~1 s on every
  read and a network stall of a few seconds must not cost a reconnect (with a 1 s timeout, as
  before, a 1 fps stream reconnected on every frame);
- `OPENCV_FFMPEG_CAPTURE_OPTIONS` defaults to a small probe (`probesize;32768|analyzeduration;500000`):
  measured on nginx-rtmp here, the first frame arrives 0.9 s after open instead of 5.3 s, and 0.7 s
  after a returning publisher starts (a user's own value of the variable is kept);
- lost or slow is told by the stream's own timestamps (`CAP_PROP_POS_MSEC`), not by how long a
  read took (`StreamClock`): a frame whose timestamp is as far along as the wall clock since the
  promptest frame is current, however long it took to come (a 1 fps stream, a stall that ended);
  a frame that lags the wall clock by more than the stall limit is one the decoder still held
  from before a stall (after a publisher's SIGKILL, or the start of a catch-up burst): it is
  dropped, so it neither shows stale faces nor restarts the watchdog;
- the frame-age watchdog: `status().state` is "no signal" as soon as the newest current frame is
  older than the stall limit, whatever the capture is doing: VIDEO_STALL_SECONDS (1 s), or twice
  the stream's frame interval if that is longer, so that a 1 fps stream stays live. A killed
  publisher shows as "no signal" after ~1 s; the reconnect follows at the read timeout;
- nginx-rtmp keeps a player's connection while no one publishes, and feeds it the next publisher
  on the same key: its timestamps start again from 0, which `StreamClock` takes as a new time line,
  so a publisher that returns within the read timeout is picked up without a reconnect;
- after a loss, a *fresh* VideoCapture is opened, with backoff (0.25 s doubling to 2 s) between
  failed opens. While nginx-rtmp has no publisher, an open waits (up to the open timeout) and
  picks the publisher up as soon as it returns. Nothing here ever exits the process.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeface.liveness import Heartbeat
from edgeface.redaction import redacted
from edgeface.scanning import thumbnail

log = logging.getLogger(__name__)

FFMPEG_OPTIONS_VARIABLE = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
FAST_PROBE = "probesize;32768|analyzeduration;500000"
MIN_READ_TIMEOUT = 5.0  # seconds a stream connection may stay silent before it is reopened
LIVE = "live"
NO_SIGNAL = "no signal"


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame. image: HxWx3 uint8, BGR (OpenCV's order)."""

    image: np.ndarray
    number: int  # 1, 2, ... in capture order over the source's whole life
    captured: float  # wall clock (time.time()) when read() returned, seconds
    received: float  # time.monotonic() at the same moment, for ages
    scene: int = 0  # number of the first frame of its scene (its own on a cut; 0 without `cuts`)
    grey: np.ndarray | None = None  # the change map's thumbnail (edgeface.scanning), made once here


@dataclass(frozen=True)
class SourceStatus:
    state: str  # LIVE or NO_SIGNAL
    frames: int  # frames read since start
    reconnects: int  # times the stream was lost and reopened
    fps: float  # input frames per second over the last ~2 s
    frame_age: float | None  # seconds since the newest frame, None before the first
    error: str | None  # why there is no signal, when known
    late_frames: int = 0  # frames dropped because they lagged the stream's clock (edgeface.source)
    stall_limit: float = 1.0  # seconds without a current frame that make "no signal"


class StreamClock:
    """A stream's timestamps against the local clock, for one connection: is a frame current?

    The offset between the two clocks is taken from the promptest frame seen so far; a frame's
    lag is how much later than that it came. The offset creeps up by `DRIFT` (1 ms a second) so
    that a publisher's clock running slightly slow never accumulates into lag. Timestamps that go
    back, or jump ahead of the wall clock by more than `JUMP` s, start a new time line (a new
    publisher on the same connection, a stream that restarts its timestamps). So does a late
    frame that came at the stream's own pace (wall and stream time since the previous frame
    within a factor of 2), and lateness that lasts longer than the stall limit: the decoder's
    leftovers after a stall come first after a long silence, then in a burst, while a stream whose
    clock shifted (its timestamps ran on across a pause, a decoder that holds frames of a slow
    stream for seconds) goes on at its rate, every frame equally "late".
    """

    DRIFT = 0.001
    JUMP = 5.0

    def __init__(self) -> None:
        self._offset: float | None = None  # local time minus stream time of the promptest frame
        self._last: tuple[float, float] | None = None  # (stream time, local time) of the last frame
        self._late_since: float | None = None  # local time of the first of the current late frames
        self._intervals: collections.deque[float] = collections.deque(maxlen=5)

    def is_late(self, stream_time: float, now: float, limit: float) -> bool:
        """Whether frame `stream_time` (its timestamp, s), read at `now` (monotonic), lags the
        stream's clock by more than `limit` seconds: a frame from before a stall."""
        last = self._last
        lag = self._lag(stream_time, now)
        if lag <= limit:
            self._late_since = None
            return False
        if last is not None and _within_factor(now - last[1], stream_time - last[0], 2.0):
            self._new_time_line(stream_time, now)
            return False
        if self._late_since is None:
            self._late_since = now
            return True
        if now - self._late_since <= limit:
            return True
        self._new_time_line(stream_time, now)
        return False

    def interval(self) -> float:
        """The stream's typical frame interval in seconds (median of the last few), 0 when unknown."""
        ordered = sorted(self._intervals)
        return ordered[len(ordered) // 2] if ordered else 0.0

    def _lag(self, stream_time: float, now: float) -> float:
        last, offset = self._last, self._offset
        self._last = (stream_time, now)
        if last is None or offset is None:
            self._new_time_line(stream_time, now)
            return 0.0
        ahead = (stream_time - last[0]) - (now - last[1])
        if stream_time < last[0] or ahead > self.JUMP:
            self._new_time_line(stream_time, now)
            return 0.0
        if stream_time > last[0]:
            self._intervals.append(stream_time - last[0])
        self._offset = min(offset + self.DRIFT * (now - last[1]), now - stream_time)
        return (now - stream_time) - self._offset

    def _new_time_line(self, stream_time: float, now: float) -> None:
        self._offset, self._late_since = now - stream_time, None
        self._intervals.clear()


def _within_factor(first: float, second: float, factor: float) -> bool:
    return first > 0 and second > 0 and 1 / factor <= first / second <= factor


class VideoSource:
    """Reads `url` (or camera `device`) on one daemon thread; `latest()` is the newest frame."""

    def __init__(
        self,
        url: str,
        *,
        device: int | None = None,
        size: tuple[int, int] = (1280, 720),
        stall_seconds: float = 1.0,
        open_timeout: float = 10.0,
        max_backoff: float = 2.0,
        heartbeat: Heartbeat | None = None,
        cuts: Callable[[np.ndarray, np.ndarray], bool] | None = None,
    ) -> None:
        """`cuts` tells, for each frame in capture order, whether it starts a new scene
        (edgeface.scanning.SceneWatch.cut): every reader of a frame then knows its scene."""
        self.url = url
        self.device = device
        self.size = size
        self.stall_seconds = stall_seconds
        self.open_timeout = open_timeout
        self.read_timeout = max(MIN_READ_TIMEOUT, 3 * stall_seconds)
        self.max_backoff = max_backoff
        self.heartbeat = heartbeat or Heartbeat("capture")
        self.is_file = device is None and Path(url).is_file()
        self.network = device is None and not self.is_file  # timestamps are checked, reads time out
        self._interval = 0.0  # the stream's frame interval, seconds (StreamClock.interval)
        self._late = 0
        self._latest: Frame | None = None
        self._new_frame = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._frames = 0
        self._cuts = cuts
        self._scene = 0  # number of the frame the current scene started on
        self._reconnects = 0
        self._error: str | None = "not started"
        self._recent: collections.deque[float] = collections.deque(maxlen=64)

    @property
    def description(self) -> str:
        """What the log and the status call this source: its camera index, or its URL without a
        password or query values (a file path as it is)."""
        return f"camera {self.device}" if self.device is not None else redacted(self.url)

    def start(self) -> VideoSource:
        if self._thread is None:
            os.environ.setdefault(FFMPEG_OPTIONS_VARIABLE, FAST_PROBE)
            self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
            self.heartbeat.attach(self._thread, self.open_timeout)
            self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        """Ask the thread to end; a capture stuck in open() or read() is left to its timeout
        (a daemon thread: it does not hold up the process's exit)."""
        self._stopping.set()
        self.heartbeat.end()
        with self._new_frame:
            self._new_frame.notify_all()
        if self._thread is not None:
            self._thread.join(max(timeout, 0.0))

    @property
    def stall_limit(self) -> float:
        """Seconds without a current frame that mean "no signal" (see the module's docstring)."""
        return max(self.stall_seconds, 2 * self._interval)

    def latest(self) -> Frame | None:
        return self._latest

    def wait_newer(self, number: int, timeout: float) -> Frame | None:
        """The newest frame if its number is above `number`, waiting up to `timeout` s; else None."""
        with self._new_frame:
            self._new_frame.wait_for(
                lambda: (
                    self._stopping.is_set() or (self._latest is not None and self._latest.number > number)
                ),
                timeout,
            )
            frame = self._latest
        return frame if frame is not None and frame.number > number else None

    def status(self) -> SourceStatus:
        frame = self._latest
        now = time.monotonic()
        age = None if frame is None else now - frame.received
        limit = self.stall_limit
        live = age is not None and age <= limit
        recent = [stamp for stamp in list(self._recent) if now - stamp <= 2.0]
        fps = (
            (len(recent) - 1) / (recent[-1] - recent[0])
            if len(recent) > 2 and recent[-1] > recent[0]
            else 0.0
        )
        error = None if live else (self._error or f"no frame for {age:.1f} s")
        state = LIVE if live else NO_SIGNAL
        return SourceStatus(state, self._frames, self._reconnects, fps, age, error, self._late, limit)

    def _open(self) -> Any:
        import cv2  # noqa: PLC0415

        if self.device is not None:
            capture = cv2.VideoCapture(self.device)
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
            return capture
        timeouts = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.read_timeout * 1000),
        ]
        return cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, timeouts)

    def _run(self) -> None:
        backoff = 0.25
        while not self._stopping.is_set():
            self.heartbeat.beat(self.open_timeout)
            capture = self._open()
            try:
                if not capture.isOpened():
                    self._error = f"cannot open {self.description}"
                    log.warning("%s; retrying in %.2f s", self._error, backoff)
                    self.heartbeat.beat(backoff)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                read = self._read_until_lost(capture)
            finally:
                capture.release()
            if read:
                backoff = 0.25
                if not self.is_file and not self._stopping.is_set():
                    self._reconnects += 1
                    self._error = f"stream {self.description} lost after {read} frames"
                    log.warning("%s; reconnecting", self._error)
            else:
                self._error = f"{self.description} opened but sent no frame"
                self.heartbeat.beat(backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def _read_until_lost(self, capture: Any) -> int:
        """Read until the capture fails (or the file ends); return how many frames it gave."""
        import cv2  # noqa: PLC0415

        interval = 0.0
        if self.is_file:
            rate = capture.get(cv2.CAP_PROP_FPS)
            interval = 1.0 / rate if 0 < rate < 1000 else 1.0 / 15
        clock = StreamClock()
        self._interval = 0.0
        count = 0
        next_due = time.monotonic()
        while not self._stopping.is_set():
            self.heartbeat.beat(self.read_timeout)
            ok, image = capture.read()
            if not ok or image is None:
                break
            count += 1
            if self.network:
                stream_time = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
                late = clock.is_late(stream_time, time.monotonic(), self.stall_limit)
                self._interval = clock.interval()
                if late:
                    self._late += 1  # held by the decoder since before a stall: not the present
                    continue
            self._publish(image)
            if interval:
                next_due += interval
                self._stopping.wait(max(0.0, next_due - time.monotonic()))
        return count

    def _publish(self, image: np.ndarray) -> None:
        now = time.monotonic()
        self._frames += 1
        self._recent.append(now)
        grey = thumbnail(image)  # for the scene watch, the scanner's plans and the still faces
        if self._cuts is not None and self._cuts(image, grey):
            self._scene = self._frames
        frame = Frame(image, self._frames, time.time(), now, scene=self._scene, grey=grey)
        with self._new_frame:
            self._latest = frame
            self._error = None
            self._new_frame.notify_all()
