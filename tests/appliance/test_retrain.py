"""retrain.yml and rollback.yml on the podman runtime, against the embedded S3 store and the registry,
run as the README gives them (no S3 settings: the store site.yml brought up is found)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

import local_appliance
from local_appliance import EmbeddedStore
from servers import wait_until

pytestmark = pytest.mark.slow


def add(folder: Path, sample_photos: Path, sample: str, person: str) -> None:
    shutil.copy(sample_photos / sample, folder / f"{person}.jpg")


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
    assert "S3 upload of model" in result.stdout
    assert "S3 refused the credentials" in result.stdout
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
    add(photos, sample_photos, "biden.jpg", "Joe Biden")
    keys, tags, serving = local_appliance.published()
    result = local_appliance.retrain(photos)
    version = local_appliance.model_version()
    assert version.isdigit() and len(version) == 10, version
    assert f"model {version} in service (was {serving})" in result.stdout
    # S3 holds the complete version folder; the image carries the very same bytes.
    assert s3.keys() == sorted([*keys, f"{version}/metadata.json", f"{version}/model.data"])
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
        images_model_file=str(broken),
        edge_wait_timeout="40",
    )
    assert result.returncode != 0
    assert "did not become Ready" in result.stdout
    assert "model not loaded" in result.stdout  # /readyz's reason, reported with the pod's logs
    assert f"Rolled back: model {serving} is in service again" in result.stdout
    assert local_appliance.model_version() == serving


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
