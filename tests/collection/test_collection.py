"""The collection as Galaxy ships it: the tarball's contents, the playbook an installed collection
runs by its FQCN, and role metadata that agrees with meta/runtime.yml."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collection_tarball import build, members, problems

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("dist"))


def test_tarball_holds_what_an_installed_collection_needs_and_no_junk(tarball: Path) -> None:
    assert problems(members(tarball)) == []


@pytest.mark.parametrize(
    "junk",
    [
        "app/build/lib/edgeface/web.py",
        "app/src/edgeface.egg-info/PKG-INFO",
        "app/src/edgeface/__pycache__/web.cpython-311.pyc",
        ".yamllint",
        "roles/webapp/.keep",
        "e2e/conftest.py",
        "benchmarks/clip.py",
        "tests/conftest.py",
        "tests/sanity/get_pip.py",
        "molecule/nuc/molecule.yml",
        "changelogs/fragments/18-packaging.yml",
        "inventories/local/credentials/webapp-password",
        "build/edgeai-appliance-0.1.0.tar.gz",
        "Makefile",
    ],
)
def test_the_check_names_junk(tarball: Path, junk: str) -> None:
    found = problems([*members(tarball), junk])
    assert len(found) == 1
    assert found[0].startswith(f"{junk}: ")


@pytest.mark.parametrize(
    "essential", ["LICENSE", "meta/runtime.yml", "playbooks/site.yml", "app/src/edgeface"]
)
def test_the_check_names_a_missing_essential_path(tarball: Path, essential: str) -> None:
    names = [name for name in members(tarball) if name != essential and not name.startswith(essential + "/")]
    assert f"{essential}: missing" in problems(names)


def test_the_check_names_a_role_the_tarball_lost(tarball: Path) -> None:
    names = [name for name in members(tarball) if not name.startswith("roles/retrain/tasks/")]
    assert "roles/retrain/tasks/main.yml: missing" in problems(names)


def test_installed_collection_runs_site_by_its_fqcn(tarball: Path, tmp_path: Path) -> None:
    """Installed from the tarball alone (the bundled collections of the `ansible` package found
    as usual), the playbook parses and lists its tasks against the shipped local inventory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(tmp_path), ANSIBLE_NOCOLOR="1")
    subprocess.run(
        [
            str(BIN / "ansible-galaxy"),
            "collection",
            "install",
            "--no-deps",
            "-p",
            str(tmp_path),
            str(tarball),
        ],
        check=True,
        capture_output=True,
        env=env,
        cwd=tmp_path,
    )
    installed = tmp_path / "ansible_collections" / "edgeai" / "appliance"
    assert not (installed / "tests" / "conftest.py").exists()

    def playbook(*args: str) -> str:
        result = subprocess.run(
            [str(BIN / "ansible-playbook"), "edgeai.appliance.site", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert "playbooks/site.yml" in playbook("--syntax-check")
    tasks = playbook("--list-tasks", "-i", str(installed / "inventories" / "local"))
    assert "Prepare the edge hosts and install MicroShift" in tasks
    assert "Build the appliance's images and plan the deployment" in tasks
    assert "Report every device of the run" in tasks


def test_every_role_meta_agrees_with_the_collection() -> None:
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    match = re.fullmatch(r">=\s*(\d+\.\d+)(\.\d+)?", runtime["requires_ansible"])
    assert match, runtime["requires_ansible"]
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    metas = sorted((REPO_ROOT / "roles").glob("*/meta/main.yml"))
    assert len(metas) == len(list((REPO_ROOT / "roles").iterdir()))
    for path in metas:
        meta = yaml.safe_load(path.read_text())
        info = meta["galaxy_info"]
        role = path.parent.parent.name
        assert info["author"] == galaxy["authors"][0], role
        assert info["license"] == "Apache-2.0", role
        assert info["min_ansible_version"] == match.group(1), role
        assert info["description"].endswith("."), role
        assert info["platforms"] and all(p["name"] and p["versions"] for p in info["platforms"]), role
        assert info["galaxy_tags"], role
        assert isinstance(meta["dependencies"], list), role


def test_the_credentials_beside_the_inventory_are_not_read_as_hosts(tmp_path: Path) -> None:
    """edge_credentials_dir defaults to inventories/<site>/credentials: read as INI inventory, a
    password file would become a host named after the password (and be printed as one)."""
    site = tmp_path / "inventories" / "site"
    shutil.copytree(REPO_ROOT / "inventories" / "local", site, ignore=shutil.ignore_patterns("credentials"))
    (site / "credentials" / "ca").mkdir(parents=True)
    (site / "credentials" / "webapp-password").write_text("Sup3rSecretPassw0rd\n")
    (site / "credentials" / "ca" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n")
    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(site), "--list"],
        cwd=REPO_ROOT,  # the checkout's ansible.cfg, as the README's commands run
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Sup3rSecretPassw0rd" not in listed.stdout + listed.stderr
    assert "CERTIFICATE" not in listed.stderr
    assert sorted(json.loads(listed.stdout)["_meta"]["hostvars"]) == ["localhost"]
