"""The appliance on this machine, brought up the way a user does: `site.yml -i inventories/local`.

The podman runtime publishes the registry on 127.0.0.1:5000, RTMP on :1935 and the web app on
:8080 (inventories/local). These helpers run the user's playbooks, read the app's status and
take the whole thing down again.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from playbook import run_playbook
from servers import S3Server, get_json, wait_until

WEBAPP = "http://127.0.0.1:8080"
REGISTRY = "http://127.0.0.1:5000"
RTMP = "rtmp://127.0.0.1:1935/live/test"
KUBE_DIR = Path("/etc/edgeai-appliance/kube")
UNITS_DIR = Path("/etc/systemd/system/default.target.wants")
EDGEFACE = str(Path(sys.executable).parent / "edgeface")
PODS = ("registry-pod-0", "nginx-rtmp-pod-0", "webapp-pod-0")


def site(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_playbook("site.yml", "-i", "inventories/local", *args, check=check)


def retrain(
    photos: Path,
    s3: S3Server,
    *args: str,
    secret_key: str | None = None,
    check: bool = True,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    """playbooks/retrain.yml with the S3 credentials in the environment, as a user sets them."""
    return run_playbook(
        "playbooks/retrain.yml",
        "-i",
        "inventories/local",
        *args,
        extra_vars={"retrain_photos_dir": str(photos), "retrain_s3_endpoint_url": s3.url, **extra},
        env={"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": secret_key or s3.secret_key},
        check=check,
    )


def rollback(version: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_playbook(
        "playbooks/rollback.yml",
        "-i",
        "inventories/local",
        extra_vars={"model_version": version},
        check=check,
    )


def status() -> dict[str, Any]:
    result: dict[str, Any] = get_json(f"{WEBAPP}/api/status")
    return result


def model_version() -> str:
    return str(status()["model"]["version"])


def registry_tags(repository: str = "ai-for-edge/model") -> list[str]:
    try:
        tags = get_json(f"{REGISTRY}/v2/{repository}/tags/list").get("tags") or []
    except (urllib.error.URLError, ConnectionError):  # no repository yet, or the registry is down
        return []
    return sorted(tags)


def wait_for_names(names: set[str], timeout: float = 120) -> dict[str, Any]:
    """Wait until the stream's current names are exactly `names`; return the status."""
    return dict(wait_until(lambda: set(status()["names"]) == names and status(), timeout, f"names {names}"))


def page() -> str:
    with urllib.request.urlopen(f"{WEBAPP}/", timeout=10) as response:
        return str(response.read().decode())


def teardown() -> None:
    """Remove the pods, the registry's volume, the played kube files and their boot units."""
    for name in PODS:
        subprocess.run(["podman", "pod", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(["podman", "volume", "rm", "-f", "registry-storage"], capture_output=True, check=False)
    for kube_file in KUBE_DIR.glob("*.yaml"):
        kube_file.unlink()
    for unit in UNITS_DIR.glob("podman-kube@*edgeai*"):
        unit.unlink()
