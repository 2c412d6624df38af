# SPDX-License-Identifier: Apache-2.0
"""The support matrix in one place: which device, which OS, which runtime, how the GPU reaches
the app, or why the combination is refused (named variable, the way that works)."""

from __future__ import annotations

from typing import Any

DOCUMENTATION = r"""
---
name: edge_platform
short_description: Decide a device's profile, OS class, runtime and GPU path from its facts
version_added: 0.2.0
description:
  - The appliance's support matrix. MicroShift ships RPMs for RHEL 9 only, so it runs on a RHEL 9
    Jetson Orin or NUC; a Jetson on JetPack (Ubuntu L4T) and any other Linux run the podman runtime.
  - Returns a mapping with C(profile) (jetson or nuc), C(os) (rhel, jetpack or other), C(runtime)
    (microshift, podman or manifests), C(gpu) (device-plugin, nvidia-runtime or none) and
    C(problem), an error message naming the variable to change, or an empty string.
author: edgeai.appliance maintainers (!UNKNOWN)
positional: _input
options:
  _input:
    description:
      - C(architecture), C(distribution), C(distribution_major_version) (facts), C(l4t) (the Tegra
        release file or nvidia-l4t-core is there), C(tegra) (the device tree names an NVIDIA Tegra
        SoC), C(profile) (auto, jetson or nuc), C(runtime) (auto, microshift, podman or manifests)
        and C(microshift_platforms) (C(distribution major) strings MicroShift is installed on).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Decide the platform
  ansible.builtin.set_fact:
    platform: "{{ {'architecture': 'aarch64', 'distribution': 'Ubuntu', 'distribution_major_version': '22',
                   'l4t': true, 'tegra': true, 'profile': 'auto', 'runtime': 'auto',
                   'microshift_platforms': ['RedHat 9']} | edgeai.appliance.edge_platform }}"
  # -> {profile: jetson, os: jetpack, runtime: podman, gpu: nvidia-runtime, problem: ""}
"""

RETURN = r"""
_value:
  description: The decision; C(problem) is empty when the combination is supported.
  type: dict
"""

ARM = ("aarch64", "arm64")
RUNTIMES = ("auto", "microshift", "podman", "manifests")
PROFILES = ("auto", "jetson", "nuc")


def edge_platform(facts: dict[str, Any]) -> dict[str, str]:
    """The decision for one device (see DOCUMENTATION)."""
    requested_profile = str(facts.get("profile") or "auto")
    requested_runtime = str(facts.get("runtime") or "auto")
    if requested_profile not in PROFILES:
        return _refused(f"edge_profile={requested_profile!r} is not one of {', '.join(PROFILES)}.")
    if requested_runtime not in RUNTIMES:
        return _refused(f"edge_runtime={requested_runtime!r} is not one of {', '.join(RUNTIMES)}.")

    l4t, tegra = bool(facts.get("l4t")), bool(facts.get("tegra"))
    arm = str(facts.get("architecture", "")) in ARM
    profile = requested_profile
    if profile == "auto":
        profile = "jetson" if arm and (l4t or tegra) else "nuc"

    distribution = str(facts.get("distribution", ""))
    major = str(facts.get("distribution_major_version", ""))
    host_os = f"{distribution} {major}".strip()
    platforms = [str(item) for item in facts.get("microshift_platforms") or ()]
    if host_os in platforms:
        os_class = "rhel"
    elif l4t and distribution == "Ubuntu":
        os_class = "jetpack"
    else:
        os_class = "other"

    runtime = requested_runtime
    if runtime == "auto":
        runtime = "microshift" if os_class == "rhel" else "podman"
    gpu = "none"
    if profile == "jetson":
        gpu = "nvidia-runtime" if runtime == "podman" else "device-plugin"
    decision = {"profile": profile, "os": os_class, "runtime": runtime, "gpu": gpu, "problem": ""}

    if runtime == "microshift" and os_class != "rhel":
        where = "JetPack (Ubuntu L4T)" if os_class == "jetpack" else host_os or "an unknown OS"
        decision["problem"] = (
            f"edge_runtime=microshift: MicroShift ships RPMs for {' / '.join(platforms) or 'RHEL 9'} only "
            "and "
            f"this host runs {where}. Set edge_runtime: podman (or auto, which picks it here), or install "
            "RHEL 9 on the device for MicroShift (a site running CentOS Stream with MicroShift's own builds "
            "adds it to edge_profile_microshift_platforms)."
        )
    elif profile == "jetson" and runtime != "manifests" and os_class == "other":
        decision["problem"] = (
            f"edge_profile=jetson: this host runs {host_os or 'an unknown OS'}, which carries no Jetson GPU "
            "driver. Run JetPack (Ubuntu L4T) with edge_runtime: podman, or RHEL 9 with MicroShift; or set "
            "edge_profile: nuc to use the CPU only."
        )
    return decision


def _refused(problem: str) -> dict[str, str]:
    return {"profile": "", "os": "", "runtime": "", "gpu": "none", "problem": problem}


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"edge_platform": edge_platform}
