"""site.yml as a Galaxy user runs it: the collection built into its tarball, installed with
ansible-galaxy, and called by its name from a folder that is not the checkout.

This module's name sorts last in the package on purpose: images built from an installed collection
carry no git revision label, so the checkout's next run rebuilds them, which the other modules'
"a second run changes nothing" would see.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import collection_tarball
import local_appliance
from playbook import BIN, REPO_ROOT, recap_counts

pytestmark = pytest.mark.slow


def installed_env(collections: Path) -> dict[str, str]:
    """A user's shell: no checkout ansible.cfg or roles path; collections from the install only
    (the dependencies from the ansible bundle, which is always searched)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    )
    return result


def test_site_deploys_from_the_installed_tarball_and_a_rerun_changes_nothing(
    deployed: str, tmp_path: Path
) -> None:
    tarball = collection_tarball.build(tmp_path / "dist")
    collections = tmp_path / "collections"
    env = installed_env(collections)
    run(
        [
            str(BIN / "ansible-galaxy"),
            "collection",
            "install",
            "--offline",
            "--no-deps",
            "-p",
            str(collections),
            str(tarball),
        ],
        tmp_path,
        env,
    )
    installed = collections / "ansible_collections" / "edgeai" / "appliance"
    listed = run(
        [str(BIN / "ansible-galaxy"), "collection", "list", "edgeai.appliance"], tmp_path, env
    ).stdout
    assert str(collections / "ansible_collections") in listed
    assert not (installed / "galaxy.yml").exists() and (installed / "MANIFEST.json").exists()

    # The inventory is the site's own (its credentials already made by the checkout's run).
    site = [
        str(BIN / "ansible-playbook"),
        "edgeai.appliance.site",
        "-i",
        str(REPO_ROOT / "inventories" / "local"),
    ]
    first = run(site, tmp_path, env)
    assert recap_counts(first.stdout)["failed"] == 0
    assert "Publish RTMP to: rtmp://" in first.stdout
    # Scratch went to the controller's cache, nothing into the installed collection.
    assert not (installed / "build").exists()
    assert local_appliance.status()["model"]["version"]

    again = run(site, tmp_path, env)
    assert recap_counts(again.stdout)["changed"] == 0, again.stdout[-4000:]
