"""Recognition stage: face encodings → names, by distance to the model's known encodings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeface.model import ENCODING_SIZE, FaceModel
from edgeface.values import UNKNOWN, Box, Match

DEFAULT_TOLERANCE = 0.6
"""face_recognition's default: distances at or below it are the same person."""
MAX_TOLERANCE = 1.5
FROM_MODEL, FROM_ENVIRONMENT, FROM_DEFAULT = "model", "FACE_TOLERANCE", "default"
"""Where the tolerance in use came from (`choose_tolerance`)."""


def model_tolerance(model: FaceModel | None) -> float | None:
    """The tolerance recorded in the model at training (the one the validation gate checked),
    or None when there is no model or it records none usable."""
    recorded = None if model is None else model.metadata.get("tolerance")
    if isinstance(recorded, bool) or not isinstance(recorded, int | float):
        return None
    return float(recorded) if 0.0 < recorded <= MAX_TOLERANCE else None


def choose_tolerance(configured: float | None, model: FaceModel | None) -> tuple[float, str]:
    """The tolerance to name faces with and where it came from: FACE_TOLERANCE when set (it
    overrides), else the model's own, else DEFAULT_TOLERANCE."""
    if configured is not None:
        return configured, FROM_ENVIRONMENT
    recorded = model_tolerance(model)
    if recorded is not None:
        return recorded, FROM_MODEL
    return DEFAULT_TOLERANCE, FROM_DEFAULT


def encode_faces(
    rgb: np.ndarray, boxes: Sequence[Box], jitters: int = 1, landmarks: str = "small"
) -> np.ndarray:
    """128-d encodings of the faces at `boxes` in `rgb`.

    rgb: HxWx3 uint8, RGB order (convert OpenCV's BGR first). boxes: full-image pixels.
    jitters: re-samples per face (each one costs a full encoding; 1 is the live default).
    landmarks: the face's alignment before encoding, "small" (5 points, the default) or "large"
    (68 points: a second view of the same face, as fast).
    Returns (len(boxes), 128) float64, in the order of `boxes`.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    if jitters < 1:
        raise ValueError(f"jitters must be at least 1, got {jitters}")
    if not boxes:
        return np.empty((0, ENCODING_SIZE), dtype=np.float64)
    import face_recognition  # noqa: PLC0415 (heavy: dlib + models load only when a face is encoded)

    rows = face_recognition.face_encodings(
        np.ascontiguousarray(rgb),
        known_face_locations=[box.as_css() for box in boxes],
        num_jitters=jitters,
        model=landmarks,
    )
    return np.asarray(rows, dtype=np.float64).reshape(len(boxes), ENCODING_SIZE)


class Recogniser:
    """Names faces with the nearest known encoding within `tolerance` (Euclidean distance)."""

    def __init__(self, model: FaceModel | None, tolerance: float = DEFAULT_TOLERANCE) -> None:
        if not tolerance > 0.0:  # also refuses NaN
            raise ValueError(f"tolerance must be positive, got {tolerance}")
        self.model = model
        self.tolerance = tolerance

    def distances(self, encodings: np.ndarray) -> np.ndarray:
        """(M, N) Euclidean distances from each of M encodings to each of the model's N."""
        queries = _as_encodings(encodings)
        known = self.model.encodings if self.model is not None else np.empty((0, ENCODING_SIZE))
        return np.asarray(np.linalg.norm(queries[:, None, :] - known[None, :, :], axis=2))

    def identify(self, encodings: np.ndarray) -> list[Match]:
        """One Match per row of `encodings` (M, 128): the nearest known name, or UNKNOWN.

        An empty or missing model names nobody (distance None).
        """
        queries = _as_encodings(encodings)
        if self.model is None or len(self.model) == 0:
            return [Match(UNKNOWN, None) for _ in range(len(queries))]
        distances = self.distances(queries)
        nearest = np.argmin(distances, axis=1)
        matches = []
        for row, index in enumerate(nearest):
            distance = float(distances[row, index])
            name = self.model.names[index] if distance <= self.tolerance else UNKNOWN
            matches.append(Match(name, distance))
        return matches

    def candidates(self, encodings: np.ndarray, count: int = 3) -> list[dict[str, float]]:
        """Per row of `encodings` (M, 128): the `count` nearest people, name -> distance to
        their nearest encoding (what edgeface.naming votes with); empty without a model."""
        queries = _as_encodings(encodings)
        if self.model is None or len(self.model) == 0:
            return [{} for _ in range(len(queries))]
        distances = self.distances(queries)
        rows = []
        for row in distances:
            nearest: dict[str, float] = {}
            for index in np.argsort(row):
                name = self.model.names[index]
                if name not in nearest:
                    nearest[name] = float(row[index])
                    if len(nearest) == count:
                        break
            rows.append(nearest)
        return rows


def _as_encodings(encodings: np.ndarray) -> np.ndarray:
    array = np.asarray(encodings, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != ENCODING_SIZE:
        if array.size == 0:
            return np.empty((0, ENCODING_SIZE), dtype=np.float64)
        raise ValueError(f"expected (M, {ENCODING_SIZE}) encodings, got shape {array.shape}")
    return array
