"""Broadcast stage: each displayed frame is JPEG-encoded once and the same bytes go to every viewer.

Viewers never decode, draw or encode. Two ways to watch:
- `attach(socket)`: the production path. The HTTP server hands the viewer's connection over
  (edgeface.server) and one writer thread sends each new part to every attached socket, without
  blocking: a viewer still taking the previous part skips to the newest one when it is done. Per
  viewer that is one send() per frame, no thread and no copy, so fifty viewers cost little more
  than one (with a WSGI thread and a chunked response per viewer they cost 27% more CPU).
- `stream()`: the same parts as a WSGI response iterator, for any other WSGI server.

Each multipart part carries an `X-Captured-At` header (epoch seconds when the frame left the
decoder) for latency measurements.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edgeface.liveness import Heartbeat

log = logging.getLogger(__name__)

BOUNDARY = "frame"
MIMETYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
MAX_VIEWERS = 200  # attached sockets; more get 503 (each costs a send per frame)
STALLED_SECONDS = 30.0  # a viewer that takes nothing of a part for this long is dropped
SELECT_SECONDS = 1.0  # the writer's longest wait for a frame, a viewer or a wake-up


@dataclass(frozen=True, eq=False)
class EncodedFrame:
    number: int  # 1, 2, ... in publish order
    captured: float  # epoch seconds the source frame was read (0 for generated frames)
    jpeg: bytes
    part: bytes  # the complete multipart part: boundary, headers, JPEG, CRLF


class Broadcaster:
    """Holds the newest encoded frame; any number of viewers wait on it."""

    def __init__(
        self, quality: int = 80, max_viewers: int = MAX_VIEWERS, heartbeat: Heartbeat | None = None
    ) -> None:
        self.quality = quality
        self._latest: EncodedFrame | None = None
        self._published = 0  # frames encoded so far: the next one's number is one more
        self._changed = threading.Condition()
        self._viewers = 0
        self._closed = False
        self._fanout = _Fanout(self, max_viewers, heartbeat or Heartbeat("mjpeg-writer"))

    @property
    def viewers(self) -> int:
        return self._viewers + self._fanout.viewers

    @property
    def writer_thread_id(self) -> int | None:
        """Native id of the thread that writes to attached sockets (None until the first viewer)."""
        return self._fanout.native_id

    def attach(self, connection: socket.socket, http_version: str = "1.1") -> None:
        """Take over `connection`, whose request for the stream has been read: send the response
        head, then every new part, until the viewer hangs up. The socket is closed here."""
        self._fanout.attach(connection, http_version)

    def latest(self) -> EncodedFrame | None:
        return self._latest

    def publish(self, image: np.ndarray, captured: float = 0.0) -> EncodedFrame:
        """JPEG-encode `image` (HxWx3 uint8 BGR) once and hand it to every viewer."""
        import cv2  # noqa: PLC0415

        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise ValueError(f"cannot JPEG-encode an image of shape {image.shape}")
        jpeg = buffer.tobytes()
        head = (
            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
            f"X-Captured-At: {captured:.6f}\r\n\r\n"
        ).encode()
        with self._changed:
            self._published += 1
            encoded = EncodedFrame(self._published, captured, jpeg, head + jpeg + b"\r\n")
            self._latest = encoded
            self._changed.notify_all()
        self._fanout.wake()
        return encoded

    def forget(self) -> None:
        """Nobody watches and frames are no longer encoded: the last one is dropped, so that the
        next viewer gets the next frame encoded instead of an old picture."""
        if self._latest is not None:
            with self._changed:
                self._latest = None

    def wait_newer(self, number: int, timeout: float) -> EncodedFrame | None:
        with self._changed:
            self._changed.wait_for(
                lambda: self._closed or (self._latest is not None and self._latest.number > number), timeout
            )
            latest = self._latest
        return latest if latest is not None and latest.number > number else None

    def close(self, timeout: float = 5.0) -> None:
        """End every viewer's stream (server shutdown), waiting up to `timeout` s for the writer."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._fanout.close(timeout)

    def stream(self, idle_timeout: float = 5.0) -> Iterator[bytes]:
        """Multipart parts for one viewer: the newest frame now, then each new one as it comes.

        A viewer that falls behind skips to the newest frame (never a queue per viewer).
        """
        with self._changed:
            self._viewers += 1
        try:
            seen = 0
            while not self._closed:
                encoded = self.wait_newer(seen, idle_timeout)
                if encoded is None:
                    continue
                seen = encoded.number
                yield encoded.part
        finally:
            with self._changed:
                self._viewers -= 1


class _Viewer:
    """An attached viewer: its socket and what it still has to take of the part being sent."""

    __slots__ = ("connection", "number", "pending", "progressed", "writing")

    def __init__(self, connection: socket.socket, head: bytes) -> None:
        self.connection = connection
        self.number = 0  # number of the newest frame started on this socket
        self.pending: memoryview | None = memoryview(head)
        self.progressed = time.monotonic()
        self.writing = False  # registered for writability (a part did not fit in the socket)


