"""site.yml on the podman runtime: registry, nginx-rtmp and the web app for real, then idempotent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

import local_appliance
from playbook import recap_counts
from servers import get_json, manifest_digest

pytestmark = pytest.mark.slow


def test_site_brings_up_the_registry_the_rtmp_server_and_the_web_app(deployed: str, stream: Path) -> None:
    assert "Publish RTMP to: rtmp://" in deployed
    assert recap_counts(deployed)["failed"] == 0
    assert get_json(f"{local_appliance.REGISTRY}/v2/") == {}
    # The initial model is the empty one, pulled from the device's registry.
    assert local_appliance.registry_tags() == ["initial"]
    status = local_appliance.wait_for_names({"Unknown"})
    assert status["model"]["version"] == "initial"
    assert status["source"]["state"] == "live"
    assert status["source"]["input_fps"] > 0
    assert "<img" in local_appliance.page()


def test_a_second_run_changes_nothing(deployed: str) -> None:
    again = local_appliance.site()
    counts = recap_counts(again.stdout)
    assert counts["changed"] == 0, again.stdout[-4000:]
    assert counts["failed"] == 0


def test_the_played_kube_files_pass_the_kubernetes_schemas(deployed: str) -> None:
    files = sorted(local_appliance.KUBE_DIR.glob("*.yaml"))
    assert [path.name for path in files] == ["nginx-rtmp.yaml", "registry.yaml", "webapp.yaml"]
    for path in files:
        for obj in yaml.safe_load_all(path.read_text()):
            if obj:
                kubernetes_validate.validate(obj, "1.26", strict=True)


def test_the_pods_run_what_the_device_registry_serves_by_digest(deployed: str) -> None:
    """The path MicroShift takes: pushed to the device's registry, pulled from it by digest."""
    images = {
        name: json.loads(podman("inspect", f"{name}-pod-0-{name}").stdout)[0]["ImageName"]
        for name in ("nginx-rtmp", "webapp")
    }
    for name, image in images.items():
        repository, _, digest = image.partition("@")
        assert repository == f"127.0.0.1:5000/ai-for-edge/{name}", image
        served = manifest_digest("127.0.0.1:5000", f"ai-for-edge/{name}", "0.1.0")
        assert digest == served, f"{name} runs {digest}, the registry serves {served}"
    # The registry itself runs from the side-loaded image: it cannot pull itself.
    registry = json.loads(podman("inspect", "registry-pod-0-registry").stdout)[0]["ImageName"]
    assert registry == "localhost/ai-for-edge/amd64/registry:0.1.0"


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=True)
