"""The nginx-rtmp image: accepts a publish on application `live`, serves it to a reader, non-root,
records only when asked and prunes old recordings."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from servers import Publisher, face_video, free_port, wait_for_port

from .conftest import RunContainer, image_config, podman

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def video(sample_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return face_video(sample_photos, tmp_path_factory.mktemp("video"), seconds=2)


def probe(url: str) -> dict[str, object]:
    """The first video stream of `url` as ffprobe reports it."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"ffprobe {url}: {result.stderr}"
    (stream,) = json.loads(result.stdout)["streams"]
    return dict(stream)


def start_rtmp(run_container: RunContainer, image: str, *options: str) -> tuple[str, int, int]:
    rtmp, http = free_port(), free_port()
    name = run_container(
        image, options=["-p", f"127.0.0.1:{rtmp}:1935", "-p", f"127.0.0.1:{http}:8080", *options]
    )
    wait_for_port(rtmp, timeout=20)
    return name, rtmp, http


def test_nginx_rtmp_runs_as_a_non_root_user(built_images: dict[str, str]) -> None:
    config = image_config(built_images["nginx-rtmp"])
    assert config["User"] == "10001"
    assert {"1935/tcp", "8080/tcp"} <= set(config["ExposedPorts"])


def test_nginx_rtmp_serves_a_published_stream_to_a_reader(
    built_images: dict[str, str], run_container: RunContainer, video: Path
) -> None:
    name, rtmp, http = start_rtmp(run_container, built_images["nginx-rtmp"])
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=5) as response:
        assert response.read() == b"ok\n"
    with Publisher(video, f"rtmp://127.0.0.1:{rtmp}/live/test"):
        stream = probe(f"rtmp://127.0.0.1:{rtmp}/live/test")
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/stat", timeout=5) as response:
            stat = response.read().decode()
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 1280, 720)
    assert "<name>test</name>" in stat
    processes = podman("exec", name, "ps", "-o", "user=", "-C", "nginx", check=False)
    if processes.returncode == 0:  # procps is not in the image; fall back to /proc below
        assert "root" not in processes.stdout
    owners = podman("exec", name, "sh", "-c", "stat -c %u /proc/[0-9]*/ 2>/dev/null | sort -u").stdout.split()
    assert owners == ["10001"]


def test_nginx_rtmp_records_only_when_asked_and_prunes_old_recordings(
    built_images: dict[str, str], run_container: RunContainer, video: Path, tmp_path: Path
) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    recordings.chmod(0o777)
    old = recordings / "old-recording.flv"
    old.write_bytes(b"FLV")
    three_days_ago = time.time() - 3 * 24 * 3600
    os.utime(old, (three_days_ago, three_days_ago))

    _, rtmp, _ = start_rtmp(
        run_container,
        built_images["nginx-rtmp"],
        *("-e", "RTMP_RECORD=all", "-e", "RTMP_RECORD_KEEP_HOURS=48", "-v", f"{recordings}:/recordings"),
    )
    with Publisher(video, f"rtmp://127.0.0.1:{rtmp}/live/test"):
        probe(f"rtmp://127.0.0.1:{rtmp}/live/test")
    assert not old.exists()
    deadline = time.monotonic() + 10
    while not any(path.stat().st_size > 1000 for path in recordings.glob("test-*.flv")):
        assert time.monotonic() < deadline, f"no recording in {sorted(recordings.iterdir())}"
        time.sleep(0.2)


def test_nginx_rtmp_does_not_record_by_default(
    built_images: dict[str, str], run_container: RunContainer, video: Path
) -> None:
    name, rtmp, _ = start_rtmp(run_container, built_images["nginx-rtmp"])
    with Publisher(video, f"rtmp://127.0.0.1:{rtmp}/live/test"):
        probe(f"rtmp://127.0.0.1:{rtmp}/live/test")
    assert podman("exec", name, "find", "/recordings", "-type", "f").stdout == ""
    assert podman("exec", name, "cat", "/var/lib/nginx-rtmp/record.conf").stdout.strip() == "record off;"


def test_nginx_rtmp_refuses_an_unknown_record_mode_by_name(built_images: dict[str, str]) -> None:
    result = podman("run", "--rm", "-e", "RTMP_RECORD=sometimes", built_images["nginx-rtmp"], check=False)
    assert result.returncode == 64
    assert "RTMP_RECORD=sometimes" in result.stderr
