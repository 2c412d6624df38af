"""The broadcaster encodes each frame once and every viewer gets the same bytes."""

from __future__ import annotations

import socket
import threading
import time

import cv2
import numpy as np

from edgeface.broadcaster import BOUNDARY, MIMETYPE, Broadcaster
from servers import wait_until


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


def read_until(connection: socket.socket, marker: bytes, seconds: float = 5.0) -> bytes:
    connection.settimeout(seconds)
    data = b""
    while marker not in data:
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_attached_sockets_get_the_head_then_each_new_part() -> None:
    broadcaster = Broadcaster()
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    first = broadcaster.publish(image, captured=1.0)
    ends = [socket.socketpair() for _ in range(3)]
    for server_end, _ in ends:
        broadcaster.attach(server_end, "1.1")

    for _, viewer_end in ends:
        data = read_until(viewer_end, first.part)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK") and MIMETYPE.encode() in head
        assert rest == first.part  # the newest frame at once
    assert broadcaster.viewers == 3

    second = broadcaster.publish(image, captured=2.0)
    for _, viewer_end in ends:
        assert read_until(viewer_end, second.part) == second.part

    ends[0][1].close()  # a viewer hangs up
    wait_until(lambda: broadcaster.viewers == 2, 5, "the viewer that hung up to be dropped", interval=0.01)
    broadcaster.close()
    assert broadcaster.viewers == 0
    assert ends[1][1].recv(10) == b""  # closed by the writer


def test_an_attached_viewer_that_reads_slowly_skips_to_the_newest_part() -> None:
    broadcaster = Broadcaster()
    server_end, viewer_end = socket.socketpair()
    server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    noise = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)  # large parts
    broadcaster.publish(noise)
    broadcaster.attach(server_end, "1.0")
    published = [broadcaster.publish(noise, captured=index) for index in range(1, 21)]  # none read
    time.sleep(0.2)
    newest = published[-1]

    data = read_until(viewer_end, newest.part)
    numbers = data.count(b"--" + BOUNDARY.encode() + b"\r\n")
    assert data.startswith(b"HTTP/1.0 200 OK")
    assert data.endswith(newest.part)
    assert numbers < 5  # the first part, perhaps one in between, then the newest: no backlog
    broadcaster.close()


def test_viewers_beyond_the_limit_get_503() -> None:
    broadcaster = Broadcaster(max_viewers=1)
    broadcaster.publish(np.zeros((16, 16, 3), dtype=np.uint8))
    kept, refused = socket.socketpair(), socket.socketpair()
    broadcaster.attach(kept[0])
    broadcaster.attach(refused[0])

    assert read_until(refused[1], b"\r\n\r\n").startswith(b"HTTP/1.1 503 Service Unavailable")
    assert refused[1].recv(10) == b""
    assert broadcaster.viewers == 1
    broadcaster.close()
