"""The support matrix (edge_platform) and the API certificate's names (subject_alt_names): every
cell of the README's matrix, decided from the facts a device reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import load_by_path

FILTERS = Path(__file__).resolve().parents[2] / "plugins" / "filter"
edge_platform = load_by_path("edgeai_edge_platform", FILTERS / "edge_platform.py").edge_platform
subject_alt_names = load_by_path(
    "edgeai_subject_alt_names", FILTERS / "subject_alt_names.py"
).subject_alt_names

# Facts of the devices of the matrix, as Ansible reports them.
RHEL_JETSON = {
    "architecture": "aarch64",
    "distribution": "RedHat",
    "distribution_major_version": "9",
    "tegra": True,
}
JETPACK = {
    "architecture": "aarch64",
    "distribution": "Ubuntu",
    "distribution_major_version": "22",
    "l4t": True,
    "tegra": True,
}
RHEL_NUC = {"architecture": "x86_64", "distribution": "RedHat", "distribution_major_version": "9"}
DEBIAN_NUC = {"architecture": "x86_64", "distribution": "Debian", "distribution_major_version": "12"}
UBUNTU_NUC = {"architecture": "x86_64", "distribution": "Ubuntu", "distribution_major_version": "24"}
FEDORA_NUC = {"architecture": "x86_64", "distribution": "Fedora", "distribution_major_version": "41"}
RHEL8_NUC = {"architecture": "x86_64", "distribution": "RedHat", "distribution_major_version": "8"}
DEBIAN_ARM_TEGRA = {
    "architecture": "aarch64",
    "distribution": "Debian",
    "distribution_major_version": "12",
    "tegra": True,
}


def decide(facts: dict[str, Any], runtime: str = "auto", profile: str = "auto") -> dict[str, str]:
    return edge_platform(
        {**facts, "runtime": runtime, "profile": profile, "microshift_platforms": ["RedHat 9"]}
    )


# (facts, requested runtime) -> (profile, os, runtime, gpu)
WORKING = {
    "jetson-rhel-auto": (RHEL_JETSON, "auto", ("jetson", "rhel", "microshift", "device-plugin")),
    "jetson-rhel-podman": (RHEL_JETSON, "podman", ("jetson", "rhel", "podman", "nvidia-runtime")),
    "jetson-jetpack-auto": (JETPACK, "auto", ("jetson", "jetpack", "podman", "nvidia-runtime")),
    "jetson-jetpack-gitops": (JETPACK, "manifests", ("jetson", "jetpack", "manifests", "device-plugin")),
    "nuc-rhel-auto": (RHEL_NUC, "auto", ("nuc", "rhel", "microshift", "none")),
    "nuc-rhel-podman": (RHEL_NUC, "podman", ("nuc", "rhel", "podman", "none")),
    "nuc-debian-auto": (DEBIAN_NUC, "auto", ("nuc", "other", "podman", "none")),
    "nuc-ubuntu-auto": (UBUNTU_NUC, "auto", ("nuc", "other", "podman", "none")),
    "nuc-fedora-auto": (FEDORA_NUC, "auto", ("nuc", "other", "podman", "none")),
    "nuc-rhel8-auto": (RHEL8_NUC, "auto", ("nuc", "other", "podman", "none")),
}


@pytest.mark.parametrize("cell", list(WORKING))
def test_each_working_cell_gets_its_runtime_and_gpu_path(cell: str) -> None:
    facts, runtime, expected = WORKING[cell]
    decision = decide(facts, runtime)
    assert decision["problem"] == ""
    assert (decision["profile"], decision["os"], decision["runtime"], decision["gpu"]) == expected


# (facts, runtime, profile) -> words the refusal must contain: the variable and the way that works.
REFUSED = {
    "microshift-on-jetpack": (
        JETPACK,
        "microshift",
        "auto",
        ["edge_runtime=microshift", "JetPack", "edge_runtime: podman"],
    ),
    "microshift-on-debian": (
        DEBIAN_NUC,
        "microshift",
        "auto",
        ["edge_runtime=microshift", "Debian 12", "RHEL 9"],
    ),
    "microshift-on-fedora": (FEDORA_NUC, "microshift", "auto", ["edge_runtime=microshift", "Fedora 41"]),
    "microshift-on-rhel8": (RHEL8_NUC, "microshift", "auto", ["edge_runtime=microshift", "RedHat 8"]),
    "jetson-without-a-gpu-driver": (
        DEBIAN_ARM_TEGRA,
        "auto",
        "auto",
        ["edge_profile=jetson", "JetPack", "edge_profile: nuc"],
    ),
    "runtime-typo": (RHEL_NUC, "podmann", "auto", ["edge_runtime='podmann'"]),
    "profile-typo": (RHEL_NUC, "auto", "jetsen", ["edge_profile='jetsen'"]),
}


@pytest.mark.parametrize("cell", list(REFUSED))
def test_each_refused_cell_names_the_variable_and_the_way_that_works(cell: str) -> None:
    facts, runtime, profile, words = REFUSED[cell]
    problem = decide(facts, runtime, profile)["problem"]
    assert problem
    for word in words:
        assert word in problem, (word, problem)


def test_a_jetson_is_found_by_its_device_tree_on_rhel_and_by_l4t_on_jetpack() -> None:
    assert decide({**RHEL_JETSON, "tegra": False})["profile"] == "nuc"  # an arm64 server on RHEL
    assert decide({**JETPACK, "tegra": False})["profile"] == "jetson"  # the L4T release file alone
    assert decide({**RHEL_JETSON, "architecture": "x86_64"})["profile"] == "nuc"  # Tegra is arm64
    assert decide(RHEL_NUC, profile="jetson")["profile"] == "jetson"  # forced (tests, simulations)


def test_a_site_may_add_the_platforms_microshift_builds_exist_for() -> None:
    centos = {"architecture": "x86_64", "distribution": "CentOS", "distribution_major_version": "9"}
    assert decide(centos)["runtime"] == "podman"
    added = edge_platform({**centos, "runtime": "auto", "microshift_platforms": ["RedHat 9", "CentOS 9"]})
    assert (added["runtime"], added["problem"]) == ("microshift", "")


@pytest.mark.parametrize(
    ("names", "kept"),
    [
        (["192.0.2.20", "localhost", "localhost.localdomain"], ["192.0.2.20"]),
        (
            ["192.0.2.20", "nuc-01", "nuc-01.site.example", "nuc-01"],
            ["192.0.2.20", "nuc-01", "nuc-01.site.example"],
        ),
        (["127.0.0.1", "::1", "127.0.1.1", "10.0.0.5", "fe80::1"], ["10.0.0.5", "fe80::1"]),
        (["", "LOCALHOST", "api.localhost", "localhost4", "localhost6.localdomain6"], []),
        (["under_score", "-bad", "ok-name", "x" * 64], ["ok-name"]),
    ],
)
def test_the_api_certificate_never_names_loopback_or_localhost(names: list[str], kept: list[str]) -> None:
    assert subject_alt_names(names) == kept
