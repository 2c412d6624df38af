"""The run's one appliance (podman runtime, embedded S3 store), which this package leaves serving the
model it found."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import local_appliance
from servers import Publisher, face_video


@pytest.fixture(scope="package")
def deployed(appliance: local_appliance.Deployment) -> Iterator[str]:
    """The first site run's output; at the end the model in service at the start is put back."""
    serving = local_appliance.model_version()
    yield appliance.output
    if local_appliance.model_version() != serving:
        local_appliance.rollback(serving)


@pytest.fixture(scope="package")
def s3(deployed: str) -> local_appliance.EmbeddedStore:
    """The SeaweedFS store site.yml brought up (edge_s3: embedded), bucket `models` made."""
    return local_appliance.EmbeddedStore()


@pytest.fixture(scope="package")
def stream(deployed: str, sample_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ffmpeg publishes Obama (~90 px) and Biden (~62 px) to the appliance's RTMP port."""
    video = face_video(sample_photos, tmp_path_factory.mktemp("video"))
    with Publisher(video, local_appliance.publish_url()):
        yield video


@pytest.fixture
def photos(tmp_path: Path, sample_photos: Path) -> Path:
    """An empty photos folder; tests copy the people they want into it."""
    folder = tmp_path / "photos"
    folder.mkdir()
    return folder
