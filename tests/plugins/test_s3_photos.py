"""edgeai.appliance.s3_photos against a real S3 store (SeaweedFS on loopback), run as Ansible runs it.

The store holds what the web app writes (photos/<name>/<sha256>.jpg, forget/<name>.json); the
training folder the module makes is given to the real `edgeface train`, which must name each person
after the store's folder and record each photo's sha256.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from servers import S3Server, free_port

from .conftest import run_module

EDGEFACE = str(Path(sys.executable).parent / "edgeface")
EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"").hexdigest()


@pytest.fixture(scope="module")
def store() -> Iterator[S3Server]:
    with S3Server(bucket=None) as server:
        yield server


@pytest.fixture
def bucket(store: S3Server, request: pytest.FixtureRequest) -> str:
    """A bucket of its own for each test."""
    name = request.node.name.replace("_", "-")[:50].rstrip("-").lower()
    store.client().create_bucket(Bucket=name)
    return name


def photos(store: S3Server, tmp: Path, check_mode: bool = False, **arguments: Any) -> dict[str, Any]:
    credentials = {"endpoint_url": store.url, "access_key": store.access_key, "secret_key": store.secret_key}
    return run_module(tmp, "edgeai.appliance.s3_photos", {**credentials, **arguments}, check_mode)


def put_photo(store: S3Server, bucket: str, name: str, photo: Path) -> str:
    """A photo of `name`, stored as the web app stores it; its key."""
    data = photo.read_bytes()
    key = f"photos/{name}/{hashlib.sha256(data).hexdigest()}.jpg"
    store.client().put_object(Bucket=bucket, Key=key, Body=data)
    return key


def forget(store: S3Server, bucket: str, name: str, shas: list[str]) -> str:
    key = f"forget/{name}.json"
    record = {"name": name, "at": "2026-01-02T03:04:05.000Z", "by": "operator", "photos": shas}
    store.client().put_object(Bucket=bucket, Key=key, Body=json.dumps(record).encode())
    return key


def digest(keys: list[str]) -> str:
    return "sha256:" + hashlib.sha256("".join(f"{key}\n" for key in sorted(keys)).encode()).hexdigest()


def trained(folder: Path, model: Path) -> dict[str, Any]:
    """The metadata of the model the real `edgeface train` makes of `folder`."""
    subprocess.run([EDGEFACE, "train", str(folder), "-o", str(model)], check=True, capture_output=True)
    inspected = subprocess.run([EDGEFACE, "inspect", "--json", str(model)], check=True, capture_output=True)
    metadata: dict[str, Any] = json.loads(inspected.stdout)["metadata"]
    return metadata


def sha(photo: Path) -> str:
    return hashlib.sha256(photo.read_bytes()).hexdigest()


def test_a_version_is_behind_the_store_until_its_sources_hold_the_stores_digest(
    tmp_path: Path, store: S3Server, bucket: str, sample_photos: Path
) -> None:
    empty = photos(store, tmp_path, bucket=bucket, versions=["initial", "2412011200"])
    assert not empty.get("failed"), empty["output"]
    assert not empty["changed"]
    assert empty["digest"] == EMPTY_DIGEST
    assert {version: state["pending"] for version, state in empty["versions"].items()} == {
        "initial": False,
        "2412011200": False,
    }

    keys = [put_photo(store, bucket, "Joe Biden", sample_photos / "biden.jpg")]
    # Keys of no person's layout count in the digest (the store changed) but are never trained.
    for odd in ("photos/.hidden/x.jpg", "photos/Joe Biden/not-a-sha.jpg", "photos/loose.jpg"):
        store.client().put_object(Bucket=bucket, Key=odd, Body=b"x")
        keys.append(odd)
    store.client().put_object(
        Bucket=bucket, Key="audit/2026/01/02/x.json", Body=b"{}"
    )  # not the store's photos
    behind = photos(store, tmp_path, bucket=bucket, versions=["2412011200"])
    assert behind["digest"] == digest(keys)
    assert behind["versions"]["2412011200"] == {"digest": EMPTY_DIGEST, "pending": True}
    assert behind["people"] == ["Joe Biden"]
    assert sorted(item["key"] for item in behind["ignored"]) == sorted(keys[1:])

    sources = {"photos": keys[:1], "forgotten": [], "digest": digest(keys)}
    store.client().put_object(Bucket=bucket, Key="2412011200/sources.json", Body=json.dumps(sources).encode())
    level = photos(store, tmp_path, bucket=bucket, versions=["2412011200", "initial"])
    assert level["versions"]["2412011200"]["pending"] is False
    assert level["versions"]["initial"]["pending"] is True

    keys.append(forget(store, bucket, "Barack Obama", []))
    marked = photos(store, tmp_path, bucket=bucket, versions=["2412011200"])
    assert marked["digest"] == digest(keys)
    assert marked["forgotten"] == ["Barack Obama"]
    assert marked["versions"]["2412011200"]["pending"] is True


def test_the_store_photos_are_downloaded_privately_trained_by_name_and_sourced(
    tmp_path: Path, store: S3Server, bucket: str, sample_photos: Path
) -> None:
    """No folder: the store's photos as <name>/<sha256>.jpg (0600 in 0700); a forgotten person's
    stale photo is left out and its encodings leave every fingerprint folder of the cache; a photo
    whose bytes are not its name's sha256 is skipped, saying why."""
    biden = put_photo(store, bucket, "Joe Biden", sample_photos / "biden.jpg")
    obama = put_photo(store, bucket, "Barack Obama", sample_photos / "obama.jpg")
    marker = forget(store, bucket, "Barack Obama", [sha(sample_photos / "obama.jpg")])
    damaged = f"photos/Joe Biden/{'0' * 64}.jpg"
    store.client().put_object(Bucket=bucket, Key=damaged, Body=(sample_photos / "obama2.jpg").read_bytes())
    cache = tmp_path / "cache"
    kept = sha(sample_photos / "biden.jpg")
    for fingerprint in ("aaaa", "bbbb"):
        (cache / fingerprint).mkdir(parents=True)
        for entry in (sha(sample_photos / "obama.jpg"), kept):
            (cache / fingerprint / f"{entry}.json").write_text("{}")
    dest, sources = tmp_path / "2412011300" / "photos", tmp_path / "2412011300" / "sources.json"
    dest.mkdir(parents=True)
    (dest / "left from before.jpg").write_bytes(b"x")
    arguments = {
        "bucket": bucket,
        "mode": "prepare",
        "dest": str(dest),
        "cache_dir": str(cache),
        "sources": str(sources),
    }

    checked = photos(store, tmp_path, check_mode=True, **arguments)
    assert checked["changed"] and checked["trained"] == sorted([biden, damaged])
    assert checked["encodings_removed"] == 2
    assert [path.name for path in dest.iterdir()] == ["left from before.jpg"]
    assert len(list(cache.rglob("*.json"))) == 4 and not sources.exists()

    made = photos(store, tmp_path, **arguments)
    assert not made.get("failed"), made["output"]
    assert made["trained"] == [biden]
    assert made["skipped"] == [{"key": damaged, "reason": "its bytes' sha256 is not the one it is named for"}]
    assert made["forgotten"] == ["Barack Obama"] and made["excluded"] == []
    files = sorted(path.relative_to(dest).as_posix() for path in dest.rglob("*"))
    assert files == ["Joe Biden", f"Joe Biden/{kept}.jpg"]
    assert (dest / "Joe Biden" / f"{kept}.jpg").read_bytes() == (sample_photos / "biden.jpg").read_bytes()
    assert [oct(path.stat().st_mode & 0o777) for path in (dest, dest / "Joe Biden")] == ["0o700"] * 2
    assert (dest / "Joe Biden" / f"{kept}.jpg").stat().st_mode & 0o777 == 0o600
    assert sorted(path.relative_to(cache).as_posix() for path in cache.rglob("*.json")) == [
        f"aaaa/{kept}.json",
        f"bbbb/{kept}.json",
    ]
    assert made["encodings_removed"] == 2
    every_key = [biden, obama, damaged, marker]
    expected = {"photos": [biden], "forgotten": ["Barack Obama"], "digest": digest(every_key)}
    assert json.loads(sources.read_text()) == made["sources"] == expected
    assert sources.stat().st_mode & 0o777 == 0o640

    # The trainer names the person after the folder and records the photo's sha256.
    metadata = trained(dest, tmp_path / "model.data")
    assert metadata["people"] == {"Joe Biden": 1}
    assert [photo["sha256"] for photo in metadata["photos"]] == [kept]


