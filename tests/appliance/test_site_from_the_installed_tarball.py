"""site.yml as a Galaxy user runs it: the collection built into its tarball, installed with
ansible-galaxy, and called by its name from a folder that is not the checkout. This is the run's one
deployment (the `appliance` fixture), so these tests run first on it.
"""

from __future__ import annotations

import pytest

import local_appliance
from playbook import BIN, recap_counts

pytestmark = pytest.mark.slow


def test_the_tarball_installs_offline_where_ansible_galaxy_lists_it(
    appliance: local_appliance.Deployment,
) -> None:
    listed = local_appliance.run_checked(
        [str(BIN / "ansible-galaxy"), "collection", "list", "edgeai.appliance"],
        appliance.workdir,
        local_appliance.installed_env(appliance.collections),
    ).stdout
    assert str(appliance.collections / "ansible_collections") in listed
    installed = appliance.installed
    assert not (installed / "galaxy.yml").exists() and (installed / "MANIFEST.json").exists()


def test_site_deploys_from_the_installed_collection(appliance: local_appliance.Deployment) -> None:
    """Its re-run is the checkout's (test_podman_runtime): the same inputs, so nothing changes. A
    second run of the installed collection itself would prove nothing more for a minute and a half."""
    assert recap_counts(appliance.output)["failed"] == 0
    assert "Publish RTMP to: rtmp://" in appliance.output
    # Scratch went to the controller's cache, nothing into the installed collection.
    assert not (appliance.installed / "build").exists()
    assert local_appliance.status()["model"]["version"] == "initial"
