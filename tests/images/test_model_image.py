"""The model image: model.data on a static busybox, copied into a mounted directory, checked."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from collection_code import module_utils
from servers import Registry, SiteCredentials

from .conftest import MODEL_VERSION, image_config, image_size, podman

pytestmark = pytest.mark.slow


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_model_image_labels_name_the_version_and_the_files_sha256(
    built_images: dict[str, str], model_file: Path
) -> None:
    labels = image_config(built_images["model"])["Labels"]
    assert labels["io.edgeai.model.version"] == MODEL_VERSION
    assert labels["org.opencontainers.image.version"] == MODEL_VERSION
    assert labels["io.edgeai.model.sha256"] == sha256(model_file)


def test_model_image_copies_model_data_into_a_mounted_directory(
    built_images: dict[str, str], model_file: Path, tmp_path: Path
) -> None:
    target = tmp_path / "models"
    target.mkdir()
    target.chmod(0o777)  # the image runs as nobody (65534), as an emptyDir allows
    result = podman(
        "run", "--rm", "--network", "none", "-v", f"{target}:/model", built_images["model"], "/model"
    )
    assert sha256(target / "model.data") == sha256(model_file)
    assert sorted(path.name for path in target.iterdir()) == ["model.data"]
    assert MODEL_VERSION in result.stdout


def test_model_image_target_defaults_to_model_target_dir(
    built_images: dict[str, str], model_file: Path, tmp_path: Path
) -> None:
    tmp_path.chmod(0o777)
    podman("run", "--rm", "--network", "none", "-v", f"{tmp_path}:/models", built_images["model"])
    assert sha256(tmp_path / "model.data") == sha256(model_file)


def test_model_image_names_a_missing_target_directory(built_images: dict[str, str]) -> None:
    result = podman("run", "--rm", "--network", "none", built_images["model"], "/nowhere", check=False)
    assert result.returncode == 2
    assert "/nowhere" in result.stderr


def test_model_image_adds_at_most_5_mb_over_its_base(built_images: dict[str, str], model_file: Path) -> None:
    added = image_size(built_images["model"]) - image_size(built_images["busybox"])
    assert added <= 5 * 1024 * 1024
    assert image_size(built_images["busybox"]) < 5 * 1024 * 1024
    assert added >= model_file.stat().st_size


def test_a_model_pushed_without_podman_on_a_podman_built_template_runs_and_copies_its_model(
    repo_root: Path, built_images: dict[str, str], tmp_path: Path
) -> None:
    """The model_image module's image, made from the Containerfile's image as its template: podman
    pulls it from a TLS registry with logins and its copy-model checks the new model's sha256."""
    site = SiteCredentials()
    try:
        with Registry(site=site) as registry:
            auth = tmp_path / "auth.json"
            auth.write_text(
                json.dumps({"auths": {registry.host: {"auth": site.headers()["Authorization"].split()[1]}}})
            )
            push = subprocess.run(
                [
                    str(repo_root / "scripts" / "push-images.sh"),
                    "--registry",
                    f"{registry.host}/ai-for-edge",
                    "--authfile",
                    str(auth),
                    "--cert-dir",
                    str(site.ca_file.parent),
                    f"{built_images['model']}=model:initial",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert push.returncode == 0, push.stderr
            model_image = module_utils("model_image")
            api = model_image.Registry(
                url=f"https://{registry.host}",
                username=site.USER,
                password=site.password,
                ca_path=str(site.ca_file),
            )
            model = os.urandom(4096)
            result = model_image.push_model_image(api, "ai-for-edge/model", "pushed-by-api", model)
            ref = f"{registry.host}/ai-for-edge/model@{result.digest}"
            podman("pull", "--cert-dir", str(site.ca_file.parent), "--authfile", str(auth), ref)
            target = tmp_path / "models"
            target.mkdir()
            target.chmod(0o777)
            ran = podman("run", "--rm", "--network", "none", "-v", f"{target}:/model", ref, "/model")
            assert (target / "model.data").read_bytes() == model
            assert "pushed-by-api" in ran.stdout and hashlib.sha256(model).hexdigest() in ran.stdout
            assert image_config(ref)["Labels"]["io.edgeai.model.version"] == "pushed-by-api"
            podman("rmi", ref, check=False)
    finally:
        site.remove()
