"""Fixtures for the web app tests: a model made from real photos, the face video, live servers."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgeface.config import AppConfig
from edgeface.inference import ScanJob
from edgeface.values import Box
from servers import PEOPLE, AppServer, Publisher, RtmpServer, face_video, free_port, wait_until


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the app's quick tests (tests/stages.sh runs them beside the appliance's suites: they
    time nothing and share no host state with it; the streams run alone, after it)."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.app_unit)


@pytest.fixture(scope="session")
def video(sample_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1280x720 H.264 video of Obama (~90 px face) and Biden (~63 px face), 15 fps."""
    return face_video(sample_photos, tmp_path_factory.mktemp("video"))


@pytest.fixture(scope="session")
def slow_video(video: Path) -> Path:
    """The face video at 1 frame per second (every frame a keyframe), as a slow camera sends it."""
    target = video.parent / "faces-720p-1fps.mp4"
    if not target.is_file():
        subprocess.run(
            [
                *("ffmpeg", "-loglevel", "error", "-y", "-i", str(video), "-vf", "fps=1"),
                *("-c:v", "libx264", "-preset", "veryfast", "-g", "1", "-pix_fmt", "yuv420p", str(target)),
            ],
            check=True,
            timeout=120,
        )
    return target


@pytest.fixture(scope="session")
def obama_model(sample_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model file that knows only Barack Obama (from obama.jpg): Biden must come out Unknown."""
    import cv2

    from edgeface.detector import Detector
    from edgeface.model import FaceModel, save_model
    from edgeface.recogniser import encode_faces

    rgb = cv2.cvtColor(cv2.imread(str(sample_photos / "obama.jpg")), cv2.COLOR_BGR2RGB)
    boxes = Detector().detect(rgb)
    path = tmp_path_factory.mktemp("model") / "model.data"
    model = FaceModel(encode_faces(rgb, boxes), (PEOPLE["obama.jpg"],), {"version": "2401020304"})
    save_model(model, path)
    return path


@pytest.fixture(scope="module")
def rtmp() -> Iterator[RtmpServer]:
    with RtmpServer() as server:
        yield server


@pytest.fixture(scope="module")
def publisher(rtmp: RtmpServer, video: Path) -> Iterator[Publisher]:
    with Publisher(video, rtmp.url("test")) as running:
        yield running


def config_without_stream(model: Path, **settings: object) -> AppConfig:
    """An app with one worker, no login, and a stream address nothing listens at: the worker idles,
    no frame costs a detection."""
    return AppConfig(
        model_filename=model,
        video_stream_url=f"rtmp://127.0.0.1:{free_port()}/live/none",
        inference_workers=1,
        web_auth=False,
        **settings,  # type: ignore[arg-type]
    )


@contextlib.contextmanager
def serving(config: AppConfig) -> Iterator[AppServer]:
    """The app of `config` served on loopback, its pipeline started and its worker ready."""
    from edgeface.pipeline import Pipeline
    from edgeface.web import create_app

    pipeline = Pipeline(config).start()
    try:
        wait_until(lambda: pipeline.pool.serving, 60, "the worker")
        with AppServer(create_app(config, pipeline)) as app_server:
            yield app_server
    finally:
        pipeline.stop()


def whole_frame_scan(image: np.ndarray) -> ScanJob:
    """A worker's job that finds every face of `image` and makes a recognition attempt of each."""
    height, width = image.shape[:2]
    return ScanJob([Box(0, width, height, 0)])
