"""Every base image a build pulls is pinned by digest, and images/base-images.env is the one place
the digests are kept: the Containerfiles' defaults repeat them exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PINNED = re.compile(r"^docker\.io/library/[a-z0-9._-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$")
# The one base that is not pulled from Docker Hub: NVIDIA's, chosen per device (--l4t-base).
UNPINNED_ON_PURPOSE = {"webapp-l4t"}


def pins(repo_root: Path) -> dict[str, str]:
    text = (repo_root / "images" / "base-images.env").read_text()
    return dict(re.findall(r"^([A-Z_]+)=(\S+)$", text, re.MULTILINE))


def test_base_images_env_pins_every_base_by_digest(repo_root: Path) -> None:
    assert set(pins(repo_root)) == {"DEBIAN_BASE", "BUSYBOX_BASE", "REGISTRY_UPSTREAM"}
    for name, ref in pins(repo_root).items():
        assert PINNED.match(ref), f"{name}={ref} is not NAME:TAG@sha256:DIGEST"


@pytest.mark.parametrize(
    "image", sorted(path.parent.name for path in Path(__file__).parents[2].glob("images/*/Containerfile"))
)
def test_containerfile_default_base_is_the_pinned_one(repo_root: Path, image: str) -> None:
    if image in UNPINNED_ON_PURPOSE:
        pytest.skip(f"{image}'s base is NVIDIA's, chosen per device")
    text = (repo_root / "images" / image / "Containerfile").read_text()
    (default,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", text, re.MULTILINE)
    assert default in pins(repo_root).values(), f"{image}: {default} is not a pin of base-images.env"
