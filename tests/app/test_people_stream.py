"""Naming a stranger from the live video: the face of an Unknown track, cut from the frame the app
holds, becomes a training photo in a real S3 store (SeaweedFS) that shows that person and nobody
else. The stream is real: ffmpeg publishes the two-face video to nginx-rtmp."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import face_recognition
import numpy as np
import pytest

from edgeface.pipeline import Pipeline
from edgeface.web import create_app
from servers import AppServer, Publisher, S3Server, wait_until

from .conftest import config_without_stream

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(
    obama_model: Path, publisher: Publisher, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AppServer, S3Server]]:
    directory = tmp_path_factory.mktemp("people-stream")
    with S3Server() as store:
        (directory / "access").write_text(store.access_key)
        (directory / "secret").write_text(store.secret_key)
        config = replace(
            config_without_stream(obama_model),
            video_stream_url=publisher.url,
            people_s3_url=store.url,
            people_s3_access_key_file=directory / "access",
            people_s3_secret_key_file=directory / "secret",
        )
        pipeline = Pipeline(config).start()
        try:
            with AppServer(create_app(config, pipeline)) as server:
                yield server, store
        finally:
            pipeline.stop()


def post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def unknown_track(server: AppServer) -> int | None:
    with urllib.request.urlopen(f"{server.url}/api/status", timeout=10) as response:
        status = json.loads(response.read())
    return next((face["track"] for face in status["detections"] if not face["known"]), None)


def encoding(image: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    boxes = face_recognition.face_locations(rgb, number_of_times_to_upsample=1)
    assert len(boxes) == 1, boxes
    return np.asarray(face_recognition.face_encodings(rgb, boxes)[0])


def test_an_unknown_face_on_screen_is_stored_as_a_photo_of_that_person(
    site: tuple[AppServer, S3Server], sample_photos: Path
) -> None:
    server, store = site
    track = wait_until(lambda: unknown_track(server), 60, "an Unknown face on screen")

    status, answer = post_json(f"{server.url}/api/tracks/{track}/enroll", {"name": "Joe Biden"})

    assert status == 201, answer
    assert answer["track"] == track and answer["camera"] == "test"
    key = f"photos/Joe Biden/{answer['photo']}.jpg"
    assert key in S3Server.keys(store)
    body = store.client().get_object(Bucket=store.bucket, Key=key)["Body"].read()
    photo = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    # One face, large enough for the trainer's detector, and it is Biden (the stranger), not Obama.
    stored = encoding(photo)
    biden = encoding(cv2.imread(str(sample_photos / "biden.jpg")))
    obama = encoding(cv2.imread(str(sample_photos / "obama.jpg")))
    assert np.linalg.norm(stored - biden) < 0.5 < np.linalg.norm(stored - obama)

    assert post_json(f"{server.url}/api/tracks/99999/enroll", {"name": "Joe Biden"})[0] == 404
    assert post_json(f"{server.url}/api/tracks/{track}/enroll", {"name": ""})[0] == 400
