"""The whole app on a real stream: nginx-rtmp on loopback, ffmpeg publishing the face video.

One server, publisher and app serve the whole module (opening RTMP and starting the inference
workers take seconds). The app runs at VIDEO_PROCESSING_FPS=2 so rates are measurable, with the
default two inference workers: one follows the faces, the other scans the whole frame.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeface.config import AppConfig
from edgeface.pipeline import Pipeline
from edgeface.tracks import RECHECK_SECONDS
from edgeface.web import create_app
from servers import (
    AppServer,
    Publisher,
    RtmpServer,
    Viewers,
    chromium,
    get_json,
    wait_until,
)

pytestmark = pytest.mark.slow


@dataclass
class LiveApp:
    url: str
    pipeline: Pipeline

    def status(self) -> dict:  # type: ignore[type-arg]
        result: dict = get_json(f"{self.url}/api/status")  # type: ignore[type-arg]
        return result


@pytest.fixture(scope="module")
def live(rtmp: RtmpServer, publisher: Publisher, obama_model: Path) -> Iterator[LiveApp]:
    config = AppConfig(
        model_filename=obama_model,
        video_stream_url=rtmp.url("test"),
        video_processing_fps=2,
        web_auth=False,  # the access checks: test_web_auth.py
        metrics_per_person=True,  # counted by name (the default counts known / Unknown only)
    )
    pipeline = Pipeline(config).start()
    with AppServer(create_app(config, pipeline)) as server:
        app = LiveApp(server.url, pipeline)
        # Both faces on screen: the halves of a new scene's scan report one at a time.
        both = ["Barack Obama", "Unknown"]
        wait_until(lambda: app.status()["names"] == both, 120, "Obama and the stranger to be named")
        yield app
    pipeline.stop()


def read_mjpeg_frames(url: str, count: int) -> list[np.ndarray]:
    """Read `count` JPEG parts from an MJPEG stream and decode them (BGR)."""
    frames = []
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        while len(frames) < count:
            line = response.readline()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                while response.readline() not in (b"\r\n", b""):
                    pass
                jpeg = response.read(length)
                frames.append(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
    return frames


def test_the_stream_is_recognised_through_api_status(live: LiveApp) -> None:
    status = live.status()

    assert status["names"] == ["Barack Obama", "Unknown"]
    assert status["model"] == {
        "version": "2401020304",
        "people": ["Barack Obama"],
        "file": status["model"]["file"],
        "error": None,
    }
    assert status["source"]["state"] == "live"
    assert status["source"]["input_fps"] > 5
    by_name = {item["name"]: item for item in status["detections"]}
    assert by_name["Barack Obama"]["distance"] < 0.6 < by_name["Unknown"]["distance"]
    assert by_name["Barack Obama"]["box"]["left"] < by_name["Unknown"]["box"]["left"]  # Obama is on the left


def test_the_video_feed_shows_annotated_720p_frames(live: LiveApp) -> None:
    frames = read_mjpeg_frames(f"{live.url}/video_feed", 4)

    assert all(frame.shape == (720, 1280, 3) for frame in frames)
    boxes = live.status()["detections"]
    for item in boxes:
        box = item["box"]
        _, g, r = frames[-1][(box["top"] + box["bottom"]) // 2, box["left"]].astype(int)
        if item["known"]:
            assert g > 150 and r < 80  # green box
        else:
            assert r > 200 and g < 80  # red box
    assert any(not np.array_equal(frames[0], later) for later in frames[1:])  # the video moves


def test_health_readiness_and_metrics(live: LiveApp) -> None:
    assert get_json(f"{live.url}/healthz") == {"status": "ok"}
    readiness = get_json(f"{live.url}/readyz")
    assert readiness == {
        "ready": True,
        "reasons": [],
        "model": {"version": "2401020304"},
        "detector": {"model": "hog", "cuda": False, "devices": 0, "required": False, "problem": None},
    }

    def metrics() -> str:
        with urllib.request.urlopen(f"{live.url}/metrics", timeout=10) as response:
            return str(response.read().decode())

    # Faces are counted per update; a name a scan gives shows before the follower's next update.
    text = wait_until(lambda: 'name="Barack Obama"' in (text := metrics()) and text, 10, "Obama counted")
    for metric in (
        "edgeface_frames_in_total",
        "edgeface_frames_recognised_total",
        "edgeface_inference_seconds_bucket",
        "edgeface_viewers",
        "edgeface_reconnects_total",
        'edgeface_faces_total{camera="test",name="Unknown"}',
        'edgeface_faces_total{camera="test",name="Barack Obama"}',
    ):
        assert metric in text


def test_updates_are_counted_once_and_paced_with_a_follower_and_a_scanner(live: LiveApp) -> None:
    workers = live.pipeline.workers
    assert all(worker._process is not None and worker._process.poll() is None for worker in workers)
    before, started = live.status()["recognition"], time.monotonic()
    time.sleep(6)
    after, elapsed = live.status()["recognition"], time.monotonic() - started

    updates = after["frames"] - before["frames"]
    assert updates > 0
    # Updates (the follower's) keep to VIDEO_PROCESSING_FPS=2; the scans in between are not updates.
    assert updates / elapsed <= 2 * 1.25
    assert 0 < after["rate"] <= 2 * 1.25
    # The scanner goes on scanning (a tile at a time, nothing changes) and the 2 faces get a
    # recognition attempt each every RECHECK_SECONDS once named, not one per update.
    assert after["scans"] > before["scans"]
    encoded = after["faces_encoded"] - before["faces_encoded"]
    assert 0 < encoded <= 2 * (elapsed / RECHECK_SECONDS + 1)
    with urllib.request.urlopen(f"{live.url}/metrics", timeout=10) as response:
        assert "edgeface_faces_encoded_total" in response.read().decode()


def capture_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "capture")


def test_loading_the_page_20_times_keeps_one_capture(live: LiveApp) -> None:
    before = live.status()
    for _ in range(20):
        with urllib.request.urlopen(f"{live.url}/", timeout=10) as response:
            page = response.read().decode()
        assert 'src="/video_feed"' in page
        read_mjpeg_frames(f"{live.url}/video_feed", 1)

    assert capture_threads() == 1
    after = wait_until(
        lambda: (s := live.status())["recognition"]["frames"] > before["recognition"]["frames"] + 2 and s,
        30,
        "recognition to go on",
    )
    assert after["source"]["frames"] > before["source"]["frames"]
    assert after["names"] == ["Barack Obama", "Unknown"]
    assert after["source"]["reconnects"] == before["source"]["reconnects"]


def recognitions_during(live: LiveApp, seconds: float) -> float:
    """Recognised frames per second over `seconds`, from the app's own counter."""
    start, started = live.pipeline.recognised, time.monotonic()
    time.sleep(seconds)
    return (live.pipeline.recognised - start) / (time.monotonic() - started)


