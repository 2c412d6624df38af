"""A fleet of four devices on this machine, rolled out in waves through a real Git server.

Each device has an address of its own (a registry on 127.0.0.2-5) and its own runtime state (its
tree in the GitOps repository, served by `git daemon`); they are on the manifests runtime, so the
run is the controller's alone and needs no container engine. dev2's registry is read-only (a full
or failing device registry: reads work, pushes are refused), which fails its wave. With the
default waves [1, "25%", "100%"] the waves are dev1 | dev2 | dev3 and dev4.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from git_server import GitDaemon, bare_repository, git
from playbook import REPO_ROOT, run_playbook
from servers import Registry, S3Server

from .conftest import TREES_PREFIX

DEVICES = ("dev1", "dev2", "dev3", "dev4")
# The model image every deployment pushes (the nuc_tree's render built it): the template of retrain's.
INITIAL = f"{TREES_PREFIX}/amd64/model:initial"

pytestmark = pytest.mark.slow


class Fleet:
    def __init__(self, tmp: Path, registries: dict[str, Registry], remote: str, s3: S3Server) -> None:
        self.tmp = tmp
        self.registries = registries
        self.remote = remote
        self.s3 = s3
        self.bare = tmp / "remote" / "gitops.git"
        self.reports = tmp / "rollouts"
        self.clone = tmp / "gitops"
        self.inventory = tmp / "hosts.yml"
        hosts = {
            name: {
                "ansible_connection": "local",
                "edge_registry_push_host": registry.host,
                "edge_registry_tls": False,
                "edge_registry_auth": False,
            }
            for name, registry in registries.items()
        }
        group_vars = {
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "edge_runtime": "manifests",
            "edge_profile": "nuc",
            "edge_manifests_dir": str(self.clone),
            "edge_gitops_repo": remote,
            "edge_rollout_report_dir": str(self.reports),
            "retrain_work_dir": str(tmp / "work"),
            "retrain_s3_endpoint_url": s3.url,
        }
        self.inventory.write_text(yaml.safe_dump({"edge": {"hosts": hosts, "vars": group_vars}}))

    def run(self, playbook: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return run_playbook(
            f"playbooks/{playbook}",
            "-i",
            str(self.inventory),
            *args,
            extra_vars=extra,
            env={"AWS_ACCESS_KEY_ID": self.s3.access_key, "AWS_SECRET_ACCESS_KEY": self.s3.secret_key},
            check=False,
        )

    def table(self, verb: str) -> dict[str, Any]:
        """The newest run's table of `verb`."""
        newest = sorted(self.reports.glob(f"*-{verb}.json"))[-1]
        table: dict[str, Any] = json.loads(newest.read_text())
        return table

    def commits(self, since: str) -> list[tuple[str, list[str]]]:
        """The remote's commits after `since`, oldest first: (message, files changed)."""
        log = git(
            "--git-dir",
            str(self.bare),
            "log",
            "--reverse",
            "--format=%H %s",
            f"{since}..main",
        )
        commits = []
        for line in log.splitlines():
            sha, message = line.split(" ", 1)
            files = git("--git-dir", str(self.bare), "show", "--name-only", "--format=", sha)
            commits.append((message, files.split()))
        return commits

    def head(self) -> str:
        return git("--git-dir", str(self.bare), "rev-parse", "main")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, nuc_tree: Path) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("fleet")
    bare = bare_repository(tmp / "remote" / "gitops.git")
    # The devices' trees as a first deploy left them: copies of the NUC's, pushed to the repository.
    seed = tmp / "seed"
    git("clone", "-q", str(bare), str(seed))
    for device in DEVICES:
        shutil.copytree(nuc_tree, seed / device, ignore=shutil.ignore_patterns("argocd"))
    git("add", "-A", cwd=seed)
    git("commit", "-qm", "deploy: the fleet's first trees", cwd=seed)
    git("push", "-q", "origin", "HEAD:main", cwd=seed)
    registries = {
        device: Registry(address=f"127.0.0.{number}") for number, device in enumerate(DEVICES, start=2)
    }
    with GitDaemon(tmp / "remote") as daemon, S3Server() as s3:
        try:
            for registry in registries.values():
                registry.start()
                script = str(REPO_ROOT / "scripts" / "push-images.sh")
                push = subprocess.run(
                    [script, "--registry", f"{registry.host}/ai-for-edge", "--tls-verify", "false", INITIAL],
                    capture_output=True, text=True, check=False, timeout=120,
                )  # fmt: skip
                assert push.returncode == 0, push.stderr
            registries["dev2"].make_readonly()
            yield Fleet(tmp, registries, daemon.url("gitops.git"), s3)
        finally:
            for registry in registries.values():
                registry.stop()


