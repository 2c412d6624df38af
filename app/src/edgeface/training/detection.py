"""One photo → at most one face encoding: decoding, the detection policy, the encoding.

Detection policy (measured on the face_recognition sample photos, 626-2333 px tall, one core):
HOG with upsample 1 on the photo scaled so its longest side is at most `max_side` (1280 px:
0.3-0.5 s per photo instead of 0.3-1.3 s at full size; `max_side=0` keeps full resolution),
and, only when no face is found, one retry with upsample 2 (finds faces down to ~20 px at that
scale, ~4x the time, so it is paid only by photos that would otherwise be skipped). The encoding
is computed on the full-resolution photo with `jitters` re-samples (1; the seed's 100 cost 100x
for a marginal gain).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeface import __version__
from edgeface.recogniser import encode_faces
from edgeface.training.values import NO_FACE, NOT_AN_IMAGE, SEVERAL_FACES, UNREADABLE, Analysis
from edgeface.values import Box


@dataclass(frozen=True)
class DetectionSettings:
    """How faces are found and encoded; part of the cache key and of the model's metadata."""

    model: str = "hog"
    upsample: int = 1
    retry_upsample: int = 2
    max_side: int = 1280
    jitters: int = 1

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> DetectionSettings:
        """The settings a model was trained with (defaults for what it does not record)."""
        detector, encoder = metadata.get("detector") or {}, metadata.get("encoder") or {}
        known = {
            key: detector[key]
            for key in ("model", "upsample", "retry_upsample", "max_side")
            if key in detector
        }
        return cls(**known, jitters=int(encoder.get("jitters", 1)))

    def fingerprint(self) -> str:
        """Short digest of these settings and the library versions: a cache namespace."""
        record = json.dumps({**asdict(self), **library_versions()}, sort_keys=True)
        return hashlib.sha256(record.encode()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape an encoding (recorded in the model)."""
    versions = {"edgeface": __version__}
    for package in ("face_recognition", "face_recognition_models", "dlib", "dlib-bin", "numpy"):
        try:
            versions[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            continue
    return versions


def analyse_file(path: str, sha256: str, settings: DetectionSettings) -> Analysis:
    """Decode a photo, find its faces and encode the single one (runs in a worker process)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return Analysis(0, problem=UNREADABLE, detail=f"unreadable ({error.strerror or error})")
    if hashlib.sha256(data).hexdigest() != sha256:
        return Analysis(0, problem=UNREADABLE, detail="unreadable (file changed while training)")
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        return Analysis(0, problem=NOT_AN_IMAGE, detail="not an image (cannot decode it)")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    boxes = find_faces(rgb, settings)
    if not boxes:
        return Analysis(0, problem=NO_FACE, detail="no face found")
    if len(boxes) > 1:
        return Analysis(len(boxes), problem=SEVERAL_FACES, detail=f"{len(boxes)} faces (needs exactly one)")
    (encoding,) = encode_faces(rgb, boxes, jitters=settings.jitters)
    return Analysis(1, encoding=tuple(float(value) for value in encoding))


def find_faces(rgb: np.ndarray, settings: DetectionSettings) -> list[Box]:
    """Face boxes in full-resolution pixels, per the module's detection policy."""
    import face_recognition  # noqa: PLC0415 (heavy; workers forked after the parent loaded it)

    height, width = rgb.shape[:2]
    scale = 1.0
    if settings.max_side and max(height, width) > settings.max_side:
        scale = settings.max_side / max(height, width)
    small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    locations = face_recognition.face_locations(small, settings.upsample, settings.model)
    if not locations and settings.retry_upsample > settings.upsample:
        locations = face_recognition.face_locations(small, settings.retry_upsample, settings.model)
    return [
        Box(
            top=max(0, round(top / scale)),
            right=min(width, round(right / scale)),
            bottom=min(height, round(bottom / scale)),
            left=max(0, round(left / scale)),
        )
        for top, right, bottom, left in locations
    ]
