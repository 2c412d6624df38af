"""The images role builds through scripts/build-images.sh, reports honestly and is idempotent."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from playbook import recap_counts, run_playbook

from .conftest import podman

pytestmark = pytest.mark.slow

PLAYBOOK = "tests/images/build_images.yml"
ROLE_PREFIX = "localhost/edgeai-role-test"


@pytest.fixture
def role_tags(built_images: dict[str, str]) -> Iterator[str]:
    """The role's test prefix; its tags are removed afterwards (the cached layers stay)."""
    yield ROLE_PREFIX
    for name in ("nginx-rtmp", "busybox"):
        podman("rmi", f"{ROLE_PREFIX}/{name}:role", check=False)


def test_images_role_builds_offline_then_changes_nothing(role_tags: str) -> None:
    extra = json.dumps(
        {
            "images_offline_base": True,
            "images_prefix": role_tags,
            "images_tag": "role",
            "images_build": ["nginx-rtmp", "busybox"],
        }
    )
    first = run_playbook(PLAYBOOK, "-e", extra)
    assert recap_counts(first.stdout)["changed"] == 1, first.stdout
    assert podman("image", "exists", f"{role_tags}/nginx-rtmp:role", check=False).returncode == 0
    second = run_playbook(PLAYBOOK, "-e", extra)
    assert recap_counts(second.stdout)["changed"] == 0, second.stdout
    assert "unchanged" in second.stdout


def test_images_role_refuses_an_unknown_image_by_name() -> None:
    result = run_playbook(PLAYBOOK, "-e", json.dumps({"images_build": ["webapp", "frontend"]}), check=False)
    assert result.returncode != 0
    assert "images_build" in result.stdout
