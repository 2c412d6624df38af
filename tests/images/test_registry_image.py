"""The offline registry image (Debian's docker-registry): answers /v2/, accepts a push, lists it,
and keeps it in its volume across a restart."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from servers import free_port, wait_for_port

from .conftest import RunContainer, image_config

pytestmark = pytest.mark.slow


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return json.loads(response.read())


def start_registry(run_container: RunContainer, image: str, storage: Path) -> int:
    port = free_port()
    run_container(image, options=["-p", f"127.0.0.1:{port}:5000", "-v", f"{storage}:/var/lib/registry"])
    wait_for_port(port, timeout=20)
    return port


def test_registry_listens_on_5000_as_a_non_root_user_with_a_storage_volume(
    built_images: dict[str, str],
) -> None:
    config = image_config(built_images["registry"])
    assert config["User"] == "10001"
    assert "5000/tcp" in config["ExposedPorts"]
    assert "/var/lib/registry" in config["Volumes"]


def test_registry_accepts_a_push_lists_it_and_keeps_it_in_its_volume(
    built_images: dict[str, str], run_container: RunContainer, tmp_path: Path
) -> None:
    storage = tmp_path / "registry"
    storage.mkdir()
    storage.chmod(0o777)
    port = start_registry(run_container, built_images["registry"], storage)
    assert get_json(f"http://127.0.0.1:{port}/v2/") == {}

    subprocess.run(
        [
            *("skopeo", "copy", "--quiet", "--dest-tls-verify=false"),
            f"containers-storage:{built_images['model']}",
            f"docker://127.0.0.1:{port}/ai-for-edge/model:test-images",
        ],
        check=True,
        timeout=120,
    )
    assert get_json(f"http://127.0.0.1:{port}/v2/_catalog") == {"repositories": ["ai-for-edge/model"]}
    assert get_json(f"http://127.0.0.1:{port}/v2/ai-for-edge/model/tags/list")["tags"] == ["test-images"]

    again = start_registry(run_container, built_images["registry"], storage)
    assert get_json(f"http://127.0.0.1:{again}/v2/_catalog") == {"repositories": ["ai-for-edge/model"]}
