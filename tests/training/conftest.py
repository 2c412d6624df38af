"""Fixtures for the model, recogniser and training tests: real photos, encoded once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def write_no_face_image(path: Path) -> None:
    """A smooth colour gradient with noise: decodes fine, holds no face."""
    import cv2

    rng = np.random.default_rng(3)
    ramp = np.linspace(0, 255, 320, dtype=np.float64)
    image = np.stack([np.tile(ramp, (240, 1))] * 3, axis=2) + rng.normal(0, 8, (240, 320, 3))
    cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8))


def write_two_face_image(path: Path, left: Path, right: Path) -> None:
    """Two portraits side by side, scaled to the same height."""
    import cv2

    first, second = cv2.imread(str(left)), cv2.imread(str(right))
    height = 600
    scaled = [cv2.resize(im, (round(im.shape[1] * height / im.shape[0]), height)) for im in (first, second)]
    cv2.imwrite(str(path), np.hstack(scaled))


@pytest.fixture(scope="session")
def photo_folder(sample_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both layouts and every kind of bad photo.

    Barack Obama.jpg + Barack Obama/obama2.jpg (one person, two photos), Joe Biden.jpg,
    Nobody.png (no face), Two People.jpg (two faces), Notes.jpg (text), Copy of Barack.jpg
    (the same bytes as Barack Obama.jpg).
    """
    import shutil

    folder = tmp_path_factory.mktemp("photos")
    shutil.copy(sample_photos / "obama.jpg", folder / "Barack Obama.jpg")
    (folder / "Barack Obama").mkdir()
    shutil.copy(sample_photos / "obama2.jpg", folder / "Barack Obama" / "obama2.jpg")
    shutil.copy(sample_photos / "biden.jpg", folder / "Joe Biden.jpg")
    write_no_face_image(folder / "Nobody.png")
    write_two_face_image(folder / "Two People.jpg", sample_photos / "obama2.jpg", sample_photos / "biden.jpg")
    (folder / "Notes.jpg").write_text("not a photo, just a name that looks like one\n")
    shutil.copy(sample_photos / "obama.jpg", folder / "Copy of Barack.jpg")
    return folder


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One encoding cache for the session: a photo's content is analysed once for all tests."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def trained(photo_folder: Path, shared_cache: Path) -> Any:
    """The folder trained once, cold, with two worker processes (a TrainingResult)."""
    from edgeface.training.build import train

    return train(photo_folder, cache_dir=shared_cache, jobs=2, version="2401011200")
