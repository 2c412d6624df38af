"""The support matrix on roots dressed as each OS of it: one provisioning run enters them all
(side by side, as a site's devices), under the host name `localhost` that RHEL leaves on a device
nobody named. Package installs are off (no dnf, apt or rpm-ostree reaches these roots); the
decisions, the files written and the refusals are what is asserted."""

from __future__ import annotations

import os
import subprocess
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from playbook import BIN, REPO_ROOT, ansible_env

from .roots import chroot_host, first_failures, fresh_root, json_report, remove_root, write_inventory

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the chroot connection needs root"),
]

# host -> (OS of the root, the site's edge_runtime, host variables)
JETSON = {"edge_profile_architecture": "aarch64"}  # this machine is x86_64
CELLS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "jetson-rhel": ("rhel9-jetson", "auto", JETSON),
    "nuc-rhel-image-mode": ("rhel9-image", "auto", {}),
    "jetson-jetpack": ("jetpack", "auto", JETSON),
    "nuc-debian": ("debian12", "auto", {}),
    "nuc-ubuntu": ("ubuntu24", "auto", {}),
    "nuc-fedora": ("fedora41", "auto", {}),
    "jetpack-with-microshift": ("jetpack", "microshift", JETSON),
    "debian-with-microshift": ("debian12", "microshift", {}),
    "jetson-rhel-with-cdi": ("rhel9-jetson", "auto", {**JETSON, "nvidia_runtime_mode": "cdi"}),
}
REFUSED = {"jetpack-with-microshift", "debian-with-microshift"}
NOTHING_TO_ASK_FOR_THE_GPU = "jetson-rhel-with-cdi"
ADDRESSES = {name: f"192.0.2.{30 + index}" for index, name in enumerate(CELLS)}
GREENBOOT_CHECK = "etc/greenboot/check/required.d/50_edgeai_appliance_running_check.sh"


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The roots by host, the decision each host reported and the failure each refused one
    stopped with."""
    parent = tmp_path_factory.mktemp("matrix")
    roots = {name: fresh_root(parent, os_name, name) for name, (os_name, _, _) in CELLS.items()}
    hosts = {
        name: chroot_host(
            roots[name], edge_runtime=runtime, edge_profile_device_address=ADDRESSES[name], **variables
        )
        for name, (_, runtime, variables) in CELLS.items()
    }
    inventory = write_inventory(
        parent / "inventory.yml", hosts, nvidia_runtime_install_packages=False, microshift_storage="hostpath"
    )
    # A UTS namespace of its own: the facts report the host name `localhost`, as on a fresh RHEL.
    command = f"hostname localhost && exec {BIN}/ansible-playbook playbooks/provision.yml -i {inventory}"
    result = subprocess.run(
        ["unshare", "--uts", "sh", "-c", command],
        cwd=REPO_ROOT,
        env={**ansible_env(), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"},
        capture_output=True,
        text=True,
        check=False,
    )
    report = json_report(result)
    decisions = {
        host: outcome["msg"]
        for play in report["plays"]
        for task in play["tasks"]
        if task["task"]["name"].endswith("Report the resolved profile")
        for host, outcome in task["hosts"].items()
    }
    failures = first_failures(report)
    assert set(failures) == {*REFUSED, NOTHING_TO_ASK_FOR_THE_GPU}, failures
    yield {"roots": roots, "decisions": decisions, "failures": failures}
    for root in roots.values():
        remove_root(root)


@pytest.mark.parametrize(
    ("host", "decision"),
    [
        (
            "jetson-rhel",
            "profile jetson on rhel (RedHat 9), runtime microshift, GPU device-plugin (device group 44)",
        ),
        ("nuc-rhel-image-mode", "profile nuc on rhel (RedHat 9), runtime microshift, GPU none"),
        (
            "jetson-jetpack",
            "profile jetson on jetpack (Ubuntu 22), runtime podman, GPU nvidia-runtime (device group 44)",
        ),
        ("nuc-debian", "profile nuc on other (Debian 12), runtime podman, GPU none"),
        ("nuc-ubuntu", "profile nuc on other (Ubuntu 24), runtime podman, GPU none"),
        ("nuc-fedora", "profile nuc on other (Fedora 41), runtime podman, GPU none"),
    ],
)
def test_auto_picks_the_runtime_and_gpu_path_of_each_cell(
    matrix: dict[str, Any], host: str, decision: str
) -> None:
    assert " ".join(matrix["decisions"][host].split()).startswith(f"{host}: {decision},")


@pytest.mark.parametrize("host", sorted(REFUSED))
def test_microshift_off_rhel_fails_at_the_first_task_naming_the_way_that_works(
    matrix: dict[str, Any], host: str
) -> None:
    failure = matrix["failures"][host]
    assert "edge_profile : Check that this device, OS and runtime work together:" in failure
    assert "edge_runtime=microshift" in failure and "edge_runtime: podman" in failure
    root = matrix["roots"][host]
    assert "default-registry.cluster.local" not in (root / "etc/hosts").read_text()  # nothing done


def test_a_rhel_jetson_gets_nvidia_runtime_as_crio_default_after_microshift_drop_ins(
    matrix: dict[str, Any],
) -> None:
    root = matrix["roots"]["jetson-rhel"]
    dropins = root / "etc/crio/crio.conf.d"
    ours = tomllib.loads((dropins / "zz-edgeai-nvidia.conf").read_text())
    assert ours["crio"]["runtime"]["default_runtime"] == "nvidia"
    # CRI-O applies drop-ins in lexical order, the last one winning: ours comes after the names
    # MicroShift 4.14-4.21 ships (microshift.conf, 10-microshift.conf, ...).
    shipped = [
        "00-crio-crun.conf",
        "10-microshift.conf",
        "11-microshift-ovn.conf",
        "microshift.conf",
        "microshift-ovn.conf",
    ]
    assert sorted([*shipped, "zz-edgeai-nvidia.conf"])[-1] == "zz-edgeai-nvidia.conf"
    toolkit = tomllib.loads((root / "etc/nvidia-container-runtime/config.toml").read_text())
    assert toolkit["nvidia-container-runtime"]["runtimes"][0] == "crun"
    assert not (root / "etc/containers/containers.conf").exists()


def test_a_jetpack_jetson_gets_nvidia_runtime_as_podman_default_and_no_microshift(
    matrix: dict[str, Any],
) -> None:
    root = matrix["roots"]["jetson-jetpack"]
    podman = tomllib.loads((root / "etc/containers/containers.conf").read_text())
    assert podman["engine"]["runtime"] == "nvidia"
    assert podman["engine"]["runtimes"]["nvidia"] == ["/usr/bin/nvidia-container-runtime"]
    assert not (root / "etc/crio/crio.conf.d/zz-edgeai-nvidia.conf").exists()
    assert not (root / "etc/microshift/config.yaml").exists()


@pytest.mark.parametrize("host", ["nuc-debian", "nuc-ubuntu", "nuc-fedora"])
def test_a_podman_nuc_gets_neither_microshift_nor_nvidia(matrix: dict[str, Any], host: str) -> None:
    root = matrix["roots"][host]
    assert "default-registry.cluster.local" in (root / "etc/hosts").read_text()
    assert not (root / "etc/microshift/config.yaml").exists()
    assert not (root / "etc/crio/crio.conf.d/zz-edgeai-nvidia.conf").exists()
    assert not (root / "etc/containers/containers.conf").exists()


@pytest.mark.parametrize("host", ["jetson-rhel", "nuc-rhel-image-mode"])
def test_the_api_certificate_leaves_localhost_out(matrix: dict[str, Any], host: str) -> None:
    config = yaml.safe_load((matrix["roots"][host] / "etc/microshift/config.yaml").read_text())
    assert config["apiServer"]["subjectAltNames"] == [ADDRESSES[host]]


def test_image_mode_gets_a_greenboot_check_that_shellcheck_passes(matrix: dict[str, Any]) -> None:
    check = matrix["roots"]["nuc-rhel-image-mode"] / GREENBOOT_CHECK
    assert check.stat().st_mode & 0o777 == 0o755
    text = check.read_text()
    assert "NAMESPACE=ai-for-edge" in text
    assert "DEPLOYMENTS=(registry nginx-rtmp webapp)" in text
    assert "microshift healthcheck --namespace" in text  # 4.19+
    assert "/usr/share/microshift/functions/greenboot.sh" in text  # 4.14-4.18
    subprocess.run(["shellcheck", "--shell=bash", str(check)], check=True)
    # A package-mode RHEL device has no greenboot: no check there.
    assert not (matrix["roots"]["jetson-rhel"] / GREENBOOT_CHECK).exists()


def test_cdi_on_a_microshift_jetson_is_refused_before_anything_is_written(matrix: dict[str, Any]) -> None:
    """NVIDIA's device plugin cannot name CDI devices on a Jetson: nothing would ask for the GPU."""
    failure = matrix["failures"][NOTHING_TO_ASK_FOR_THE_GPU]
    assert "nvidia_runtime : Check that the GPU can reach the app on MicroShift" in failure
    assert "nvidia_runtime_mode=cdi" in failure and "nvidia_runtime_mode: crio-runtime" in failure
    root = matrix["roots"][NOTHING_TO_ASK_FOR_THE_GPU]
    assert not (root / "etc/crio/crio.conf.d/zz-edgeai-nvidia.conf").exists()
    assert not (root / "etc/microshift/config.yaml").exists()
