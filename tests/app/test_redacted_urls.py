"""A camera URL's password and query values never reach the log or /api/status: `redacted`, and a
real capture that cannot open such a URL."""

from __future__ import annotations

import logging

import pytest

from edgeface.redaction import may_carry_secret, redacted
from edgeface.source import VideoSource
from servers import free_port, wait_until


def test_the_password_and_every_query_value_are_hidden() -> None:
    assert redacted("rtsp://u:p@h/x?token=t&a=b") == "rtsp://u:***@h/x?token=***&a=***"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:s3cret@10.0.0.5:554/stream", "rtsp://admin:***@10.0.0.5:554/stream"),
        ("rtsp://cam/live?token=abc", "rtsp://cam/live?token=***"),
        ("rtsp://cam/live?abc#part", "rtsp://cam/live?***#part"),
        ("rtsp://a:p@ss@cam/live", "rtsp://a:***@cam/live"),  # the last @ ends the user part
        ("rtsp://admin@cam/live", "rtsp://admin@cam/live"),  # a user without a password
        ("http://[::1]:8080/video?key=", "http://[::1]:8080/video?key=***"),
    ],
)
def test_a_url_keeps_what_tells_the_camera_apart(url: str, shown: str) -> None:
    assert redacted(url) == shown


@pytest.mark.parametrize(
    "unchanged",
    [
        "rtmp://h/live/test",
        "rtmp://nginx-rtmp:1935/live/door",
        "/videos/hall.mp4",
        "videos/what?.mp4",  # a path: no scheme, nothing is a query
        "C:\\videos\\door.mp4",
        "",
    ],
)
def test_urls_without_a_credential_and_file_paths_are_shown_as_they_are(unchanged: str) -> None:
    assert redacted(unchanged) == unchanged


def test_a_user_part_or_a_query_may_carry_a_secret() -> None:
    assert may_carry_secret("door=rtsp://admin:s3cret@10.0.0.5/stream")
    assert may_carry_secret("rtsp://cam/live?token=abc")
    assert may_carry_secret("rtsp://admin@cam/live")
    assert not may_carry_secret("door=rtmp://nginx-rtmp:1935/live/door")
    assert not may_carry_secret("/videos/hall.mp4")


def test_a_source_that_cannot_open_shows_its_url_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens on the port: the capture fails to open, and its status and log say so."""
    port = free_port()
    url = f"rtsp://admin:s3cret@127.0.0.1:{port}/stream?token=abc"
    source = VideoSource(url, open_timeout=1.0, max_backoff=0.5)
    assert source.description == f"rtsp://admin:***@127.0.0.1:{port}/stream?token=***"
    with caplog.at_level(logging.WARNING, logger="edgeface.source"):
        source.start()
        try:
            error = wait_until(
                lambda: (source.status().error or "").startswith("cannot open") and source.status().error,
                20,
                "the capture to fail to open",
            )
        finally:
            source.stop()
    assert error == f"cannot open {source.description}"
    assert "cannot open rtsp://admin:***@" in caplog.text
    assert "s3cret" not in error + caplog.text and "abc" not in error + caplog.text
