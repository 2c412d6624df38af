"""The broadcaster encodes each frame once and every viewer gets the same bytes."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from edgeface.broadcaster import Broadcaster


def test_every_viewer_gets_the_same_encoded_part() -> None:
    broadcaster = Broadcaster()
    streams = [broadcaster.stream(idle_timeout=0.2) for _ in range(5)]
    image = np.zeros((72, 128, 3), dtype=np.uint8)
    image[10:30, 10:30] = (0, 0, 255)
    published = broadcaster.publish(image, captured=123.5)

    parts = [next(stream) for stream in streams]

    assert broadcaster.viewers == 5
    assert all(part is published.part for part in parts)  # one encoding, shared
    head, _, body = parts[0].partition(b"\r\n\r\n")
    assert b"Content-Type: image/jpeg" in head and b"X-Captured-At: 123.500000" in head
    decoded = cv2.imdecode(np.frombuffer(body[:-2], np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == image.shape
    for stream in streams:
        stream.close()
    assert broadcaster.viewers == 0


def test_a_slow_viewer_skips_to_the_newest_frame() -> None:
    broadcaster = Broadcaster()
    stream = broadcaster.stream(idle_timeout=0.2)
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    broadcaster.publish(image)
    next(stream)
    for _ in range(3):
        newest = broadcaster.publish(image)

    assert next(stream) is newest.part
    stream.close()


def test_close_ends_waiting_viewers() -> None:
    broadcaster = Broadcaster()
    received: list[bytes] = []
    viewer = threading.Thread(target=lambda: received.extend(broadcaster.stream(idle_timeout=0.1)))
    viewer.start()
    broadcaster.close()
    viewer.join(5)
    assert not viewer.is_alive()
