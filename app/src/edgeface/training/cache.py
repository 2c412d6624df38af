"""The encoding cache: analyses by photo content sha256, so a retrain analyses only new photos."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from edgeface.model import ENCODING_SIZE, atomic_write_bytes
from edgeface.training.detection import DetectionSettings
from edgeface.training.values import UNREADABLE, Analysis

CACHE_DIRNAME = ".edgeface-cache"


class EncodingCache:
    """Analyses by photo content sha256, one small JSON file each (never a pickle).

    Entries live under a folder named for the detection settings and library versions, so a
    change of either never reuses a stale encoding. A damaged entry counts as a miss.
    """

    def __init__(self, directory: Path | None, settings: DetectionSettings) -> None:
        self.directory = directory / settings.fingerprint() if directory is not None else None

    def get(self, sha256: str) -> Analysis | None:
        if self.directory is None:
            return None
        try:
            record = json.loads((self.directory / f"{sha256}.json").read_text(encoding="utf-8"))
            encoding = record["encoding"]
            if encoding is not None and len(encoding) != ENCODING_SIZE:
                return None
            return Analysis(
                faces=int(record["faces"]),
                encoding=None if encoding is None else tuple(float(value) for value in encoding),
                problem=record["problem"],
                detail=str(record["detail"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, sha256: str, analysis: Analysis) -> None:
        if self.directory is None or analysis.problem == UNREADABLE:
            return
        atomic_write_bytes(self.directory / f"{sha256}.json", json.dumps(asdict(analysis)).encode())


def default_cache_dir(output: Path) -> Path:
    """`<output dir>/.edgeface-cache`: next to the model, so retrains find it."""
    return output.resolve().parent / CACHE_DIRNAME
