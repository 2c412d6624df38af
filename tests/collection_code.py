"""The collection's plugin code loaded by file path: tests need no ansible_collections link."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_by_path(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def module_utils(name: str) -> ModuleType:
    """plugins/module_utils/NAME.py."""
    return load_by_path(f"edgeai_appliance_{name}", REPO_ROOT / "plugins" / "module_utils" / f"{name}.py")