def test_the_folder_wins_a_name_of_both_and_a_forgotten_name_is_in_neither(
    tmp_path: Path, store: S3Server, bucket: str, sample_photos: Path
) -> None:
    folder = tmp_path / "folder"
    (folder / "Barack Obama").mkdir(parents=True)
    shutil.copy(sample_photos / "biden.jpg", folder / "Joe Biden.jpg")
    shutil.copy(sample_photos / "obama.jpg", folder / "Barack Obama" / "one.jpg")
    put_photo(store, bucket, "Joe Biden", sample_photos / "obama2.jpg")  # the folder's Joe Biden is used
    grace = put_photo(store, bucket, "Grace Hopper", sample_photos / "obama3.jpg")
    forget(store, bucket, "Barack Obama", [])
    dest = tmp_path / "photos"

    made = photos(store, tmp_path, bucket=bucket, mode="prepare", dest=str(dest), photos_dir=str(folder))
    assert not made.get("failed"), made["output"]
    assert made["linked"] == ["Joe Biden.jpg"]
    assert made["excluded"] == ["Barack Obama"]
    assert made["overridden"] == ["Joe Biden"]
    assert made["trained"] == [grace]
    assert sorted(path.name for path in dest.iterdir()) == ["Grace Hopper", "Joe Biden.jpg"]
    assert (dest / "Joe Biden.jpg").resolve() == (folder / "Joe Biden.jpg").resolve()

    metadata = trained(dest, tmp_path / "model.data")
    assert sorted(metadata["people"]) == ["Grace Hopper", "Joe Biden"]
    assert sha(sample_photos / "biden.jpg") in {photo["sha256"] for photo in metadata["photos"]}
    # Removing the training folder leaves the user's photos where they were.
    shutil.rmtree(dest)
    assert sorted(path.name for path in folder.rglob("*.jpg")) == ["Joe Biden.jpg", "one.jpg"]


