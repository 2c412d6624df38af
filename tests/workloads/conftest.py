"""The rendered trees' shared parts: the device's registry and the NUC's tree, rendered once per
run by deploy.yml on the manifests runtime (tests/workloads/test_manifests.py checks them,
test_fleet.py makes a fleet of copies of it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from playbook import run_playbook
from servers import Registry, SiteCredentials

DEVICE_INVENTORY = """
edge:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""
# The trees' images under names of their own: the appliance's suites, beside them, reset the
# appliance (its reset removes the names it ran, e.g. the side-loaded registry's); a name here
# keeps the same images alive for a tree's side-load and pushes. Built once: the same inputs are
# found under the product's names and tagged, not built again.
TREES_PREFIX = "localhost/edgeai-trees"
# This machine pulls no base image: every image is built from a debootstrapped root.
OFFLINE = {"images_offline_base": "true", "edge_images_prefix": TREES_PREFIX}


def device_inventory(tmp: Path) -> str:
    """This machine as a device with the roles' defaults (what a site gets unless it overrides)."""
    path = tmp / "hosts.yml"
    path.write_text(DEVICE_INVENTORY)
    return str(path)


def render(tmp: Path, registry: Registry, **extra: Any) -> Path:
    """deploy.yml on the manifests runtime, which writes what the microshift runtime applies;
    the images are built here and pushed to `registry`, standing for the device's (with its
    site's CA and password where the play finds them)."""
    if registry.site:
        registry.site.seed(tmp)
    result = run_playbook(
        "playbooks/deploy.yml",
        "-i",
        device_inventory(tmp),
        extra_vars={
            "edge_runtime": "manifests",
            "edge_manifests_dir": str(tmp),
            "edge_registry_push_host": registry.host,
            "edge_argocd_application": "true",
            "edge_argocd_repo_url": "https://git.example.com/edge/gitops.git",
            "edge_argocd_repo_path": "devices",
            **OFFLINE,
            **extra,
        },
    )
    (tmp / "deploy.out").write_text(result.stdout)  # what the playbook printed, beside the tree
    return tmp / "localhost"


@pytest.fixture(scope="session")
def device_registry() -> Iterator[Registry]:
    """The device's registry as deploy.yml sets it up by default: TLS from the site CA, a password."""
    site = SiteCredentials()
    with Registry(site=site) as registry:
        yield registry
    site.remove()


@pytest.fixture(scope="session")
def nuc_tree(tmp_path_factory: pytest.TempPathFactory, device_registry: Registry) -> Path:
    return render(tmp_path_factory.mktemp("nuc"), device_registry, edge_profile="nuc")
