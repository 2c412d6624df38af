"""Roots dressed as the devices of the support matrix, and playbooks run into them through
Ansible's chroot connection (molecule/_shared/debian-root.sh: debootstrap once, cached tarball).
The chroot connection needs root privileges, as it does on the test machines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from playbook import run_playbook

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBIAN_ROOT_SCRIPT = REPO_ROOT / "molecule" / "_shared" / "debian-root.sh"
PULL_SECRET = '{"auths": {"registry.redhat.io": {"auth": "dGVzdDp0ZXN0"}}}'


def unpack_root(root: Path) -> None:
    subprocess.run([str(DEBIAN_ROOT_SCRIPT), "unpack", str(root)], check=True)


def remove_root(root: Path) -> None:
    subprocess.run([str(DEBIAN_ROOT_SCRIPT), "remove", str(root)], check=True)


def fresh_root(parent: Path, os_name: str = "rhel9", name: str = "root") -> Path:
    """A Debian root dressed as a device of the support matrix (MicroShift's RHEL 9 by default)."""
    root = parent / name
    unpack_root(root)
    subprocess.run([str(DEBIAN_ROOT_SCRIPT), "dress", str(root), os_name], check=True)
    return root


def chroot_host(root: Path, **host_vars: object) -> dict[str, object]:
    return {
        "ansible_connection": "community.general.chroot",
        "ansible_host": str(root),
        "ansible_python_interpreter": "/usr/bin/python3",
        **host_vars,
    }


def write_inventory(path: Path, hosts: dict[str, dict[str, object]], **edge_vars: object) -> Path:
    """An inventory of chroot hosts in group edge; edge_vars override the test defaults."""
    base: dict[str, object] = {
        "edge_profile_device_address": "192.0.2.20",
        "microshift_install_packages": False,
        "microshift_manage_firewall": False,
        "microshift_manage_service": False,
        "microshift_fetch_kubeconfig": False,
        "microshift_pull_secret": PULL_SECRET,
    }
    base.update(edge_vars)
    path.write_text(yaml.safe_dump({"edge": {"hosts": hosts, "vars": base}}))
    return path


def provision(inventory: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_playbook("playbooks/provision.yml", "-i", str(inventory), *args, check=check)


def json_report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The json callback's document (ANSIBLE_STDOUT_CALLBACK=ansible.builtin.json), printed last."""
    start = result.stdout.find("\n{\n") + 1 if not result.stdout.startswith("{") else 0
    assert result.stdout[start:].startswith("{"), result.stdout[-3000:] + result.stderr[-3000:]
    report, _ = json.JSONDecoder().raw_decode(result.stdout[start:])
    return dict(report)


def first_failures(report: dict[str, Any]) -> dict[str, str]:
    """Host name -> '<task name>: <message>' of the first task that failed on it."""
    failures: dict[str, str] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, outcome in task["hosts"].items():
                if outcome.get("failed") and host not in failures:
                    failures[host] = f"{task['task']['name']}: {outcome.get('msg', outcome)}"
    return failures
