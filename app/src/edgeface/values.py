"""Small value types the pipeline stages pass to each other (no stage shares globals)."""

from __future__ import annotations

from dataclasses import dataclass

UNKNOWN = "Unknown"
"""The name given to a face the model does not know, everywhere: page, JSON, metrics."""


@dataclass(frozen=True, slots=True)
class Box:
    """A face's bounding box in pixels of the full-size frame (face_recognition's order)."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def as_css(self) -> tuple[int, int, int, int]:
        """(top, right, bottom, left), the order face_recognition uses."""
        return (self.top, self.right, self.bottom, self.left)


@dataclass(frozen=True, slots=True)
class Match:
    """Who a face encoding is: a known name and its distance, or UNKNOWN.

    `distance` is the Euclidean distance to the nearest known encoding (lower is closer);
    None when the model is empty. A name voted over several attempts (edgeface.naming) carries
    the size-weighted mean distance instead, the number of attempts behind it, and `score`:
    1 - that distance, the similarity the label rests on (None when nothing was encoded).
    """

    name: str
    distance: float | None
    attempts: int = 1

    @property
    def score(self) -> float | None:
        return None if self.distance is None else max(0.0, 1.0 - self.distance)

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN


@dataclass(frozen=True, slots=True)
class Detection:
    """A face found in a frame, and who it is; `track` is the face's track id on the device (None
    for a face of an uploaded picture)."""

    box: Box
    match: Match
    track: int | None = None
