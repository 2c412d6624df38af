"""Run the project's playbooks the way a user does, from the repository root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


CONTAINER_ENGINES = frozenset({"podman", "docker", "buildah", "skopeo"})


def path_without_container_engines(folder: Path) -> str:
    """A PATH like the playbooks' own without podman, docker, buildah or skopeo: a controller with
    no container engine (an execution environment of AAP). `folder` gets links to the rest."""
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for directory in ansible_env()["PATH"].split(os.pathsep):
        if not Path(directory).is_dir():
            continue
        for entry in Path(directory).iterdir():
            if entry.name not in seen and entry.name not in CONTAINER_ENGINES:
                seen.add(entry.name)
                (folder / entry.name).symlink_to(entry)
    return str(folder)


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(REPO_ROOT / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run_playbook(
    playbook: str,
    *args: str,
    extra_vars: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook PLAYBOOK ARGS… from the repo root; output captured as text.

    `env` adds environment variables (credentials, as a user exports them). With check=True a
    non-zero exit raises AssertionError carrying the playbook's output.
    """
    command: list[str] = [str(BIN / "ansible-playbook"), playbook, *args]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]  # JSON: values may hold spaces
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**ansible_env(), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}\n"
            f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
        )
    return result


def recap_counts(output: str) -> dict[str, int]:
    """Sum the PLAY RECAP counters (ok, changed, failed, ...) over every host."""
    totals: dict[str, int] = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and ":" in line and "=" in line:
            for field in line.split(":", 1)[1].split():
                name, _, value = field.partition("=")
                if value.isdigit():
                    totals[name] = totals.get(name, 0) + int(value)
    return totals
