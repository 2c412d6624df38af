"""What training passes around: a photo, what its content yielded, its outcome in a run.

Skip reasons are categories the summary counts; each outcome also has a one-line detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Why a photo was skipped; the summary counts photos per category.
NO_FACE = "no face"
SEVERAL_FACES = "several faces"
NOT_AN_IMAGE = "not an image"
UNREADABLE = "unreadable"
DUPLICATE = "duplicate"


class TrainingError(ValueError):
    """The training input itself is unusable (no such folder, a broken metadata.yaml)."""


@dataclass(frozen=True)
class Photo:
    """One training photo: its file, the person it shows, and how messages name it."""

    path: Path
    name: str
    label: str


@dataclass(frozen=True)
class Analysis:
    """What one photo's content yielded: an encoding (exactly one face) or a skip reason."""

    faces: int
    encoding: tuple[float, ...] | None = None
    problem: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class PhotoResult:
    """One photo's outcome in a run. encoding: (128,) float64 when used."""

    photo: Photo
    sha256: str | None
    encoding: np.ndarray | None = None
    problem: str | None = None
    detail: str = ""
    cached: bool = False

    @property
    def used(self) -> bool:
        return self.encoding is not None

    def reason(self) -> str:
        """One line naming the file and why it was skipped."""
        return f"skipped {self.photo.label}: {self.detail or self.problem}"
