"""edgeai.appliance.s3_publish against a real S3 store (SeaweedFS on loopback).

The module runs as Ansible runs it (a playbook on localhost); the race between runs is driven
from threads through the module's own publishing code, so that every run passes the "is the
version free?" look before any of them writes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from servers import S3Server, free_port

from .conftest import REPO_ROOT, load_by_path
from .conftest import run_module as run_collection_module

S3_VERSIONS_PATH = REPO_ROOT / "plugins" / "module_utils" / "s3_versions.py"


@pytest.fixture(scope="module")
def store() -> Iterator[S3Server]:
    with S3Server(bucket=None) as server:
        yield server


@pytest.fixture(scope="module")
def s3_versions() -> ModuleType:
    return load_by_path("edgeai_appliance_s3_versions", S3_VERSIONS_PATH)


def version_files(folder: Path, label: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    model, metadata = folder / "model.data", folder / "metadata.json"
    model.write_bytes(hashlib.sha256(label.encode()).digest() * 4096)
    metadata.write_text(json.dumps({"run": label}))
    return [str(model), str(metadata)]


def run_module(tmp: Path, store: S3Server, check_mode: bool = False, **arguments: Any) -> dict[str, Any]:
    """One task of edgeai.appliance.s3_publish on localhost; its registered result."""
    credentials = {"endpoint_url": store.url, "access_key": store.access_key, "secret_key": store.secret_key}
    return run_collection_module(tmp, "edgeai.appliance.s3_publish", {**credentials, **arguments}, check_mode)


def test_a_missing_bucket_is_named_and_made_only_when_asked(tmp_path: Path, store: S3Server) -> None:
    refused = run_module(tmp_path, store, bucket="absent-bucket")
    assert refused["failed"] and refused["reason"] == "bucket_missing"
    assert "bucket absent-bucket does not exist" in refused["msg"]

    checked = run_module(tmp_path, store, check_mode=True, bucket="made-bucket", create_bucket=True)
    assert checked["changed"] and checked["bucket_created"]
    assert "made-bucket" not in [b["Name"] for b in store.client().list_buckets().get("Buckets", [])]

    made = run_module(tmp_path, store, bucket="made-bucket", create_bucket=True)
    assert made["changed"] and made["bucket_created"] and not made.get("failed")
    again = run_module(tmp_path, store, bucket="made-bucket", create_bucket=True)
    assert not again["changed"]


def test_a_version_is_published_complete_and_never_overwritten(tmp_path: Path, store: S3Server) -> None:
    store.client().create_bucket(Bucket="versions")
    first = version_files(tmp_path / "first", "first")
    metadata = {"model-version": "2412011200"}
    published = run_module(
        tmp_path, store, bucket="versions", prefix="2412011200", files=first, metadata=metadata
    )
    assert published["changed"], published["output"]
    written = [item["key"] for item in published["objects"]]
    assert written == ["2412011200/model.data", "2412011200/metadata.json"]
    head = store.client().head_object(Bucket="versions", Key="2412011200/model.data")
    assert head["Metadata"] == {"model-version": "2412011200"}

    second = version_files(tmp_path / "second", "second")
    refused = run_module(tmp_path, store, bucket="versions", prefix="2412011200", files=second)
    assert refused["failed"] and refused["reason"] == "version_taken"
    body = store.client().get_object(Bucket="versions", Key="2412011200/model.data")["Body"].read()
    assert body == Path(first[0]).read_bytes()


def test_wrong_credentials_and_a_store_that_is_down_say_so_without_the_secret(
    tmp_path: Path, store: S3Server
) -> None:
    files = version_files(tmp_path / "files", "any")
    wrong = "Wr0ngSecretThatMustNotBePrinted"
    version = {"bucket": "versions", "prefix": "2412011201", "files": files}
    refused = run_module(tmp_path, store, secret_key=wrong, **version)
    assert refused["failed"] and refused["reason"] == "credentials_refused"
    assert wrong not in refused["output"] and store.secret_key not in refused["output"]

    down = run_module(tmp_path, store, endpoint_url=f"http://127.0.0.1:{free_port()}", **version)
    assert down["failed"] and down["reason"] == "unreachable"
    assert "cannot reach the S3 endpoint" in down["msg"]


def test_of_runs_racing_for_one_version_exactly_one_writes_it(
    tmp_path: Path, store: S3Server, s3_versions: ModuleType
) -> None:
    store.client().create_bucket(Bucket="race")
    runs = 6
    start = threading.Barrier(runs)
    outcomes: dict[int, str] = {}

    def run(index: int) -> None:
        files = version_files(tmp_path / f"run{index}", f"run{index}")
        client = store.client()
        assert s3_versions.version_objects(client, "race", "2412011202") == []
        start.wait()  # every run has seen the version free
        try:
            s3_versions.put_new_objects(client, "race", "2412011202", files, {"run": str(index)})
            outcomes[index] = "published"
        except s3_versions.PublishError as error:
            outcomes[index] = error.reason

    threads = [threading.Thread(target=run, args=(index,)) for index in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    winners = [index for index, outcome in outcomes.items() if outcome == "published"]
    assert len(winners) == 1, outcomes
    losers = sorted(outcome for outcome in outcomes.values() if outcome != "published")
    assert losers == ["version_taken"] * (runs - 1)
    client = store.client()
    keys = sorted(item["Key"] for item in client.list_objects_v2(Bucket="race")["Contents"])
    assert keys == ["2412011202/metadata.json", "2412011202/model.data"]
    winner = tmp_path / f"run{winners[0]}"
    for name in ("model.data", "metadata.json"):
        body = client.get_object(Bucket="race", Key=f"2412011202/{name}")["Body"].read()
        assert body == (winner / name).read_bytes(), name


def test_a_run_that_fails_half_way_leaves_no_part_of_the_version(
    tmp_path: Path, store: S3Server, s3_versions: ModuleType
) -> None:
    store.client().create_bucket(Bucket="halfway")
    model, _ = version_files(tmp_path / "half", "half")
    client = store.client()
    # The second object is taken already (another run's): the first one, written, goes again.
    client.put_object(Bucket="halfway", Key="2412011203/metadata.json", Body=b"{}")
    with pytest.raises(s3_versions.PublishError) as error:
        s3_versions.put_new_objects(
            client, "halfway", "2412011203", [model, str(tmp_path / "half" / "metadata.json")], {}
        )
    assert error.value.reason == "version_taken"
    keys = sorted(item["Key"] for item in client.list_objects_v2(Bucket="halfway")["Contents"])
    assert keys == ["2412011203/metadata.json"]
