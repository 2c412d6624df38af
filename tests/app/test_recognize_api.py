"""POST /api/recognize over real HTTP (waitress on loopback, the device's worker): a photo's faces
named as the video names them, a bearer token or a session needed, bad uploads refused with the
reason."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgeface.auth import token_line, user_line
from edgeface.picture import MAX_BYTES
from servers import AppServer, face_frame

from .conftest import config_without_stream, serving

TOKEN = "recognise-0123456789abcdef"


@pytest.fixture(scope="module")
def server(obama_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    directory = tmp_path_factory.mktemp("recognize")
    (directory / "users").write_text(user_line("alice", "correct horse battery") + "\n")
    (directory / "tokens").write_text(token_line("doorbell", TOKEN) + "\n")
    config = replace(
        config_without_stream(obama_model),
        web_auth=True,
        web_users_file=directory / "users",
        web_tokens_file=directory / "tokens",
    )
    with serving(config) as app_server:
        yield app_server


def post(
    server: AppServer, body: bytes, headers: dict[str, str] | None = None, token: str | None = TOKEN
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        sent = {"Content-Type": "image/jpeg", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        connection.request("POST", "/api/recognize", body=body, headers=sent)
        response = connection.getresponse()
        text = response.read()
        return response.status, json.loads(text) if text.startswith(b"{") else text
    finally:
        connection.close()


def jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return encoded.tobytes()


def test_a_photo_gets_its_faces_named_as_the_video_names_them(server: AppServer, sample_photos: Path) -> None:
    frame = face_frame(sample_photos)  # Obama (~90 px) and Biden (~62 px), whom this model does not know
    started = time.monotonic()
    status, answer = post(server, jpeg(frame))
    elapsed = time.monotonic() - started

    assert status == 200, answer
    assert answer["names"] == ["Barack Obama", "Unknown"]
    obama, stranger = answer["faces"]  # left to right
    assert obama["known"] and obama["distance"] < 0.6 and obama["box"]["left"] < 640
    assert not stranger["known"] and stranger["box"]["left"] > 640
    assert answer["picture"] == {"width": 1280, "height": 720}
    assert answer["model"]["version"]
    print(f"\n/api/recognize answered a 1280x720 photo in {elapsed:.3f} s (worker {answer['seconds']} s)")


def test_a_large_photo_is_scaled_and_its_boxes_are_in_its_own_pixels(
    server: AppServer, sample_photos: Path
) -> None:
    frame = cv2.resize(
        face_frame(sample_photos), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC
    )  # 3840x2160
    status, answer = post(server, jpeg(frame), {"Content-Type": "application/octet-stream"})
    assert status == 200, answer
    assert answer["names"] == ["Barack Obama", "Unknown"]
    assert answer["picture"] == {"width": 3840, "height": 2160}
    assert answer["faces"][1]["box"]["left"] > 1920  # its own pixels, not the scanned copy's


def test_a_form_upload_with_one_file_is_read(server: AppServer, sample_photos: Path) -> None:
    boundary = "edgefaceboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="picture"; filename="door.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + jpeg(face_frame(sample_photos))
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, answer = post(server, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200 and answer["names"] == ["Barack Obama", "Unknown"]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"", 400, "the body is empty"),
        (b"GIF89a not really a picture", 400, "not a picture"),
        (b"\xff" * (MAX_BYTES + 1), 413, f"at most {MAX_BYTES}"),
    ],
    ids=["empty", "not-an-image", "too-large"],
)
def test_a_bad_upload_is_refused_with_its_reason(
    server: AppServer, body: bytes, status: int, reason: str
) -> None:
    answered, answer = post(server, body)
    assert answered == status
    assert reason in answer["error"]


def test_without_a_credential_the_upload_is_refused(server: AppServer, sample_photos: Path) -> None:
    status, _ = post(server, jpeg(face_frame(sample_photos)), token=None)
    assert status == 401
    status, _ = post(server, jpeg(face_frame(sample_photos)), token="not-the-token-0123456789")
    assert status == 401
