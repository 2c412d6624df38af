"""The validation gate: may this model be published?

A model passes when it is not empty, every person in it is recognised on their own photos
(leave-one-out: a photo's own row is removed first, so a person with several photos must be
recognised from the others), no photo is taken for someone else, and no two different people
have encodings closer than the tolerance (the live recogniser would confuse them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edgeface.model import FaceModel
from edgeface.recogniser import DEFAULT_TOLERANCE, Recogniser
from edgeface.training.values import PhotoResult

SAME_PHOTO_DISTANCE = 1e-6
"""Rows closer than this to a photo's encoding are that photo (for models without photo hashes)."""


@dataclass
class ValidationReport:
    """Problems (each one reason to refuse the model) and the counts behind a pass."""

    problems: list[str] = field(default_factory=list)
    checked_photos: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def validate_model(
    model: FaceModel, photos: Sequence[PhotoResult], tolerance: float = DEFAULT_TOLERANCE
) -> ValidationReport:
    """Check `model` against analysed photos (the training set, or a held-out set)."""
    report = ValidationReport()
    if len(model) == 0:
        report.problems.append("the model is empty: it knows nobody")
        return report
    _check_metadata(model, report)
    _check_separation(model, tolerance, report)
    _check_own_photos(model, photos, tolerance, report)
    return report


def _check_metadata(model: FaceModel, report: ValidationReport) -> None:
    recorded = model.metadata.get("people")
    if isinstance(recorded, dict):
        counted = {name: model.names.count(name) for name in model.people}
        if {str(k): v for k, v in recorded.items()} != counted:
            report.problems.append(f"metadata lists people {recorded} but the rows hold {counted}")


def _check_separation(model: FaceModel, tolerance: float, report: ValidationReport) -> None:
    files = [photo.get("file", f"row {row}") for row, photo in enumerate(_row_photos(model))]
    distances = Recogniser(model, tolerance).distances(model.encodings)
    names = np.array(model.names)
    different = names[:, None] != names[None, :]
    close = np.argwhere(np.triu(different & (distances <= tolerance), k=1))
    for first, second in close:
        report.problems.append(
            f"{model.names[first]} ({files[first]}) and {model.names[second]} ({files[second]}) are "
            f"{distances[first, second]:.3f} apart, within the tolerance {tolerance}: they would be confused"
        )


def _check_own_photos(
    model: FaceModel, photos: Sequence[PhotoResult], tolerance: float, report: ValidationReport
) -> None:
    row_hashes = [photo.get("sha256") for photo in _row_photos(model)]
    usable: dict[str, int] = {}
    for result in photos:
        if result.encoding is None:
            report.notes.append(result.reason())
            continue
        usable[result.photo.name] = usable.get(result.photo.name, 0) + 1
        if result.photo.name not in model.people:
            continue
        report.checked_photos += 1
        problem = _leave_one_out(model, result, row_hashes, tolerance)
        if problem:
            report.problems.append(problem)
    for person in model.people:
        if person not in usable:
            report.problems.append(f"{person}: no usable photo to check that they are recognised")
    for person in sorted(set(usable) - set(model.people)):
        report.problems.append(f"{person}: has photos but is not in the model")


def _leave_one_out(
    model: FaceModel, result: PhotoResult, row_hashes: Sequence[str | None], tolerance: float
) -> str | None:
    """The reason `result`'s photo is not recognised as its person by the other rows, or None."""
    assert result.encoding is not None
    query = result.encoding[None, :]
    distances = np.linalg.norm(model.encodings - query, axis=1)
    own_rows = np.array(
        [
            h == result.sha256 if h is not None else d < SAME_PHOTO_DISTANCE
            for h, d in zip(row_hashes, distances, strict=True)
        ]
    )
    name = result.photo.name
    others = ~own_rows
    same_person_left = any(model.names[i] == name for i in np.flatnonzero(others))
    if not same_person_left:
        # The person's only photo: it is recognised by its own row unless someone is as close.
        others = others | own_rows
    nearest = int(np.flatnonzero(others)[np.argmin(distances[others])])
    found, distance = model.names[nearest], float(distances[nearest])
    label = result.photo.label
    if distance > tolerance:
        return f"{label}: {name} not recognised (nearest is {found} at {distance:.3f} > {tolerance})"
    if found != name:
        return f"{label}: {name} is taken for {found} (distance {distance:.3f})"
    return None


def _row_photos(model: FaceModel) -> list[dict[str, str]]:
    """The training photo behind each row, from the metadata ({} when it does not say)."""
    photos = model.metadata.get("photos")
    if isinstance(photos, list) and len(photos) == len(model):
        return [photo if isinstance(photo, dict) else {} for photo in photos]
    return [{} for _ in range(len(model))]


def format_report(report: ValidationReport) -> str:
    """One line per problem (and per skipped photo), then the verdict."""
    lines = [*report.notes, *(f"FAIL {problem}" for problem in report.problems)]
    verdict = "passed" if report.passed else f"refused ({len(report.problems)} problems)"
    lines.append(f"validation {verdict}: {report.checked_photos} photos checked")
    return "\n".join(lines)
