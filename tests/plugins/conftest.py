"""The collection's plugin code, loaded by file path: the tests need no .collections link."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from collection_code import load_by_path
from playbook import run_playbook

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLLOUT_PATH = REPO_ROOT / "plugins" / "module_utils" / "rollout.py"
MODULE_PATH = REPO_ROOT / "plugins" / "modules" / "deployment_rollout.py"
RECORDED = Path(__file__).parent / "recorded"
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}


@pytest.fixture(scope="session")
def rollout() -> ModuleType:
    return load_by_path("edgeai_appliance_rollout", ROLLOUT_PATH)


@pytest.fixture(scope="session")
def recorded() -> Callable[[str], list[dict[str, Any]]]:
    """The snapshots of one recorded rollout: [{deployment, replicasets, pods, events, elapsed}, …]."""

    def load(name: str) -> list[dict[str, Any]]:
        snapshots: list[dict[str, Any]] = yaml.safe_load((RECORDED / f"{name}.yaml").read_text())["snapshots"]
        return snapshots

    return load


def run_module(tmp: Path, module: str, arguments: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    """One task of the collection's `module` on localhost, as Ansible runs it; its registered
    result (failed or not), with what the playbook printed under "output"."""
    result_file = tmp / "result.json"
    task = {"name": "Run the module", module: arguments, "register": "answer", "ignore_errors": True}
    save = {
        "ansible.builtin.copy": {"content": "{{ answer | to_json }}", "dest": str(result_file)},
        "check_mode": False,
    }
    playbook = tmp / "module.yml"
    play = {"hosts": "localhost", "gather_facts": False, "vars": LOCAL, "tasks": [task, save]}
    playbook.write_text(yaml.safe_dump([play]))
    run = run_playbook(str(playbook), "-i", "localhost,", *(["--check"] if check_mode else []))
    result: dict[str, Any] = json.loads(result_file.read_text())
    result["output"] = run.stdout + run.stderr
    return result