class _Fanout:
    """One thread that sends each new part to every attached socket (see the module's docstring)."""

    def __init__(self, broadcaster: Broadcaster, max_viewers: int, heartbeat: Heartbeat) -> None:
        self.broadcaster = broadcaster
        self.max_viewers = max_viewers
        self.heartbeat = heartbeat
        self._lock = threading.Lock()
        self._incoming: list[_Viewer] = []
        self._count = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self.native_id: int | None = None
        # Owned by the writer thread alone:
        self._selector = selectors.DefaultSelector()
        self._viewers: dict[socket.socket, _Viewer] = {}
        self._wake_in, self._wake_out = socket.socketpair()
        for end in (self._wake_in, self._wake_out):
            end.setblocking(False)

    @property
    def viewers(self) -> int:
        return self._count

    def attach(self, connection: socket.socket, http_version: str) -> None:
        version = http_version if http_version in ("1.0", "1.1") else "1.1"
        with self._lock:
            refused = self._closed or self._count >= self.max_viewers
            if not refused:
                self._count += 1
                head = (
                    f"HTTP/{version} 200 OK\r\nContent-Type: {MIMETYPE}\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
                )
                connection.setblocking(False)
                self._incoming.append(_Viewer(connection, head.encode()))
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="mjpeg-writer", daemon=True)
                    self.heartbeat.attach(self._thread, SELECT_SECONDS)
                    self._thread.start()
        if refused:
            with contextlib.suppress(OSError):
                connection.sendall(
                    f"HTTP/{version} 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    "Connection: close\r\nRetry-After: 5\r\n\r\n".encode()
                )
            connection.close()
            log.warning("MJPEG viewer refused: %d viewers already", self.max_viewers)
            return
        self.wake()

    def wake(self) -> None:
        """Tell the writer there is a new frame or viewer (a no-op until the first viewer)."""
        if self._thread is not None:
            with contextlib.suppress(BlockingIOError):  # a wake-up is pending already
                self._wake_out.send(b"\0")

    def close(self, timeout: float) -> None:
        with self._lock:
            self._closed = True
        self.heartbeat.end()
        self.wake()
        if self._thread is not None:
            self._thread.join(max(timeout, 0.0))

    def _run(self) -> None:
        self.native_id = threading.get_native_id()
        self._selector.register(self._wake_in, selectors.EVENT_READ)
        sent = 0  # number of the newest frame handed to the viewers
        checked = time.monotonic()
        while not self._closed:
            self.heartbeat.beat(SELECT_SECONDS)  # sends never block: a turn takes the select's wait
            for key, mask in self._selector.select(timeout=SELECT_SECONDS):
                if key.fileobj is self._wake_in:
                    with contextlib.suppress(BlockingIOError):
                        self._wake_in.recv(4096)
                    continue
                viewer: _Viewer = key.data
                if mask & selectors.EVENT_READ and not self._hears(viewer):
                    self._drop(viewer)
                elif mask & selectors.EVENT_WRITE:
                    self._send(viewer)
            with self._lock:
                incoming, self._incoming = self._incoming, []
            for viewer in incoming:
                self._viewers[viewer.connection] = viewer
                self._selector.register(viewer.connection, selectors.EVENT_READ, viewer)
                self._send(viewer)
            latest = self.broadcaster.latest()
            if latest is not None and latest.number > sent:
                sent = latest.number
                for viewer in list(self._viewers.values()):
                    if viewer.pending is None:
                        self._send(viewer)
            now = time.monotonic()
            if now - checked > 1.0:
                checked = now
                for viewer in list(self._viewers.values()):
                    if viewer.pending is not None and now - viewer.progressed > STALLED_SECONDS:
                        log.info("MJPEG viewer dropped: took nothing for %.0f s", STALLED_SECONDS)
                        self._drop(viewer)
        with self._lock:
            incoming, self._incoming = self._incoming, []
        for viewer in incoming:  # attached just before the close
            self._viewers[viewer.connection] = viewer
        for viewer in list(self._viewers.values()):
            self._drop(viewer)
        self._selector.close()

    @staticmethod
    def _hears(viewer: _Viewer) -> bool:
        """Read what the viewer sent (nothing is expected); False once it has hung up."""
        try:
            return bool(viewer.connection.recv(4096))
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _send(self, viewer: _Viewer) -> None:
        """Send what the socket takes now: the rest of the current part, then the newest part."""
        while True:
            if viewer.pending is None:
                latest = self.broadcaster.latest()
                if latest is None or latest.number <= viewer.number:
                    break
                viewer.number, viewer.pending = latest.number, memoryview(latest.part)
            try:
                count = viewer.connection.send(viewer.pending)
            except BlockingIOError:
                break
            except OSError:
                self._drop(viewer)
                return
            viewer.progressed = time.monotonic()
            viewer.pending = viewer.pending[count:] if count < len(viewer.pending) else None
            if viewer.pending is not None:
                break  # the socket is full: wait until it can take more
        writing = viewer.pending is not None
        if writing != viewer.writing:
            viewer.writing = writing
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
            self._selector.modify(viewer.connection, events, viewer)

    def _drop(self, viewer: _Viewer) -> None:
        if self._viewers.pop(viewer.connection, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(viewer.connection)
        viewer.connection.close()
        with self._lock:
            self._count -= 1
