"""retrain.yml and rollback.yml on the podman runtime, against the embedded S3 store and the registry,
run as the README gives them (no S3 settings: the store site.yml brought up is found)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

import local_appliance
from local_appliance import EmbeddedStore
from playbook import path_without_container_engines, recap_counts
from servers import wait_until

pytestmark = pytest.mark.slow

PEOPLE = ("photos/", "forget/")  # what the web app's people page keeps in the store


def add(folder: Path, sample_photos: Path, sample: str, person: str) -> None:
    shutil.copy(sample_photos / sample, folder / f"{person}.jpg")


def people_keys(s3: EmbeddedStore) -> list[str]:
    stored: list[str] = s3.keys()  # the bucket's keys (a store, not a dict)
    return [key for key in stored if key.startswith(PEOPLE)]


def store_digest_of(keys: list[str]) -> str:
    """The digest sources.json records: sha256 of the people's keys, sorted, one per line."""
    return "sha256:" + hashlib.sha256("".join(f"{key}\n" for key in sorted(keys)).encode()).hexdigest()


@pytest.fixture(scope="module", autouse=True)
def no_people_in_the_store(s3: EmbeddedStore) -> Iterator[None]:
    """Retrain trains the store's people too: these tests start with none (the demo flow leaves
    its forget marker), and what the store held is put back at the end."""
    client = s3.client()
    held = {key: client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() for key in people_keys(s3)}
    for key in [*held, *people_keys(s3)]:
        client.delete_object(Bucket=s3.bucket, Key=key)
    yield
    for key in people_keys(s3):
        client.delete_object(Bucket=s3.bucket, Key=key)
    for key, body in held.items():
        client.put_object(Bucket=s3.bucket, Key=key, Body=body)


