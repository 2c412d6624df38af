"""Fixtures for the model, recogniser and training tests: real photos, encoded once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def sample_encodings(sample_photos: Path) -> dict[str, np.ndarray]:
    """128-d encoding of the single face in each sample photo, keyed by file stem."""
    import face_recognition
    from edgeface.recogniser import encode_faces
    from edgeface.values import Box

    encodings = {}
    for stem in ("obama", "obama2", "obama3", "biden"):
        rgb = face_recognition.load_image_file(sample_photos / f"{stem}.jpg")
        (location,) = face_recognition.face_locations(rgb)
        encodings[stem] = encode_faces(rgb, [Box(*location)])[0]
    return encodings