def test_a_metadata_yaml_folder_is_joined_in_one_metadata_yaml(
    tmp_path: Path, store: S3Server, bucket: str, sample_photos: Path
) -> None:
    folder = tmp_path / "seed"
    folder.mkdir()
    shutil.copy(sample_photos / "biden.jpg", folder / "biden.jpg")
    (folder / "metadata.yaml").write_text(
        "faces:\n  - {name: Joe Biden, image: biden.jpg}\n  - {name: Barack Obama, image: obama.jpg}\n"
    )
    grace = put_photo(store, bucket, "Grace Hopper", sample_photos / "obama3.jpg")
    forget(store, bucket, "Barack Obama", [])
    dest = tmp_path / "photos"

    made = photos(store, tmp_path, bucket=bucket, mode="prepare", dest=str(dest), photos_dir=str(folder))
    assert not made.get("failed"), made["output"]
    assert made["excluded"] == ["Barack Obama"] and made["trained"] == [grace]
    faces = yaml.safe_load((dest / "metadata.yaml").read_text())["faces"]
    assert faces == [
        {"name": "Joe Biden", "image": str(folder / "biden.jpg")},
        {"name": "Grace Hopper", "image": grace.removeprefix("photos/")},
    ]


def test_refused_credentials_and_a_store_that_is_down_say_so_without_the_secret(
    tmp_path: Path, store: S3Server, bucket: str
) -> None:
    wrong = "Wr0ngSecretThatMustNotBePrinted"
    refused = photos(store, tmp_path, bucket=bucket, secret_key=wrong)
    assert refused["failed"] and refused["reason"] == "credentials_refused"
    assert f"listing s3://{bucket}/photos/" in refused["msg"]
    assert wrong not in refused["output"] and store.secret_key not in refused["output"]

    down = photos(store, tmp_path, bucket=bucket, endpoint_url=f"http://127.0.0.1:{free_port()}")
    assert down["failed"] and down["reason"] == "unreachable"
    assert "cannot reach the S3 endpoint" in down["msg"]

    missing = photos(store, tmp_path, bucket="no-such-bucket", versions=["2412011200"])
    assert missing["digest"] == EMPTY_DIGEST and not missing["versions"]["2412011200"]["pending"]
