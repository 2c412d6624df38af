"""The end-to-end demo flow reuses the test helpers of tests/ (servers, photos, playbooks)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from photos import sample_photos_dir


@pytest.fixture(scope="session")
def sample_photos() -> Path:
    return sample_photos_dir()
