"""Real servers on loopback for the tests and benchmarks: nginx with the RTMP module, an ffmpeg publisher.

Nothing here is a stand-in: `RtmpServer` runs Debian's nginx with `ngx_rtmp_module` from a temporary
configuration on 127.0.0.1 and a free port, and `Publisher` runs ffmpeg pushing a real H.264 video
made from the sample face photos (`face_video`): 1280x720, Obama's face ~90 px tall and Biden's ~62 px,
with a moving marker so that every frame differs.

    with RtmpServer() as rtmp, Publisher(face_video(photos, tmp), rtmp.url("test")):
        ...  # rtmp://127.0.0.1:PORT/live/test is live
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
FRAME_SIZE = (1280, 720)
FRAME_RATE = 15
FACES = (("obama.jpg", 90, (250, 200)), ("biden.jpg", 60, (820, 330)))
"""Which photo, its face's height in the photo's HOG box once scaled (px) and where the crop goes (x, y).

Detected at full scale in the composed 1280x720 frame, the faces measure ~90 px (Obama) and ~63 px
(Biden): HOG boxes of a face do not scale exactly with the image.
"""
PEOPLE = {"obama.jpg": "Barack Obama", "biden.jpg": "Joe Biden"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop_process(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop a child we started (by its own pid only) and reap it."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def face_crop(photo: Path, face_height: int) -> np.ndarray:
    """BGR crop around the single face in `photo`, scaled so the HOG face box is `face_height` px."""
    import cv2
    import face_recognition

    bgr = cv2.imread(str(photo))
    if bgr is None:
        raise FileNotFoundError(f"cannot read photo {photo}")
    (top, right, bottom, left), *_ = face_recognition.face_locations(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    scale = face_height / (bottom - top)
    small = cv2.resize(bgr, (0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    centre_y, centre_x = int((top + bottom) / 2 * scale), int((left + right) / 2 * scale)
    half = int(face_height * 1.6)
    return small[max(centre_y - half, 0) : centre_y + half, max(centre_x - half, 0) : centre_x + half]


def face_frame(photos: Path, marker: int = 0) -> np.ndarray:
    """One 1280x720 BGR frame with the FACES on grey; a small white marker at x = `marker` px."""
    width, height = FRAME_SIZE
    frame = np.full((height, width, 3), 96, dtype=np.uint8)
    for name, face_height, (x, y) in FACES:
        crop = face_crop(photos / name, face_height)
        frame[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
    frame[690:710, marker % (width - 20) : marker % (width - 20) + 20] = 255
    return frame


def face_video(photos: Path, directory: Path, seconds: int = 4) -> Path:
    """An H.264 MP4 (1280x720, 15 fps, keyframe every second) of `face_frame`, the marker moving.

    Cached in `directory` (the same file serves every test of a session).
    """
    target = directory / "faces-720p.mp4"
    if target.is_file():
        return target
    base = face_frame(photos)
    width, height = FRAME_SIZE
    command = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24"]
    command += ["-s", f"{width}x{height}", "-r", str(FRAME_RATE), "-i", "-", "-c:v", "libx264"]
    command += ["-preset", "veryfast", "-g", str(FRAME_RATE), "-pix_fmt", "yuv420p", str(target) + ".tmp.mp4"]
    encoder = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
    )
    assert encoder.stdin is not None
    for index in range(seconds * FRAME_RATE):
        frame = base.copy()
        frame[690:710] = 96
        x = (index * 20) % (width - 20)
        frame[690:710, x : x + 20] = 255
        encoder.stdin.write(frame.tobytes())
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise RuntimeError("ffmpeg could not encode the face video")
    os.replace(str(target) + ".tmp.mp4", target)
    return target


class RtmpServer:
    """nginx + ngx_rtmp_module on 127.0.0.1:`port`, application `live`, from a temp config."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="rtmp-"))
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, key: str = "test") -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def start(self) -> RtmpServer:
        if not Path(RTMP_MODULE).is_file():
            raise FileNotFoundError(f"{RTMP_MODULE} is missing: install libnginx-mod-rtmp")
        (self.directory / "logs").mkdir(exist_ok=True)
        config = self.directory / "nginx.conf"
        config.write_text(
            f"load_module {RTMP_MODULE};\n"
            "daemon off;\n"
            "master_process off;\n"
            f"pid {self.directory}/nginx.pid;\n"
            f"error_log {self.directory}/logs/error.log warn;\n"
            "events { worker_connections 256; }\n"
            "rtmp { server {\n"
            f"  listen 127.0.0.1:{self.port};\n"
            "  application live { live on; record off; }\n"
            "} }\n"
        )
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.directory), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGQUIT)
            self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RtmpServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


class Publisher:
    """ffmpeg publishing `video` in a loop, in real time, to `url` (RTMP/FLV, H.264, no re-encode)."""

    def __init__(self, video: Path, url: str) -> None:
        self.video = video
        self.url = url
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Publisher:
        self.process = subprocess.Popen(
            [
                *("ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(self.video)),
                *("-c", "copy", "-f", "flv", self.url),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.starts += 1
        return self

    def kill(self) -> None:
        """Drop the stream abruptly (SIGKILL: no FLV trailer), as a crashed camera would."""
        if self.process is not None:
            stop_process(self.process, signal.SIGKILL)
            self.process = None

    def restart(self) -> Publisher:
        self.kill()
        return self.start()

    def __enter__(self) -> Publisher:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.kill()
