"""Host roles against a real root (Debian dressed as RHEL 9, chroot): what molecule's
converge/idempotence/verify does not cover — check mode on a fresh and on a converged root, and
bad variables failing with the variable's name.

The root comes from molecule/_shared/debian-root.sh (debootstrap once, cached tarball). The
chroot connection needs root privileges, as it does on the test machines.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from playbook import recap_counts, run_playbook

from .roots import (
    DEBIAN_ROOT_SCRIPT,
    PULL_SECRET,
    chroot_host,
    first_failures,
    fresh_root,
    json_report,
    provision,
    write_inventory,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the chroot connection needs root"),
]

# CRI-O's drop-in for NVIDIA's runtime: its name sorts after MicroShift's own drop-ins.
NVIDIA_DROPIN = "etc/crio/crio.conf.d/zz-edgeai-nvidia.conf"

# Files the provisioning writes in the root (relative paths).
WRITTEN_FILES = (
    "etc/hosts",
    "etc/containers/registries.conf.d/50-edgeai-appliance.conf",
    "etc/crio/openshift-pull-secret",
    "etc/microshift/config.yaml",
)


def digests(root: Path) -> dict[str, str | None]:
    """sha256 of each written file (None when absent)."""
    return {
        name: hashlib.sha256((root / name).read_bytes()).hexdigest() if (root / name).exists() else None
        for name in WRITTEN_FILES
    }


MIRRORS = [{"prefix": "docker.io", "mirrors": [{"location": "mirror.site.example:5000", "insecure": True}]}]


@pytest.fixture(scope="module")
def rhel_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A root the module converges once (with mirrors); the last test moves its address."""
    root = fresh_root(tmp_path_factory.mktemp("host-roles"))
    yield root
    subprocess.run([str(DEBIAN_ROOT_SCRIPT), "remove", str(root)], check=True)


