"""The people API over real HTTP (waitress on loopback), the device's worker and a real S3 store
(SeaweedFS): an operator stores and forgets photos, a viewer is refused, a bad photo is refused
with its reason, and the store holds exactly what the contract with retrain.yml says."""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgeface.auth import token_line, user_line
from servers import AppServer, S3Server, face_frame

from .conftest import config_without_stream, serving

VIEWER_TOKEN = "viewer-token-0123456789abcdef"
OPERATOR_TOKEN = "operator-token-0123456789abcdef"
OPERATOR, VIEWER = "olga", "victor"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def store() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture(scope="module")
def server(
    obama_model: Path, store: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    directory = tmp_path_factory.mktemp("people")
    (directory / "users").write_text(
        f"{user_line(OPERATOR, PASSWORD, 'operator')}\n{user_line(VIEWER, PASSWORD)}\n"
    )
    (directory / "tokens").write_text(
        f"{token_line('grafana', VIEWER_TOKEN)}\n{token_line('aap', OPERATOR_TOKEN, 'operator')}\n"
    )
    (directory / "access").write_text(store.access_key + "\n")
    (directory / "secret").write_text(store.secret_key + "\n")
    config = replace(
        config_without_stream(obama_model),
        web_auth=True,
        web_users_file=directory / "users",
        web_tokens_file=directory / "tokens",
        people_s3_url=store.url,
        people_s3_access_key_file=directory / "access",
        people_s3_secret_key_file=directory / "secret",
        people_retrain_command="ansible-playbook playbooks/retrain.yml -i inventories/local",
    )
    with serving(config) as app_server:
        yield app_server


def call(
    server: AppServer,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    token: str | None = OPERATOR_TOKEN,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        connection.request(method, urllib.parse.quote(path), body=body, headers=sent)
        response = connection.getresponse()
        text = response.read()
        return response.status, json.loads(text) if text.startswith(b"{") else text
    finally:
        connection.close()


def login(server: AppServer, user: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        form = urllib.parse.urlencode({"user": user, "password": PASSWORD})
        form_type = {"Content-Type": "application/x-www-form-urlencoded"}
        connection.request("POST", "/login", body=form, headers=form_type)
        response = connection.getresponse()
        response.read()
        cookie = response.getheader("Set-Cookie") or ""
        assert response.status == 303, response.status
        return cookie.split(";")[0]
    finally:
        connection.close()


def stored(store: S3Server, prefix: str = "") -> list[str]:
    """The store's keys under `prefix`."""
    return [key for key in S3Server.keys(store) if key.startswith(prefix)]


def read(store: S3Server, key: str) -> bytes:
    body: bytes = store.client().get_object(Bucket=store.bucket, Key=key)["Body"].read()
    return body


def jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return encoded.tobytes()


def person(server: AppServer, name: str) -> dict[str, Any] | None:
    status, body = call(server, "GET", "/api/people", token=VIEWER_TOKEN)
    assert status == 200, body
    return next((entry for entry in body["people"] if entry["name"] == name), None)


def test_an_uploaded_photo_is_stored_by_its_hash_and_pending_until_a_model_has_it(
    server: AppServer, store: S3Server, sample_photos: Path
) -> None:
    photo = (sample_photos / "biden.jpg").read_bytes()
    status, answer = call(
        server, "POST", "/api/people/Joe Biden/photos", photo, headers={"Content-Type": "image/jpeg"}
    )
    assert status == 201, answer
    sha = answer["photo"]
    key = f"photos/Joe Biden/{sha}.jpg"
    assert key in stored(store)
    photo_bytes = read(store, key)
    assert hashlib.sha256(photo_bytes).hexdigest() == sha  # the key names the bytes, as retrain reads them
    assert cv2.imdecode(np.frombuffer(photo_bytes, np.uint8), cv2.IMREAD_COLOR) is not None

    assert person(server, "Joe Biden") == {
        "name": "Joe Biden",
        "photos": 1,
        "in_model": False,
        "pending": {"photos": 1, "forget": False},
        "forgotten": None,
    }
    status, body = call(server, "GET", "/api/people", token=VIEWER_TOKEN)
    assert body["pending"] is True
    assert body["model"]["version"] == "2401020304"
    assert body["retrain_command"] == "ansible-playbook playbooks/retrain.yml -i inventories/local"

    # The audit trail names who and whom, never an image.
    records = [json.loads(read(store, key)) for key in stored(store, "audit/")]
    expected = {"action": "uploaded", "by": "token:aap", "name": "Joe Biden", "photo": sha}
    assert expected.items() <= records[-1].items()
    assert all(len(json.dumps(record)) < 1000 for record in records)


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (lambda photos: b"", 400, "empty"),
        (lambda photos: b"\xff\xd8 not really a jpeg", 400, "not a picture"),
        (lambda photos: jpeg(np.full((300, 300, 3), 128, np.uint8)), 422, "no face"),
        (lambda photos: jpeg(face_frame(photos)), 422, "2 faces"),
    ],
    ids=["empty", "not-a-picture", "no-face", "two-faces"],
)
def test_a_bad_photo_is_refused_with_its_reason_and_nothing_is_stored(
    server: AppServer, store: S3Server, sample_photos: Path, make: Any, status: int, reason: str
) -> None:
    before = stored(store)
    answered, body = call(server, "POST", "/api/people/Nobody/photos", make(sample_photos))
    assert answered == status, body
    assert reason in body["error"]
    assert [key for key in stored(store) if not key.startswith("audit/")] == [
        key for key in before if not key.startswith("audit/")
    ]


def test_the_same_photo_twice_and_a_bad_name_are_refused(server: AppServer, sample_photos: Path) -> None:
    photo = (sample_photos / "obama2.jpg").read_bytes()
    assert call(server, "POST", "/api/people/Barack Obama/photos", photo)[0] == 201
    status, body = call(server, "POST", "/api/people/Someone Else/photos", photo)
    assert status == 409 and "Barack Obama" in body["error"]
    for bad in (".hidden", "Unknown", "x" * 65, "a/b"):
        status, body = call(server, "POST", f"/api/people/{bad}/photos", photo)
        assert status in (400, 404), (bad, status, body)


def test_a_viewer_may_look_but_not_write(server: AppServer, sample_photos: Path) -> None:
    photo = (sample_photos / "obama3.jpg").read_bytes()
    status, body = call(server, "POST", "/api/people/Barack Obama/photos", photo, token=VIEWER_TOKEN)
    assert status == 403 and "viewer" in body["error"]
    assert call(server, "DELETE", "/api/people/Barack Obama", token=VIEWER_TOKEN)[0] == 403
    assert call(server, "POST", "/api/tracks/1/enroll", b'{"name": "X"}', token=VIEWER_TOKEN)[0] == 403
    assert call(server, "GET", "/api/people", token=None)[0] == 401

    viewer = login(server, VIEWER)
    viewer_write = {"Cookie": viewer, "X-Edgeface-Request": "1"}
    status, _ = call(
        server, "POST", "/api/people/Barack Obama/photos", photo, token=None, headers=viewer_write
    )
    assert status == 403
    assert call(server, "GET", "/api/people", token=None, headers={"Cookie": viewer})[0] == 200

    operator = login(server, OPERATOR)
    # A cookie alone (what another site's form would send) may not write.
    status, body = call(
        server, "DELETE", "/api/people/Barack Obama", token=None, headers={"Cookie": operator}
    )
    assert status == 403 and "X-Edgeface-Request" in body["error"]
    # No face of that track is on screen (no stream here): the operator's request reaches the route.
    page_write = {"Cookie": operator, "X-Edgeface-Request": "1", "Content-Type": "application/json"}
    status, body = call(
        server, "POST", "/api/tracks/999/enroll", b'{"name": "Ada"}', token=None, headers=page_write
    )
    assert status == 404 and "track 999" in body["error"]


def test_forget_removes_every_photo_at_once_and_is_pending_until_the_model_drops_them(
    server: AppServer, store: S3Server, sample_photos: Path
) -> None:
    photo = (sample_photos / "obama3.jpg").read_bytes()
    call(server, "POST", "/api/people/Barack Obama/photos", photo)
    assert stored(store, "photos/Barack Obama/")

    status, body = call(server, "DELETE", "/api/people/Barack Obama")
    assert status == 200, body
    assert body["photos_removed"] >= 1 and body["in_model"] is True
    assert not stored(store, "photos/Barack Obama/")
    marker = json.loads(read(store, "forget/Barack Obama.json"))
    assert marker["name"] == "Barack Obama" and marker["by"] == "token:aap" and len(marker["photos"]) >= 1
    listed = person(server, "Barack Obama")
    assert listed is not None
    assert listed["pending"] == {"photos": 0, "forget": True}  # the model in service still knows him
    assert listed["forgotten"]["done"] is False

    # Enrolled again: the forget record ends.
    assert call(server, "POST", "/api/people/Barack Obama/photos", photo)[0] == 201
    assert "forget/Barack Obama.json" not in stored(store)
    assert call(server, "DELETE", "/api/people/Nobody Known")[0] == 404
