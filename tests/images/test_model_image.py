"""The model image: model.data on a static busybox, copied into a mounted directory, checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

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
