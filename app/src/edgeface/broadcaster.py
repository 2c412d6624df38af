"""Broadcast stage: each displayed frame is JPEG-encoded once and the same bytes go to every viewer.

A viewer (`stream()`) only waits for the next part and writes it: it never decodes, draws or
encodes, so fifty viewers cost little more than one. Each multipart part carries an
`X-Captured-At` header (epoch seconds when the frame left the decoder) for latency measurements.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

BOUNDARY = "frame"
MIMETYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"


@dataclass(frozen=True, eq=False)
class EncodedFrame:
    number: int  # 1, 2, ... in publish order
    captured: float  # epoch seconds the source frame was read (0 for generated frames)
    jpeg: bytes
    part: bytes  # the complete multipart part: boundary, headers, JPEG, CRLF


class Broadcaster:
    """Holds the newest encoded frame; any number of viewers wait on it."""

    def __init__(self, quality: int = 80) -> None:
        self.quality = quality
        self._latest: EncodedFrame | None = None
        self._changed = threading.Condition()
        self._viewers = 0
        self._closed = False

    @property
    def viewers(self) -> int:
        return self._viewers

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
            number = 1 if self._latest is None else self._latest.number + 1
            encoded = EncodedFrame(number, captured, jpeg, head + jpeg + b"\r\n")
            self._latest = encoded
            self._changed.notify_all()
        return encoded

    def wait_newer(self, number: int, timeout: float) -> EncodedFrame | None:
        with self._changed:
            self._changed.wait_for(
                lambda: self._closed or (self._latest is not None and self._latest.number > number), timeout
            )
            latest = self._latest
        return latest if latest is not None and latest.number > number else None

    def close(self) -> None:
        """End every viewer's stream (server shutdown)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

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
