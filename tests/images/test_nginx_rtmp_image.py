"""The nginx-rtmp image: accepts a publish on application `live` with the stream's publish key and
refuses one without it (or with another stream's), serves the stream only to allowed addresses,
non-root, records only when asked and prunes old recordings."""

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


KEY = "Pub1ishKeyForTheTests"
# A key per camera; '.', '-', '_' and '~' are characters the server must take literally.
DOOR_KEY = "D00r.Key-ForTheTests"
HALL_KEY = "Ha11_Key~ForTheTests"
# podman's default network: a reader on this host reaches the container from its gateway.
HOST_READER = "10.88.0.0/16"


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the publish key, as the role's Secret mounts it."""
    folder = tmp_path_factory.mktemp("rtmp-auth")
    folder.chmod(0o755)  # the server runs as a non-root user
    (folder / "publish-key").write_text(KEY)
    (folder / "publish-key").chmod(0o644)
    return folder


@pytest.fixture(scope="module")
def stream_keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key per stream (door, hall) in publish-keys, beside the shared publish-key, as the role's
    Secret of a site with several cameras mounts them."""
    folder = tmp_path_factory.mktemp("rtmp-stream-keys")
    folder.chmod(0o755)
    for name, text in (("publish-keys", f"door {DOOR_KEY}\nhall {HALL_KEY}\n"), ("publish-key", KEY)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o644)
    return folder


def start_rtmp(
    run_container: RunContainer, image: str, key_dir: Path, *options: str, play_allow: str = HOST_READER
) -> tuple[str, int, int]:
    rtmp, http = free_port(), free_port()
    name = run_container(
        image,
        options=[
            *("-p", f"127.0.0.1:{rtmp}:1935", "-p", f"127.0.0.1:{http}:8080"),
            *("-v", f"{key_dir}:/etc/nginx-rtmp/auth:ro", "-e", f"RTMP_PLAY_ALLOW={play_allow}"),
            *options,
        ],
    )
    wait_for_port(rtmp, timeout=20)
    return name, rtmp, http


def publish(video: Path, port: int, key: str = KEY, stream: str = "test") -> Publisher:
    return Publisher(video, f"rtmp://127.0.0.1:{port}/live/{stream}?key={key}")


def refused(video: Path, url: str) -> bool:
    """Whether the server drops a publisher of `video` to `url` (ffmpeg then fails)."""
    push = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-re", "-i", str(video), "-t", "2", "-c", "copy", "-f", "flv", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return push.returncode != 0


def published(url: str, seconds: float = 20) -> bool:
    """Whether ffprobe reads a stream at `url` within `seconds` (a play of a stream nobody
    publishes waits for one: that is a no)."""
    try:
        result = subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", url],
            capture_output=True,
            timeout=seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def test_nginx_rtmp_runs_as_a_non_root_user(built_images: dict[str, str]) -> None:
    config = image_config(built_images["nginx-rtmp"])
    assert config["User"] == "10001"
    assert {"1935/tcp", "8080/tcp"} <= set(config["ExposedPorts"])


def test_nginx_rtmp_serves_a_published_stream_to_a_reader(
    built_images: dict[str, str], run_container: RunContainer, video: Path, key_dir: Path
) -> None:
    name, rtmp, http = start_rtmp(run_container, built_images["nginx-rtmp"], key_dir)
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=5) as response:
        assert response.read() == b"ok\n"
    with publish(video, rtmp):
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
    built_images: dict[str, str], run_container: RunContainer, video: Path, tmp_path: Path, key_dir: Path
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
        key_dir,
        *("-e", "RTMP_RECORD=all", "-e", "RTMP_RECORD_KEEP_HOURS=48", "-v", f"{recordings}:/recordings"),
    )
    with publish(video, rtmp):
        probe(f"rtmp://127.0.0.1:{rtmp}/live/test")
    assert not old.exists()
    deadline = time.monotonic() + 10
    while not any(path.stat().st_size > 1000 for path in recordings.glob("test-*.flv")):
        assert time.monotonic() < deadline, f"no recording in {sorted(recordings.iterdir())}"
        time.sleep(0.2)


def test_nginx_rtmp_does_not_record_by_default(
    built_images: dict[str, str], run_container: RunContainer, video: Path, key_dir: Path
) -> None:
    name, rtmp, _ = start_rtmp(run_container, built_images["nginx-rtmp"], key_dir)
    with publish(video, rtmp):
        probe(f"rtmp://127.0.0.1:{rtmp}/live/test")
    assert podman("exec", name, "find", "/recordings", "-type", "f").stdout == ""
    assert podman("exec", name, "cat", "/var/lib/nginx-rtmp/record.conf").stdout.strip() == "record off;"


def test_nginx_rtmp_refuses_an_unknown_record_mode_by_name(built_images: dict[str, str]) -> None:
    result = podman(
        "run",
        "--rm",
        "-e",
        "RTMP_AUTH=off",
        "-e",
        "RTMP_RECORD=sometimes",
        built_images["nginx-rtmp"],
        check=False,
    )
    assert result.returncode == 64
    assert "RTMP_RECORD=sometimes" in result.stderr


def test_publishing_needs_the_key(
    built_images: dict[str, str], run_container: RunContainer, video: Path, key_dir: Path
) -> None:
    _, rtmp, _ = start_rtmp(run_container, built_images["nginx-rtmp"], key_dir)
    url = f"rtmp://127.0.0.1:{rtmp}/live/test"
    for wrong in (url, f"{url}?key=NotThePublishKey1234", f"{url}?key={KEY}x"):
        assert refused(video, wrong), f"{wrong} was let in"
    assert not published(url)
    with publish(video, rtmp):
        assert published(url)


def test_each_listed_stream_takes_its_own_key_only(
    built_images: dict[str, str], run_container: RunContainer, video: Path, stream_keys_dir: Path
) -> None:
    _, rtmp, _ = start_rtmp(run_container, built_images["nginx-rtmp"], stream_keys_dir)
    live = f"rtmp://127.0.0.1:{rtmp}/live"
    # Another camera's key, the shared key on a listed stream, its own key in another case: dropped.
    for stream, key, which in (
        ("door", HALL_KEY, "hall's key"),
        ("hall", DOOR_KEY, "door's key"),
        ("door", KEY, "the shared key"),
        ("door", DOOR_KEY.swapcase(), "its key in another case"),
    ):
        assert refused(video, f"{live}/{stream}?key={key}"), f"{stream} was let in with {which}"
    # Each camera with its own key, at once; a stream not listed takes the shared key (a one-key site).
    with publish(video, rtmp, DOOR_KEY, "door"), publish(video, rtmp, HALL_KEY, "hall"), publish(video, rtmp):
        for stream in ("door", "hall", "test"):
            assert published(f"{live}/{stream}"), f"{stream} was not let in with its key"


def test_only_allowed_addresses_may_play(
    built_images: dict[str, str], run_container: RunContainer, video: Path, key_dir: Path
) -> None:
    # Only the container's own loopback may play: this host, seen from the gateway, is refused.
    _, rtmp, _ = start_rtmp(run_container, built_images["nginx-rtmp"], key_dir, play_allow="127.0.0.1")
    with publish(video, rtmp):
        assert not published(f"rtmp://127.0.0.1:{rtmp}/live/test")


def test_a_missing_key_or_a_bad_setting_stops_the_server_naming_it(
    built_images: dict[str, str], tmp_path: Path
) -> None:
    image = built_images["nginx-rtmp"]
    missing = podman("run", "--rm", image, check=False)
    assert missing.returncode == 64
    assert "RTMP_PUBLISH_KEY_FILE=/etc/nginx-rtmp/auth/publish-key is not a readable file" in missing.stderr
    assert "RTMP_PUBLISH_KEYS_FILE=/etc/nginx-rtmp/auth/publish-keys lists no stream" in missing.stderr
    # A bad line of publish-keys is named by its number, its key never printed.
    (tmp_path / "publish-keys").write_text(f"door {DOOR_KEY}\nDoor {HALL_KEY}\n")
    tmp_path.chmod(0o755)
    (tmp_path / "publish-keys").chmod(0o644)
    bad_line = podman("run", "--rm", "-v", f"{tmp_path}:/etc/nginx-rtmp/auth:ro", image, check=False)
    assert bad_line.returncode == 64
    assert "RTMP_PUBLISH_KEYS_FILE=/etc/nginx-rtmp/auth/publish-keys line 2" in bad_line.stderr
    assert DOOR_KEY not in bad_line.stderr and HALL_KEY not in bad_line.stderr
    bad = podman("run", "--rm", "-e", "RTMP_AUTH=maybe", image, check=False)
    assert bad.returncode == 64 and "RTMP_AUTH=maybe" in bad.stderr
    lab = podman(
        "run",
        "--rm",
        "-e",
        "RTMP_AUTH=off",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "nginx-rtmp-entrypoint -t 2>&1",
        check=False,
    )
    assert "anyone may publish and play" in lab.stdout
