"""Fixtures for the image tests: every image (but webapp-l4t) built once, offline, and containers
run on 127.0.0.1 with random free ports, removed afterwards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

# The product's prefix (what the workload roles run); another one keeps a second checkout's image
# tests on the same machine from retagging the images a first one is running.
PREFIX = os.environ.get("EDGEAI_TEST_IMAGES_PREFIX", "localhost/ai-for-edge")
MODEL_VERSION = "test-images"
PEOPLE = {"obama.jpg": "Barack Obama", "biden.jpg": "Joe Biden"}
RunContainer = Callable[..., str]
"""`run_container(image, *command, options=[...])` -> the started container's name."""
BUILT_LINE = re.compile(r"^==> (?P<ref>\S+): (?P<state>built|unchanged)", re.MULTILINE)


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run podman; on failure the error names the command and shows its stderr."""
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def image_config(ref: str) -> dict[str, Any]:
    """The `Config` record of an image (User, Entrypoint, Cmd, Env, Labels, ExposedPorts, ...)."""
    (record,) = json.loads(podman("image", "inspect", ref).stdout)
    config: dict[str, Any] = record["Config"]
    return config


def image_size(ref: str) -> int:
    """Bytes of an image, all layers."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", ref).stdout)


def build_images(repo_root: Path, *args: str, timeout: float = 1800) -> str:
    """Runs scripts/build-images.sh ARGS; returns its output, a line "==> REF: built|unchanged ID"
    per image (a failure shows the ends of both streams)."""
    result = subprocess.run(
        [str(repo_root / "scripts" / "build-images.sh"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"build-images.sh failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


@pytest.fixture(scope="session")
def model_file(sample_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model.data: one photo each of Barack Obama and Joe Biden."""
    import face_recognition
    import numpy as np

    from edgeface.model import FaceModel, save_model
    from edgeface.recogniser import encode_faces
    from edgeface.values import Box

    encodings = []
    for photo in PEOPLE:
        rgb = face_recognition.load_image_file(sample_photos / photo)
        (location,) = face_recognition.face_locations(rgb)
        encodings.append(encode_faces(rgb, [Box(*location)])[0])
    path = tmp_path_factory.mktemp("model") / "model.data"
    model = FaceModel(np.array(encodings), tuple(PEOPLE.values()), {"version": MODEL_VERSION})
    save_model(model, path)
    return path


@pytest.fixture(scope="session")
def built_images(repo_root: Path, model_file: Path) -> Iterator[dict[str, str]]:
    """Builds webapp, nginx-rtmp, registry, busybox and model with --offline-base (cached layers
    make a second run quick); yields {image name: reference}. The product tags stay (they are
    what the workload roles run); the test model's tag is removed."""
    stdout = build_images(
        repo_root,
        *("--offline-base", "--prefix", PREFIX),
        *("--model-file", str(model_file), "--model-version", MODEL_VERSION),
        *("webapp", "nginx-rtmp", "registry", "model"),
    )
    refs = {
        match["ref"].rsplit("/", 1)[1].split(":")[0]: match["ref"] for match in BUILT_LINE.finditer(stdout)
    }
    assert set(refs) == {"webapp", "nginx-rtmp", "registry", "busybox", "model"}, stdout
    yield refs
    podman("rmi", refs["model"], check=False)


@pytest.fixture
def run_container() -> Iterator[RunContainer]:
    """Starts detached containers (`podman run -d --name <unique> ARGS... IMAGE COMMAND...`) and
    removes each at the end of the test; returns the container's name."""
    names: list[str] = []

    def start(image: str, *command: str, options: Sequence[str] = ()) -> str:
        name = f"edgeai-test-{uuid.uuid4().hex[:10]}"
        names.append(name)
        podman("run", "-d", "--name", name, *options, image, *command)
        return name

    yield start
    for name in names:
        podman("rm", "-f", "-t", "2", name, check=False)