@pytest.fixture(scope="module")
def photos(sample_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    shutil.copy(sample_photos / "biden.jpg", folder / "Joe Biden.jpg")
    shutil.copy(sample_photos / "obama.jpg", folder / "Barack Obama.jpg")
    return folder


@pytest.fixture(scope="module")
def failed_run(fleet: Fleet, photos: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    before = fleet.head()
    return fleet.run("retrain.yml", retrain_photos_dir=str(photos)), before


def test_a_failing_device_stops_the_waves_after_its_own(failed_run: tuple[Any, str], fleet: Fleet) -> None:
    result, _ = failed_run
    assert result.returncode != 0
    table = fleet.table("retrain")
    rows = {row["device"]: row for row in table["devices"]}
    version = table["intent"].split()[-1]
    assert [rows[device]["wave"] for device in DEVICES] == [1, 2, 3, 3]
    assert rows["dev1"]["result"] == "updated"
    assert (rows["dev1"]["model_before"], rows["dev1"]["model_after"]) == ("initial", version)
    # dev2 keeps what it ran, and says why.
    assert rows["dev2"]["result"] == "rolled back"
    assert rows["dev2"]["model_after"] == "initial"
    assert "read-only" in rows["dev2"]["reason"] or "HTTP 405" in rows["dev2"]["reason"], rows["dev2"]
    # Over the budget (0 %): the last wave is not reached and keeps what it runs.
    for device in ("dev3", "dev4"):
        assert rows[device]["result"] == "not reached"
        assert rows[device]["model_after"] == "initial"
        assert "wave 2: 1 of 1 devices failed" in rows[device]["reason"]
    assert fleet.registries["dev3"].manifest_digest("ai-for-edge/model", version) is None
    # Printed too, and the run's message names each device that is not where it was meant to be.
    assert "device  wave  model before  model after  result" in result.stdout
    assert "dev2 rolled back (initial)" in result.stdout and "dev3 not reached" in result.stdout


def test_one_commit_per_wave_changes_only_the_model_of_the_devices_it_reached(
    failed_run: tuple[Any, str], fleet: Fleet
) -> None:
    _, before = failed_run
    version = fleet.table("retrain")["intent"].split()[-1]
    # Wave 1 (dev1) committed; wave 2's dev2 changed nothing; wave 3 never ran.
    ((message, files),) = fleet.commits(before)
    assert message == f"retrain: model {version} to dev1 (wave 1)"
    assert files == ["dev1/webapp/deployment-webapp.yaml"]
    diff = git("--git-dir", str(fleet.bare), "diff", "-U0", before, "main")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    digest = fleet.registries["dev1"].manifest_digest("ai-for-edge/model", version)
    assert sorted(line[0] for line in changed) == ["+", "+", "+", "+", "-", "-", "-", "-"], diff
    added = "\n".join(line for line in changed if line.startswith("+"))
    assert f"model@{digest}" in added and f'model-version: "{version}"' in added.replace("'", '"')


def test_status_shows_what_each_device_serves_against_the_last_rollout(
    failed_run: tuple[Any, str], fleet: Fleet
) -> None:
    version = fleet.table("retrain")["intent"].split()[-1]
    result = fleet.run("status.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    status = {
        row["device"]: row for row in json.loads((fleet.reports / "status.json").read_text())["devices"]
    }
    assert status["dev1"]["model"] == status["dev1"]["intended"] == version
    assert status["dev2"]["model"] == status["dev2"]["intended"] == "initial"
    assert all(status[device]["matches"] for device in DEVICES)
    assert status["dev1"]["runtime"] == "manifests"
    assert status["dev1"]["model_image"].endswith(
        fleet.registries["dev1"].manifest_digest("ai-for-edge/model", version) or "?"
    )
    assert "device  runtime    model" in result.stdout


def test_the_healthy_devices_get_one_commit_per_wave(
    failed_run: tuple[Any, str], fleet: Fleet, photos: Path
) -> None:
    before = fleet.head()
    result = fleet.run("retrain.yml", "--limit", "dev1,dev3,dev4", retrain_photos_dir=str(photos))
    assert result.returncode == 0, result.stdout[-4000:]
    table = fleet.table("retrain")
    version = table["intent"].split()[-1]
    assert [(row["device"], row["wave"], row["result"]) for row in table["devices"]] == [
        ("dev1", 1, "updated"), ("dev3", 2, "updated"), ("dev4", 3, "updated"),
    ]  # fmt: skip
    commits = fleet.commits(before)
    assert [message for message, _ in commits] == [
        f"retrain: model {version} to {device} (wave {wave})"
        for wave, device in enumerate(("dev1", "dev3", "dev4"), 1)
    ]
    assert [files for _, files in commits] == [
        [f"{device}/webapp/deployment-webapp.yaml"] for device in ("dev1", "dev3", "dev4")
    ]
