"""The podman runtime over a reboot's stopped pods, and reset.yml, for real on this machine.

A reboot leaves the pods Exited; podman's podman-kube@ units (enabled by site.yml) replay them at
boot. Here the run's appliance has its pods stopped the same way and site.yml, then reset.yml, run
over them; these tests run last on it (tests/conftest.py) and leave it deployed again.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import local_appliance
from playbook import recap_counts, run_playbook

pytestmark = pytest.mark.slow

WANTS = Path("/etc/systemd/system/default.target.wants")
HOSTS_MARKER = "edgeai.appliance edge_hosts"
DROP_IN = Path("/etc/containers/registries.conf.d/50-edgeai-appliance.conf")


def pods() -> dict[str, str]:
    listed = subprocess.run(
        ["podman", "pod", "ps", "--format", "json"], capture_output=True, text=True, check=True
    )
    return {pod["Name"]: pod["Status"] for pod in json.loads(listed.stdout or "[]")}


def units() -> list[str]:
    return sorted(path.name for path in WANTS.glob("podman-kube@*edgeai*"))


def our_images() -> list[str]:
    """Names images really have (not the name history `podman images` also shows) from the registry."""
    listed = subprocess.run(
        ["podman", "images", "--format", "json"], capture_output=True, text=True, check=True
    )
    names = [name for image in json.loads(listed.stdout or "[]") for name in image.get("Names") or []]
    return sorted(
        name
        for name in names
        if name.startswith(("127.0.0.1:5000/", "localhost/ai-for-edge/amd64/registry:"))
    )


def outside_our_block(text: str) -> list[str]:
    """/etc/hosts without the lines between (and on) our BEGIN/END markers."""
    lines, inside = [], False
    for line in text.splitlines():
        if HOSTS_MARKER in line:
            inside = "BEGIN" in line
        elif not inside:
            lines.append(line)
    return lines


def reset(*args: str) -> subprocess.CompletedProcess[str]:
    return run_playbook("playbooks/reset.yml", "-i", "inventories/local", *args)


def test_site_over_stopped_pods_brings_them_back_with_their_content(
    appliance: local_appliance.Deployment,
) -> None:
    assert len(units()) == len(local_appliance.PODS), "site.yml enables a boot unit per workload"
    webapp_digest = local_appliance.registry_digest("ai-for-edge/webapp", "0.1.0")
    published = local_appliance.published()
    subprocess.run(["podman", "pod", "stop", *local_appliance.PODS], check=True, capture_output=True)
    assert all(not status.startswith("Running") for status in pods().values())

    local_appliance.site()

    assert {name: status for name, status in pods().items() if name in local_appliance.PODS} == dict.fromkeys(
        local_appliance.PODS, "Running"
    )
    # The registry's volume (and what was pushed into it) and the model in service are kept.
    assert local_appliance.registry_digest("ai-for-edge/webapp", webapp_digest) == webapp_digest
    # The registry's tags, the model in service and the store (its bucket, what it held, the same
    # generated key) come back as they were.
    assert local_appliance.published() == published


def test_reset_check_mode_shows_and_removes_nothing(appliance: local_appliance.Deployment) -> None:
    before = (pods(), units(), our_images())
    checked = reset("--check", "--diff")
    assert recap_counts(checked.stdout)["changed"] > 0
    assert (pods(), units(), our_images()) == before
    assert HOSTS_MARKER in Path("/etc/hosts").read_text()


def test_reset_removes_what_the_appliance_put_here_and_site_works_again(
    appliance: local_appliance.Deployment,
) -> None:
    hosts_before = outside_our_block(Path("/etc/hosts").read_text())
    reset()
    assert not any(name in pods() for name in local_appliance.PODS)
    assert units() == []
    assert our_images() == []
    assert not local_appliance.KUBE_DIR.exists()
    volumes = subprocess.run(["podman", "volume", "ls", "-q"], capture_output=True, text=True, check=True)
    assert not set(local_appliance.VOLUMES) & set(volumes.stdout.split())
    assert not local_appliance.SECRETS_DIR.exists()
    assert HOSTS_MARKER not in Path("/etc/hosts").read_text()
    assert not DROP_IN.exists()
    assert not (local_appliance.CERTS_D / local_appliance.REGISTRY_HOST).exists()
    assert Path("/etc/hosts").read_text().splitlines() == hosts_before  # every other line stays

    local_appliance.site()
    assert set(local_appliance.PODS) <= set(pods())
    assert local_appliance.model_version() == "initial"
