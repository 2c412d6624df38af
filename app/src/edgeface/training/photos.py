"""Where the training photos are: a folder of `Name.jpg` / `Name/*.jpg`, or the seed's metadata.yaml."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from edgeface.training.values import UNREADABLE, Photo, PhotoResult, TrainingError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
YAML_SUFFIXES = (".yaml", ".yml")


def photos_source_from_env(argument: str | None) -> Path:
    """The PHOTOS argument, else the seed's MODEL_TRAINING_YAML variable."""
    chosen = argument or os.environ.get("MODEL_TRAINING_YAML")
    if not chosen:
        raise TrainingError(
            "no photos given: pass PHOTOS (a folder or metadata.yaml) or set MODEL_TRAINING_YAML"
        )
    return Path(chosen)


def discover_photos(source: Path) -> tuple[list[Photo], list[PhotoResult]]:
    """Photos under `source` and the entries that could not even be located.

    source: a folder of `Name.jpg|.jpeg|.png` (stem = person, kept exactly), of `Name/` folders
    holding several photos of one person, a folder holding the seed's `metadata.yaml`, or such a
    YAML file (`faces: [{name, image}]`, image paths relative to the file). Hidden entries are
    ignored (the cache lives in `.edgeface-cache`).
    """
    if source.is_file() and source.suffix.lower() in YAML_SUFFIXES:
        return _photos_from_yaml(source)
    if not source.is_dir():
        raise TrainingError(f"{source}: not a folder of photos nor a metadata.yaml")
    for name in ("metadata.yaml", "metadata.yml"):
        if (source / name).is_file():
            return _photos_from_yaml(source / name)
    photos = []
    for entry in sorted(source.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            photos += [
                Photo(inner, entry.name, f"{entry.name}/{inner.name}")
                for inner in sorted(entry.iterdir())
                if _is_photo_name(inner)
            ]
        elif _is_photo_name(entry):
            photos.append(Photo(entry, entry.stem, entry.name))
    return photos, []


def _is_photo_name(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in PHOTO_SUFFIXES and not path.is_dir()


def _photos_from_yaml(path: Path) -> tuple[list[Photo], list[PhotoResult]]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise TrainingError(f"{path}: cannot read the training YAML ({error})") from error
    faces = document.get("faces") if isinstance(document, dict) else None
    if not isinstance(faces, list):
        raise TrainingError(f"{path}: expected `faces: [{{name, image}}, ...]`")
    photos, missing = [], []
    for index, entry in enumerate(faces):
        if not isinstance(entry, dict) or not str(entry.get("name", "")).strip() or not entry.get("image"):
            raise TrainingError(f"{path}: faces[{index}] needs a `name` and an `image`")
        image = path.parent / str(entry["image"])
        photo = Photo(image, str(entry["name"]), str(entry["image"]))
        if image.is_file():
            photos.append(photo)
        else:
            missing.append(PhotoResult(photo, None, problem=UNREADABLE, detail="unreadable (no such file)"))
    return photos, missing
