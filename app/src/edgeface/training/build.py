"""The model of a run's usable photos, and `train`: photos → analyses (cache first) → model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeface.model import FaceModel, new_version, utc_timestamp
from edgeface.recogniser import DEFAULT_TOLERANCE
from edgeface.training.cache import EncodingCache
from edgeface.training.detection import DetectionSettings, library_versions
from edgeface.training.photos import discover_photos
from edgeface.training.pool import analyse_photos
from edgeface.training.values import PhotoResult


@dataclass
class TrainingResult:
    """A run's outcome: the model (None when no photo was usable) and every photo's result."""

    model: FaceModel | None
    results: list[PhotoResult]
    analysed: int = 0
    people: Counter[str] = field(default_factory=Counter)

    @property
    def skipped(self) -> list[PhotoResult]:
        return [result for result in self.results if not result.used]


def build_model(
    results: Sequence[PhotoResult],
    settings: DetectionSettings,
    tolerance: float = DEFAULT_TOLERANCE,
    version: str | None = None,
) -> FaceModel | None:
    """The model of the used photos (rows sorted by person, then file), or None if there is none."""
    used = sorted((r for r in results if r.used), key=lambda r: (r.photo.name, r.photo.label))
    if not used:
        return None
    people = Counter(result.photo.name for result in used)
    metadata: dict[str, Any] = {
        "version": version or new_version(),
        "created": utc_timestamp(),
        "people": dict(sorted(people.items())),
        "photos": [{"file": r.photo.label, "name": r.photo.name, "sha256": r.sha256} for r in used],
        "skipped": [{"file": r.photo.label, "reason": r.detail or r.problem} for r in results if not r.used],
        "libraries": library_versions(),
        "detector": {
            "model": settings.model,
            "upsample": settings.upsample,
            "retry_upsample": settings.retry_upsample,
            "max_side": settings.max_side,
        },
        "encoder": {"jitters": settings.jitters, "landmarks": "5-point"},
        "tolerance": tolerance,
    }
    encodings = np.stack([result.encoding for result in used if result.encoding is not None])
    return FaceModel(encodings, tuple(r.photo.name for r in used), metadata)


def train(
    source: Path,
    *,
    settings: DetectionSettings | None = None,
    cache_dir: Path | None = None,
    jobs: int = 1,
    tolerance: float = DEFAULT_TOLERANCE,
    version: str | None = None,
    on_result: Callable[[PhotoResult], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> TrainingResult:
    """Discover, analyse (cache first) and build; writes nothing but cache entries."""
    chosen = settings or DetectionSettings()
    photos, missing = discover_photos(source)
    if on_total is not None:
        on_total(len(photos) + len(missing))
    for result in missing:
        if on_result is not None:
            on_result(result)
    analysed, fresh = analyse_photos(photos, chosen, EncodingCache(cache_dir, chosen), jobs, on_result)
    results = missing + analysed
    model = build_model(results, chosen, tolerance, version)
    people = Counter(result.photo.name for result in results if result.used)
    return TrainingResult(model, results, fresh, people)
