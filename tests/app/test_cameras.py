"""Several cameras on one device: nginx-rtmp on loopback, two ffmpeg publishers (door, hall), one
app with VIDEO_STREAM_URLS sharing its two inference workers between them."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeface.config import AppConfig, parse_cameras
from edgeface.pipeline import Pipeline
from edgeface.web import create_app
from servers import (
    AppServer,
    Publisher,
    RtmpServer,
    chromium,
    get_json,
    wait_until,
    watch_mjpeg,
)

pytestmark = pytest.mark.slow

BOTH = ["Barack Obama", "Unknown"]
BUILD = Path(__file__).resolve().parents[2] / "build"  # the page's screenshot, for the docs


@pytest.fixture(scope="module")
def two_cameras(rtmp: RtmpServer, video: Path, obama_model: Path) -> Iterator[tuple[str, Pipeline]]:
    cameras = parse_cameras(f"door={rtmp.url('door')},hall={rtmp.url('hall')}")
    config = AppConfig(
        model_filename=obama_model, video_stream_urls=cameras, video_processing_fps=5, web_auth=False
    )
    with Publisher(video, rtmp.url("door")), Publisher(video, rtmp.url("hall")):
        pipeline = Pipeline(config).start()
        try:
            with AppServer(create_app(config, pipeline)) as server:
                wait_until(
                    lambda: (
                        [c["names"] for c in get_json(f"{server.url}/api/status")["cameras"]] == [BOTH, BOTH]
                    ),
                    120,
                    "Obama and the stranger named on both cameras",
                )
                yield server.url, pipeline
        finally:
            pipeline.stop()


def test_each_camera_is_recognised_and_reported_on_its_own(two_cameras: tuple[str, Pipeline]) -> None:
    url, _ = two_cameras
    status = get_json(f"{url}/api/status")

    assert [camera["name"] for camera in status["cameras"]] == ["door", "hall"]
    for camera in status["cameras"]:
        assert camera["source"]["state"] == "live" and camera["source"]["input_fps"] > 5
        assert camera["recognition"]["frames"] > 0
        by_name = {item["name"]: item for item in camera["detections"]}
        assert by_name["Barack Obama"]["distance"] < 0.6 < by_name["Unknown"]["distance"]
    # The top level is the first camera's, as with one camera.
    assert status["names"] == status["cameras"][0]["names"] and status["source"]["state"] == "live"


def test_each_camera_has_its_own_stream_and_an_unknown_one_is_404(two_cameras: tuple[str, Pipeline]) -> None:
    url, pipeline = two_cameras
    hall = watch_mjpeg(f"{url}/video_feed/hall", 1, 3)
    first = watch_mjpeg(f"{url}/video_feed", 1, 3)

    assert hall["parts"][0] > 10 and first["parts"][0] > 10
    assert pipeline.camera("hall").metrics.displayed > 0  # type: ignore[union-attr]
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{url}/video_feed/garage", timeout=10)
    assert missing.value.code == 404


def test_metrics_and_health_name_the_camera(two_cameras: tuple[str, Pipeline]) -> None:
    url, pipeline = two_cameras
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()

    for camera in ("door", "hall"):
        assert f'edgeface_signal{{camera="{camera}"}} 1.0' in text
        assert f'edgeface_faces_total{{camera="{camera}",name="Unknown"}}' in text
    assert get_json(f"{url}/healthz") == {"status": "ok"}
    loops = set(pipeline.liveness.names())
    assert {"capture door", "follow hall", "scan door", "display hall", "inference-0"} <= loops


def test_the_page_shows_every_camera_in_a_grid_one_large_on_click(
    two_cameras: tuple[str, Pipeline], tmp_path: Path
) -> None:
    url, _ = two_cameras
    with chromium(tmp_path / "profile", viewport={"width": 1400, "height": 900}) as browser:
        page = browser.new_page()
        page.goto(f"{url}/", wait_until="domcontentloaded")
        page.wait_for_function(
            "() => [...document.querySelectorAll('figure.camera img')]"
            ".every((img) => img.naturalWidth === 1280)",
            timeout=30_000,
        )
        page.wait_for_function(
            "() => document.getElementById('names').textContent.includes('hall')", timeout=30_000
        )
        names = page.evaluate(  # each face's name and camera (not an operator's button)
            "() => [...document.querySelectorAll('#names li')].map((li) =>"
            " li.querySelector('.name').textContent + (li.querySelector('.where')?.textContent ?? ''))"
        )
        widths = page.evaluate(
            "() => [...document.querySelectorAll('figure.camera')].map((f) => f.clientWidth)"
        )
        page.screenshot(path=str(BUILD / "cameras-page.png"))
        page.locator('figure[data-camera="hall"]').click()
        large = page.evaluate(
            "() => [...document.querySelectorAll('figure.camera')].map((f) => f.classList.contains('large'))"
        )
        hall_width = page.locator('figure[data-camera="hall"]').evaluate("(f) => f.clientWidth")

    assert sorted(names) == sorted(f"{name} · {camera}" for name in BOTH for camera in ("door", "hall"))
    assert widths[0] == widths[1]  # a grid of equal tiles
    assert large == [False, True] and hall_width > 1.5 * widths[1]  # the clicked one spans the grid
