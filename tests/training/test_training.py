"""Training on real photos: layouts, per-photo reasons, names, the cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeface.model import load_model, save_model
from edgeface.recogniser import Recogniser
from edgeface.training import detection, values
from edgeface.training.build import TrainingResult, build_model, train
from edgeface.training.cache import EncodingCache
from edgeface.training.detection import DetectionSettings, analyse_file
from edgeface.training.hashing import file_sha256
from edgeface.training.photos import photos_source_from_env
from edgeface.values import UNKNOWN

from .photo_sets import photo_folder_of


def reasons(result: TrainingResult) -> dict[str, tuple[str | None, str]]:
    return {r.photo.label: (r.problem, r.reason()) for r in result.skipped}


def encode_photo(path: Path) -> np.ndarray:
    analysis = analyse_file(str(path), file_sha256(path), DetectionSettings())
    assert analysis.encoding is not None
    return np.array(analysis.encoding)


def test_each_bad_photo_is_skipped_with_a_reason_naming_it(trained: TrainingResult) -> None:
    skipped = reasons(trained)

    assert skipped == {
        "Nobody.png": (values.NO_FACE, "skipped Nobody.png: no face found"),
        "Two People.jpg": (values.SEVERAL_FACES, "skipped Two People.jpg: 2 faces (needs exactly one)"),
        "Notes.jpg": (values.NOT_AN_IMAGE, "skipped Notes.jpg: not an image (cannot decode it)"),
        "Copy of Barack.jpg": (
            values.DUPLICATE,
            "skipped Copy of Barack.jpg: duplicate of Barack Obama.jpg",
        ),
    }


def test_both_layouts_give_one_person_with_all_their_photos(trained: TrainingResult) -> None:
    model = trained.model
    assert model is not None

    assert model.people == ("Barack Obama", "Joe Biden")
    assert model.metadata["people"] == {"Barack Obama": 2, "Joe Biden": 1}
    assert model.encodings.shape == (3, 128)
    assert model.version == "2401011200"


def test_metadata_records_photo_hashes_libraries_and_settings(
    trained: TrainingResult, photo_folder: Path
) -> None:
    assert trained.model is not None
    meta = trained.model.metadata

    files = {photo["file"]: photo["sha256"] for photo in meta["photos"]}
    assert files["Joe Biden.jpg"] == file_sha256(photo_folder / "Joe Biden.jpg")
    assert set(files) == {"Barack Obama.jpg", "Barack Obama/obama2.jpg", "Joe Biden.jpg"}
    assert {"face_recognition", "numpy"} <= set(meta["libraries"])
    assert meta["detector"]["model"] == "hog"
    assert meta["encoder"]["jitters"] == 1
    assert meta["tolerance"] == 0.6
    assert meta["created"].endswith("Z")


def test_trained_model_recognises_another_photo_of_the_person(
    trained: TrainingResult, sample_photos: Path
) -> None:
    assert trained.model is not None

    (match,) = Recogniser(trained.model).identify(encode_photo(sample_photos / "obama3.jpg")[None, :])

    assert match.name == "Barack Obama"


def test_a_model_of_obama_alone_rejects_biden(trained: TrainingResult, photo_folder: Path) -> None:
    obama_only = build_model(
        [r for r in trained.results if r.photo.name == "Barack Obama"], DetectionSettings()
    )
    assert obama_only is not None and obama_only.people == ("Barack Obama",)

    (match,) = Recogniser(obama_only).identify(encode_photo(photo_folder / "Joe Biden.jpg")[None, :])

    assert match.name == UNKNOWN


def test_names_with_spaces_dots_and_unicode_survive_training_and_the_file(
    sample_photos: Path, shared_cache: Path, tmp_path: Path
) -> None:
    folder = photo_folder_of(
        tmp_path / "photos",
        {
            "Dr. Ana María.jpg": sample_photos / "biden.jpg",
            "Greg.jpg": sample_photos / "obama.jpg",  # the seed's rstrip('.jpg') made "Gre" of it
            "J.R.R. Tolkien/portrait.JPEG": sample_photos / "obama2.jpg",
        },
    )

    result = train(folder, cache_dir=shared_cache)
    assert result.model is not None
    save_model(result.model, tmp_path / "model.data")

    loaded = load_model(tmp_path / "model.data")
    assert loaded.people == ("Dr. Ana María", "Greg", "J.R.R. Tolkien")
    assert set(loaded.metadata["people"]) == {"Dr. Ana María", "Greg", "J.R.R. Tolkien"}


def test_a_cache_hit_encodes_nothing_and_a_new_photo_is_the_only_one_encoded(
    photo_folder: Path,
    shared_cache: Path,
    sample_photos: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real_encode = detection.encode_faces

    def counting_encode(rgb: np.ndarray, boxes: list[object], jitters: int = 1) -> np.ndarray:
        calls.append(len(boxes))
        return real_encode(rgb, boxes, jitters)  # type: ignore[arg-type]

    monkeypatch.setattr(detection, "encode_faces", counting_encode)
    folder = tmp_path / "photos"
    shutil.copytree(photo_folder, folder)

    again = train(folder, cache_dir=shared_cache, jobs=1)
    assert calls == []
    assert again.analysed == 0
    assert again.model is not None and again.model.people == ("Barack Obama", "Joe Biden")

    shutil.copy(sample_photos / "obama3.jpg", folder / "Barack Obama" / "obama3.jpg")
    grown = train(folder, cache_dir=shared_cache, jobs=1)
    assert calls == [1]
    assert grown.analysed == 1
    assert grown.model is not None and grown.model.metadata["people"]["Barack Obama"] == 3


def test_a_damaged_cache_entry_is_a_miss_not_a_crash(photo_folder: Path, tmp_path: Path) -> None:
    photo = photo_folder / "Notes.jpg"
    sha = file_sha256(photo)
    cache = EncodingCache(tmp_path, DetectionSettings())
    assert cache.directory is not None
    cache.directory.mkdir(parents=True)
    (cache.directory / f"{sha}.json").write_text("{ not json")

    assert cache.get(sha) is None


def test_the_seeds_metadata_yaml_is_read_and_a_missing_image_is_reported(
    sample_photos: Path, shared_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(sample_photos / "biden.jpg", tmp_path / "jb.jpg")
    yaml_file = tmp_path / "metadata.yaml"
    yaml_file.write_text(
        "---\nfaces:\n  - name: Joe Biden\n    image: jb.jpg\n  - name: Ghost\n    image: ghost.jpg\n"
    )
    monkeypatch.setenv("MODEL_TRAINING_YAML", str(yaml_file))

    result = train(photos_source_from_env(None), cache_dir=shared_cache)

    assert result.model is not None and result.model.people == ("Joe Biden",)
    assert reasons(result) == {
        "ghost.jpg": (values.UNREADABLE, "skipped ghost.jpg: unreadable (no such file)")
    }


def test_a_folder_without_usable_photos_gives_no_model(photo_folder: Path, tmp_path: Path) -> None:
    shutil.copy(photo_folder / "Notes.jpg", tmp_path / "Notes.jpg")
    (tmp_path / "readme.txt").write_text("ignored: not a photo name")

    result = train(tmp_path, cache_dir=None)

    assert result.model is None
    assert [r.photo.label for r in result.skipped] == ["Notes.jpg"]


def test_missing_photos_argument_is_an_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODEL_TRAINING_YAML", raising=False)

    with pytest.raises(values.TrainingError, match="MODEL_TRAINING_YAML"):
        photos_source_from_env(None)