@pytest.fixture(scope="module")
def converged_inventory(rhel_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    inventory = write_inventory(
        tmp_path_factory.mktemp("converged") / "inventory.yml",
        {"device": chroot_host(rhel_root)},
        container_registries_mirrors=MIRRORS,
        container_registries_insecure=["lab-mirror.site.example:5000"],
    )
    provision(inventory)
    return inventory


def test_check_mode_on_a_fresh_root_reports_changes_and_writes_nothing(tmp_path: Path) -> None:
    """Like a check run on a device before MicroShift is installed: firewall, services and the
    kubeconfig are switched on, their units and files are not there yet."""
    root = fresh_root(tmp_path)
    inventory = write_inventory(
        tmp_path / "inventory.yml",
        {"device": chroot_host(root)},
        microshift_manage_firewall=True,
        microshift_manage_service=True,
        microshift_fetch_kubeconfig=True,
    )
    before = digests(root)

    result = provision(inventory, "--check", "--diff")

    assert recap_counts(result.stdout)["changed"] > 0
    assert "default-registry.cluster.local" in result.stdout  # the /etc/hosts diff is shown
    assert PULL_SECRET not in result.stdout  # ... but never the pull secret
    assert "check mode: firewalld is not installed yet" in result.stdout
    assert "check mode: microshift is not installed yet" in result.stdout
    assert digests(root) == before
    subprocess.run([str(DEBIAN_ROOT_SCRIPT), "remove", str(root)], check=True)


def test_check_mode_on_a_converged_root_changes_nothing(rhel_root: Path, converged_inventory: Path) -> None:
    converged = digests(rhel_root)
    assert all(converged.values()), converged

    result = provision(converged_inventory, "--check", "--diff")

    assert recap_counts(result.stdout)["changed"] == 0, result.stdout[-4000:]
    assert digests(rhel_root) == converged


def test_podman_reads_the_registries_drop_in(
    rhel_root: Path, converged_inventory: Path, tmp_path: Path
) -> None:
    """podman (containers/image, the library CRI-O uses too) parses the drop-in as intended."""
    user_dropins = tmp_path / ".config" / "containers" / "registries.conf.d"
    user_dropins.mkdir(parents=True)
    dropin = rhel_root / "etc/containers/registries.conf.d/50-edgeai-appliance.conf"
    (user_dropins / dropin.name).write_bytes(dropin.read_bytes())

    info = subprocess.run(
        ["podman", "info", "--format", "{{json .Registries}}"],
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )

    registries = json.loads(info.stdout)
    # The device's registry is trusted through the site CA (TLS on by default), not insecure; a
    # registry the site lists stays insecure.
    assert "default-registry.cluster.local" not in registries
    assert (rhel_root / "etc/containers/certs.d/default-registry.cluster.local/ca.crt").is_file()
    assert registries["lab-mirror.site.example:5000"]["Insecure"] is True
    assert registries["docker.io"]["Insecure"] is False
    assert registries["docker.io"]["Mirrors"] == [
        {"Location": "mirror.site.example:5000", "Insecure": True, "PullFromMirror": ""}
    ]


def test_a_changed_address_is_shown_by_check_mode_then_applied(
    rhel_root: Path, converged_inventory: Path, tmp_path: Path
) -> None:
    moved = write_inventory(
        tmp_path / "moved.yml",
        {"device": chroot_host(rhel_root)},
        container_registries_mirrors=MIRRORS,
        edge_profile_device_address="192.0.2.77",
    )

    checked = provision(moved, "--check", "--diff")
    assert "+192.0.2.77\tdefault-registry.cluster.local" in checked.stdout
    assert "192.0.2.77" not in (rhel_root / "etc/hosts").read_text()

    provision(moved)
    hosts = (rhel_root / "etc/hosts").read_text()
    assert "192.0.2.77\tdefault-registry.cluster.local webapp-ai-for-edge.cluster.local" in hosts
    assert "192.0.2.20" not in hosts
    assert "192.0.2.99\tntp.site.example" in hosts
    config = yaml.safe_load((rhel_root / "etc/microshift/config.yaml").read_text())
    assert "192.0.2.77" in config["apiServer"]["subjectAltNames"]


# One host per bad variable, all entering the same root: a single --check run shows every
# failure (ansible runs the hosts side by side), each host failing on its own variable.
BAD_VARIABLES: dict[str, tuple[dict[str, object], str]] = {
    "profile-typo": ({"edge_profile": "jetsen"}, "edge_profile"),
    "storage-choice": ({"microshift_storage": "lvm"}, "microshift_storage"),
    "nvidia-mode-choice": ({"nvidia_runtime_mode": "gpu"}, "nvidia_runtime_mode"),
    "bool-type": ({"edge_hosts_unsafe_writes": "maybe"}, "edge_hosts_unsafe_writes"),
    "mirror-without-prefix": (
        {"container_registries_mirrors": [{"mirrors": [{"location": "m:5000"}]}]},
        "found in container_registries_mirrors",
    ),
    "nodeport-range": ({"microshift_rtmp_node_port": 1935}, "microshift_rtmp_node_port: 1935"),
    "registry-nodeport-range": (
        {"microshift_registry_node_port": 5000},
        "microshift_registry_node_port: 5000",
    ),
    "no-pull-secret": ({"microshift_pull_secret": ""}, "microshift_pull_secret"),
    "pull-secret-not-json": ({"microshift_pull_secret": "not json"}, "microshift_pull_secret"),
}


@pytest.fixture(scope="module")
def bad_variable_failures(
    rhel_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Host name -> the failure message it stopped with (json callback)."""
    hosts = {name: chroot_host(rhel_root, **variables) for name, (variables, _) in BAD_VARIABLES.items()}
    inventory = write_inventory(tmp_path_factory.mktemp("bad") / "inventory.yml", hosts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANSIBLE_STDOUT_CALLBACK", "ansible.builtin.json")
        result = provision(inventory, "--check", check=False)
    assert result.returncode != 0, result.stdout[-3000:]
    failures = first_failures(json_report(result))
    yield failures


@pytest.mark.parametrize("case", list(BAD_VARIABLES))
def test_a_bad_variable_fails_naming_it(bad_variable_failures: dict[str, str], case: str) -> None:
    named = BAD_VARIABLES[case][1]
    assert case in bad_variable_failures, f"{case} did not fail: {sorted(bad_variable_failures)}"
    assert named in bad_variable_failures[case]


def test_each_host_role_runs_alone_with_its_tag(tmp_path: Path) -> None:
    """The profile's facts run for any tag, so `--tags <role>` works on a fresh device."""
    root = fresh_root(tmp_path, "rhel9-jetson")
    inventory = write_inventory(
        tmp_path / "inventory.yml",
        {"device": chroot_host(root)},
        edge_profile="auto",
        edge_profile_architecture="aarch64",  # with the Tegra device tree: a simulated Jetson on RHEL
        nvidia_runtime_install_packages=False,
    )
    hosts_only = provision(inventory, "--tags", "edge_hosts")
    assert "default-registry.cluster.local" in (root / "etc/hosts").read_text()
    assert digests(root)["etc/containers/registries.conf.d/50-edgeai-appliance.conf"] is None
    assert recap_counts(hosts_only.stdout)["failed"] == 0

    provision(inventory, "--tags", "nvidia_runtime")
    assert (root / NVIDIA_DROPIN).is_file()
    assert not (root / "etc/microshift/config.yaml").exists()

    checked = provision(inventory, "--tags", "microshift", "--check")
    assert recap_counts(checked.stdout)["changed"] > 0
    assert not (root / "etc/microshift/config.yaml").exists()
    provision(inventory, "--tags", "microshift")
    assert (root / "etc/microshift/config.yaml").is_file()
    subprocess.run([str(DEBIAN_ROOT_SCRIPT), "remove", str(root)], check=True)


def test_reset_removes_the_host_changes_and_keeps_everything_else(tmp_path: Path) -> None:
    root = fresh_root(tmp_path, "rhel9-jetson")
    inventory = write_inventory(
        tmp_path / "inventory.yml",
        {"device": chroot_host(root)},
        edge_profile_architecture="aarch64",
        nvidia_runtime_install_packages=False,
        microshift_storage="hostpath",
        # The workloads' part of reset on the manifests runtime: the GitOps tree on the controller.
        edge_runtime="manifests",
        edge_manifests_dir=str(tmp_path / "gitops"),
    )
    provision(inventory, "--extra-vars", "edge_runtime=microshift")
    (tmp_path / "gitops" / "device").mkdir(parents=True)
    written = digests(root)
    assert all(written.values()), written
    assert (root / NVIDIA_DROPIN).exists()

    def reset(*args: str) -> subprocess.CompletedProcess[str]:
        return run_playbook("playbooks/reset.yml", "-i", str(inventory), *args)

    checked = reset("--check", "--diff")
    assert recap_counts(checked.stdout)["changed"] > 0
    assert digests(root) == written

    reset()
    hosts = (root / "etc/hosts").read_text()
    assert "edgeai.appliance" not in hosts and "default-registry.cluster.local" not in hosts
    assert "192.0.2.99\tntp.site.example" in hosts  # the rest of the file stays
    assert not (root / "etc/containers/registries.conf.d/50-edgeai-appliance.conf").exists()
    assert not (root / NVIDIA_DROPIN).exists()
    assert not (tmp_path / "gitops" / "device").exists()
    # MicroShift's own configuration stays unless asked for.
    assert (root / "etc/microshift/config.yaml").exists()

    everything = "edge_runtime=microshift reset_microshift_data=true"
    reset("--extra-vars", everything, "--skip-tags", "edge_workload")
    assert not (root / "etc/microshift/config.yaml").exists()
    assert not (root / "etc/crio/openshift-pull-secret").exists()
    assert not (root / "var/lib/edgeai-appliance/volumes").exists()
    assert recap_counts(reset().stdout)["changed"] == 0  # a second reset finds nothing to remove

    provision(inventory, "--extra-vars", "edge_runtime=microshift")  # and provisioning works again
    assert all(digests(root).values())
    subprocess.run([str(DEBIAN_ROOT_SCRIPT), "remove", str(root)], check=True)
