"""Fixtures shared by every test package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from photos import sample_photos_dir

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_photos() -> Path:
    """Directory of real face photos: obama.jpg, obama2.jpg, obama3.jpg, biden.jpg, …"""
    return sample_photos_dir()
