"""The systemd_escape filter agrees with systemd's own systemd-escape."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

FILTER = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "systemd_escape.py"


def load_filter():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("systemd_escape_filter", FILTER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.systemd_escape


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape is not installed")
@pytest.mark.parametrize(
    "value",
    ["/etc/edgeai-appliance/kube/webapp.yaml", "/srv/kube files/nginx-rtmp.yaml", ".hidden/ü-x.yaml"],
)
def test_the_filter_escapes_as_systemd_does(value: str) -> None:
    expected = subprocess.run(["systemd-escape", value], capture_output=True, text=True, check=True).stdout
    assert load_filter()(value) == expected.strip()