def test_fifty_viewers_do_not_slow_recognition(live: LiveApp) -> None:
    one = Viewers(f"{live.url}/video_feed", 1, 12)
    time.sleep(1)
    alone = recognitions_during(live, 10)
    one_result = one.result()

    many = Viewers(f"{live.url}/video_feed", 50, 30)
    wait_until(lambda: live.pipeline.broadcaster.viewers >= 50, 10, "50 viewers")
    crowded = recognitions_during(live, 25)
    many_result = many.result()

    print(f"recognitions/s: 1 viewer {alone:.2f}, 50 viewers {crowded:.2f}")
    print(f"frames per viewer over 30 s: {min(many_result['parts'])} to {max(many_result['parts'])}")
    assert min(many_result["parts"]) > 30 * 10  # every viewer kept up (>= 10 of the 15 fps for 30 s)
    assert one_result["parts"][0] > 0
    assert crowded >= 0.7 * alone
    assert live.status()["names"] == ["Barack Obama", "Unknown"]


def test_stream_viewers_are_counted_until_they_hang_up(live: LiveApp) -> None:
    port = int(live.url.rsplit(":", 1)[1])
    viewers = []
    for _ in range(3):
        viewer = socket.create_connection(("127.0.0.1", port), timeout=10)
        viewer.sendall(b"GET /video_feed HTTP/1.1\r\nHost: edge\r\n\r\n")
        viewers.append(viewer)
    for viewer in viewers:
        data = b""
        while data.count(b"--frame\r\n") < 2:  # the newest frame at once, then the next
            chunk = viewer.recv(65536)
            assert chunk, f"the server closed the stream after {data[:200]!r}"
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0]
        assert head.startswith(b"HTTP/1.1 200 OK") and b"multipart/x-mixed-replace; boundary=frame" in head
    wait_until(lambda: live.status()["viewers"] == 3, 10, "3 viewers in /api/status")
    for viewer in viewers:
        viewer.close()
    wait_until(lambda: live.status()["viewers"] == 0, 10, "the viewers to be gone")
    with urllib.request.urlopen(f"{live.url}/metrics", timeout=10) as response:
        assert 'edgeface_viewers{camera="test"} 0.0' in response.read().decode()


def test_head_of_the_video_feed_answers_at_once(live: LiveApp) -> None:
    request = urllib.request.Request(f"{live.url}/video_feed", method="HEAD")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        assert response.read() == b""


def test_headless_chromium_shows_the_stream_and_names(live: LiveApp, tmp_path: Path) -> None:
    with chromium(tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto(f"{live.url}/", wait_until="domcontentloaded")
        page.wait_for_function(
            "() => { const img = document.getElementById('stream');"
            " return img && img.naturalWidth > 0 && img.naturalHeight > 0; }",
            timeout=30_000,
        )
        size = page.evaluate(
            "() => [document.getElementById('stream').naturalWidth,"
            " document.getElementById('stream').naturalHeight]"
        )
        page.wait_for_function(
            "() => document.getElementById('names').textContent.includes('Barack Obama')", timeout=30_000
        )
        names = page.locator("#names li .name").all_text_contents()
        version = page.locator("#model-version").text_content()

    assert size == [1280, 720]
    assert sorted(names) == ["Barack Obama", "Unknown"]
    assert version == "2401020304"
