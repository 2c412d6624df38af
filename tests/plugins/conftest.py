"""The collection's plugin code, loaded by file path: the tests need no .collections link."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLLOUT_PATH = REPO_ROOT / "plugins" / "module_utils" / "rollout.py"
MODULE_PATH = REPO_ROOT / "plugins" / "modules" / "deployment_rollout.py"
RECORDED = Path(__file__).parent / "recorded"


def load_by_path(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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
