"""Fixtures shared by every test package, and the order the suites that share the appliance run in."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import local_appliance
from photos import sample_photos_dir

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parent

# The suites on the one appliance of a run go last, in this order: the deployment's own checks, the
# demo flow (which starts from the fresh appliance), the runtime and retrain checks, and last the
# suite that stops the pods and resets the machine. Each leaves the appliance serving.
# The demo flow runs after the appliance's own suites (which end serving the model they found,
# `initial`) and leaves its last model in service; the lifecycle suite resets everything last.
APPLIANCE_SUITES = (
    "appliance/test_site_from_the_installed_tarball.py",
    "appliance/",
    "e2e/",
    "lifecycle/",
)


def appliance_rank(item: pytest.Item) -> float:
    if "appliance" not in getattr(item, "fixturenames", ()):
        return 0
    path = item.path.resolve().relative_to(TESTS).as_posix()
    return 1 + next(
        (rank for rank, prefix in enumerate(APPLIANCE_SUITES) if path.startswith(prefix)),
        len(APPLIANCE_SUITES) - 1.5,  # an unlisted suite goes before the one that resets
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=appliance_rank)  # stable: each suite keeps its own order


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_photos() -> Path:
    """Directory of real face photos: obama.jpg, obama2.jpg, obama3.jpg, biden.jpg, …"""
    return sample_photos_dir()


@pytest.fixture(scope="session")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_appliance.Deployment]:
    """The appliance on this machine, deployed once per test run from the installed tarball
    (site.yml on the podman runtime, with its S3 store); removed at the end of the run."""
    yield local_appliance.deploy_from_the_tarball(tmp_path_factory.mktemp("galaxy-user"))
    local_appliance.teardown()