def test_the_gate_stops_a_model_of_bad_photos_and_nothing_is_published(
    deployed: str, s3: EmbeddedStore, photos: Path
) -> None:
    cv2.imwrite(str(photos / "Blank Wall.png"), np.full((300, 300, 3), 128, np.uint8))  # no face
    (photos / "Nobody.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    before = local_appliance.published()
    result = local_appliance.retrain(photos, check=False)
    assert result.returncode != 0
    assert "nothing written" in result.stdout or "refused" in result.stdout
    assert local_appliance.published() == before


def test_wrong_s3_credentials_push_nothing_and_show_no_secret(
    deployed: str, s3: EmbeddedStore, photos: Path, sample_photos: Path
) -> None:
    add(photos, sample_photos, "biden.jpg", "Joe Biden")
    wrong_secret = "Wr0ngSecretKeyThatMustNotBePrinted"
    before = local_appliance.published()
    result = local_appliance.retrain(photos, check=False, retrain_s3_secret_key=wrong_secret)
    assert result.returncode != 0
    # The store's photos are read before training: the refusal stops the run there.
    assert (
        "Gathering the photos to train on from bucket models at http://127.0.0.1:9000 failed" in result.stdout
    )
    assert "S3 refused the credentials" in result.stdout
    assert ": Train on " not in result.stdout
    assert wrong_secret not in result.stdout + result.stderr
    assert s3.secret_key not in result.stdout + result.stderr
    assert local_appliance.published() == before


def test_a_missing_bucket_is_named_and_only_made_when_asked(
    deployed: str, s3: EmbeddedStore, photos: Path, sample_photos: Path
) -> None:
    add(photos, sample_photos, "biden.jpg", "Joe Biden")
    before = local_appliance.published()
    result = local_appliance.retrain(
        photos, check=False, retrain_s3_bucket="absent-bucket", retrain_s3_create_bucket="false"
    )
    assert result.returncode != 0
    assert "bucket absent-bucket does not exist" in result.stdout
    assert "retrain_s3_create_bucket=true" in result.stdout
    buckets = [bucket["Name"] for bucket in s3.client().list_buckets()["Buckets"]]
    assert "absent-bucket" not in buckets
    assert local_appliance.published() == before


def test_with_the_store_down_retrain_says_so_and_publishes_nothing(
    deployed: str, s3: EmbeddedStore, photos: Path, sample_photos: Path
) -> None:
    add(photos, sample_photos, "biden.jpg", "Joe Biden")
    before = local_appliance.published()
    subprocess.run(
        ["podman", "pod", "stop", "-t", "20", "object-store-pod-0"], check=True, capture_output=True
    )
    try:
        result = local_appliance.retrain(photos, check=False)
    finally:
        subprocess.run(["podman", "pod", "start", "object-store-pod-0"], check=True, capture_output=True)
        wait_until(s3.healthy, 60, "the store to answer again")
    assert result.returncode != 0
    assert "cannot reach the S3 endpoint" in result.stdout
    assert "Is the store up" in result.stdout
    assert local_appliance.published() == before


def test_a_retrain_publishes_and_rolls_out_the_new_person(
    deployed: str, stream: Path, s3: EmbeddedStore, photos: Path, sample_photos: Path, tmp_path: Path
) -> None:
    """Also: a person forgotten on the people page (a marker in the store) is left out of the model
    even though the folder has their photo. The controller finds no container engine on its PATH
    (as in an execution environment): the model image is written and pushed through the registry's
    API; the device's own podman is named by path (this machine is both)."""
    add(photos, sample_photos, "biden.jpg", "Joe Biden")
    add(photos, sample_photos, "obama.jpg", "Barack Obama")
    keys, tags, serving = local_appliance.published()
    marker = "forget/Barack Obama.json"
    s3.client().put_object(Bucket=s3.bucket, Key=marker, Body=b'{"name": "Barack Obama", "photos": []}')
    device_podman = shutil.which("podman")
    assert device_podman
    try:
        result = local_appliance.retrain(
            photos,
            env={"PATH": path_without_container_engines(tmp_path / "bin")},
            edge_podman_executable=device_podman,
        )
    finally:
        s3.client().delete_object(Bucket=s3.bucket, Key=marker)
    version = local_appliance.model_version()
    assert version.isdigit() and len(version) == 10, version
    assert f"model {version} in service (was {serving})" in result.stdout
    assert f"Forgotten, so left out of {photos}: Barack Obama" in " ".join(result.stdout.split())
    # S3 holds the complete version folder; the image carries the very same bytes.
    folder = [f"{version}/{name}" for name in ("metadata.json", "model.data", "sources.json")]
    assert s3.keys() == sorted([*keys, *folder])
    sources = json.loads(
        s3.client().get_object(Bucket=s3.bucket, Key=f"{version}/sources.json")["Body"].read()
    )
    assert sources == {"photos": [], "forgotten": ["Barack Obama"], "digest": store_digest_of([marker])}
    s3_bytes = s3.client().get_object(Bucket=s3.bucket, Key=f"{version}/model.data")["Body"].read()
    copy = tmp_path / "copy"
    copy.mkdir(mode=0o777)
    copy.chmod(0o777)
    subprocess.run(
        [
            "podman",
            "run",
            "--rm",
            # As the device pulls: over TLS trusted through /etc/containers/certs.d, with its pull secret.
            "--authfile",
            str(local_appliance.PULL_AUTHFILE),
            "-v",
            f"{copy}:/target",
            f"127.0.0.1:5000/ai-for-edge/model:{version}",
            "/target",
        ],
        check=True,
        capture_output=True,
    )
    assert (
        hashlib.sha256((copy / "model.data").read_bytes()).hexdigest() == hashlib.sha256(s3_bytes).hexdigest()
    )
    assert local_appliance.registry_tags() == sorted([*tags, version])
    # The running app names Biden now; Obama, not trained, stays Unknown.
    status = local_appliance.wait_for_names({"Joe Biden", "Unknown"})
    assert status["model"]["people"] == ["Joe Biden"]


def test_a_broken_model_image_is_rolled_back_automatically(
    deployed: str, s3: EmbeddedStore, photos: Path, sample_photos: Path, tmp_path: Path
) -> None:
    serving = local_appliance.model_version()
    add(photos, sample_photos, "biden.jpg", "Joe Biden")
    add(photos, sample_photos, "obama.jpg", "Barack Obama")
    # The model image is built from a damaged file (the gate passed the good one): the app
    # refuses it, the new pod never becomes Ready.
    broken = tmp_path / "broken.data"
    subprocess.run([local_appliance.EDGEFACE, "init-model", "-o", str(broken)], check=True)
    broken.write_bytes(broken.read_bytes()[:-100])
    result = local_appliance.retrain(
        photos,
        check=False,
        retrain_version="9912312359",
        retrain_image_model_file=str(broken),
        retrain_image_model_sha256=hashlib.sha256(broken.read_bytes()).hexdigest(),
        edge_wait_timeout="40",
    )
    assert result.returncode != 0
    assert "did not become Ready" in result.stdout
    assert "model not loaded" in result.stdout  # /readyz's reason, reported with the pod's logs
    assert f"Rolled back: model {serving} is in service again" in result.stdout
    assert local_appliance.model_version() == serving
    # The run's table says so too (printed, and the run fails naming the device).
    assert f"localhost rolled back ({serving})" in result.stdout


def test_with_the_registry_down_nothing_is_rolled_out(
    deployed: str, s3: EmbeddedStore, photos: Path, sample_photos: Path
) -> None:
    serving = local_appliance.model_version()
    add(photos, sample_photos, "obama2.jpg", "Barack Obama")
    subprocess.run(["podman", "pod", "stop", "registry-pod-0"], check=True, capture_output=True)
    try:
        result = local_appliance.retrain(photos, check=False, retrain_version="9912312358")
    finally:
        subprocess.run(["podman", "pod", "start", "registry-pod-0"], check=True, capture_output=True)
        wait_until(local_appliance.registry_tags, 60, "the registry to answer again")
    assert result.returncode != 0
    assert "Roll the model out" not in result.stdout
    assert "9912312358" not in local_appliance.registry_tags()
    assert local_appliance.model_version() == serving


def test_rollback_restores_a_named_and_the_previous_version(deployed: str, stream: Path) -> None:
    newest = local_appliance.model_version()
    # "previous": the newest version older than the one in service ("initial" first, then by time).
    dated = sorted(tag for tag in local_appliance.registry_tags() if tag != "initial")
    previous = ["initial", *dated][["initial", *dated].index(newest) - 1]
    local_appliance.rollback("previous")
    assert local_appliance.model_version() == previous
    # The stream's two people: named when that model knows them, Unknown when it does not.
    known = set(local_appliance.status()["model"]["people"]) & {"Barack Obama", "Joe Biden"}
    local_appliance.wait_for_names(known | ({"Unknown"} if len(known) < 2 else set()))
    local_appliance.rollback(newest)
    assert local_appliance.model_version() == newest
    missing = local_appliance.rollback("0001010000", check=False)
    assert missing.returncode != 0
    assert "not in the registry" in missing.stdout


def test_a_refused_retrain_fixed_in_the_same_minute_trains_the_new_photos(
    deployed: str, s3: EmbeddedStore, photos: Path, sample_photos: Path
) -> None:
    """The version is the minute: a re-run in it must train anew, and a published one is never redone."""
    version = "9912312357"
    (photos / "Nobody.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    refused = local_appliance.retrain(photos, check=False, retrain_version=version, retrain_strict="true")
    assert refused.returncode != 0
    assert "refused" in refused.stdout or "nothing written" in refused.stdout

    (photos / "Nobody.jpg").unlink()
    add(photos, sample_photos, "obama.jpg", "Barack Obama")
    fixed = local_appliance.retrain(photos, retrain_version=version)
    assert f"model {version} in service" in fixed.stdout
    metadata = s3.client().get_object(Bucket=s3.bucket, Key=f"{version}/metadata.json")["Body"].read()
    assert list(json.loads(metadata)["metadata"]["people"]) == ["Barack Obama"]  # name -> photos
    assert local_appliance.status()["model"]["people"] == ["Barack Obama"]

    again = local_appliance.retrain(photos, check=False, retrain_version=version)
    assert again.returncode != 0
    assert f"Model version {version} is published already" in again.stdout
    assert "nothing was trained" in again.stdout
    assert ": Train on " not in again.stdout
    assert local_appliance.model_version() == version


def test_with_no_folder_the_stores_photos_are_trained_and_leave_the_controller(
    deployed: str, s3: EmbeddedStore, sample_photos: Path
) -> None:
    """The people page's command: no photos folder. A photo stored as the app stores it is
    downloaded, trained (the model knows that person), recorded in sources.json and removed."""
    photo = (sample_photos / "biden.jpg").read_bytes()
    key = f"photos/Joe Biden/{hashlib.sha256(photo).hexdigest()}.jpg"
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=photo)
    version = "9912312356"
    # The controller's scratch of this version, from an earlier test run on this machine, if any.
    shutil.rmtree(local_appliance.RETRAIN_WORK / version, ignore_errors=True)
    before = local_appliance.published()
    checked = local_appliance.retrain(None, "--check", retrain_version=version)
    assert "Would train on 1 photos of the store (Joe Biden)" in checked.stdout
    assert local_appliance.published() == before and not (local_appliance.RETRAIN_WORK / version).exists()
    result = local_appliance.retrain(None, retrain_version=version)
    assert "Training on 1 photos of the store (Joe Biden)" in result.stdout
    assert f"model {version} in service" in result.stdout
    assert local_appliance.status()["model"]["people"] == ["Joe Biden"]
    sources = json.loads(
        s3.client().get_object(Bucket=s3.bucket, Key=f"{version}/sources.json")["Body"].read()
    )
    assert sources == {"photos": [key], "forgotten": [], "digest": store_digest_of([key])}
    assert not (local_appliance.RETRAIN_WORK / version / "photos").exists()
    assert not list(local_appliance.RETRAIN_WORK.glob("*/photos"))


def test_with_no_folder_and_nothing_pending_retrain_ends_before_training(
    deployed: str, s3: EmbeddedStore
) -> None:
    """After the test above (this file runs in order): the model in service has the store's photos,
    so a run (on a timer, from AAP) ends at once, changing and publishing nothing."""
    serving = local_appliance.model_version()
    before = local_appliance.published()
    started = time.monotonic()
    result = local_appliance.retrain(None, retrain_version="9912312355")
    seconds = time.monotonic() - started
    assert f"nothing pending: model {serving} already has the store's photos" in result.stdout, seconds
    assert recap_counts(result.stdout)["changed"] == 0
    assert ": Train on " not in result.stdout and "Build the model image" not in result.stdout
    assert local_appliance.published() == before
