"""The model file: round trip, and refusal of everything that is not an intact edgeface model."""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeface.model import FaceModel, ModelError, load_model, save_model

AWKWARD_NAMES = ("Dr. Ana María", "Greg", "José O'Brien Jr.", "李小龙", "Zoë  two spaces", "a.jpg.jpg")


def make_model(names: tuple[str, ...] = AWKWARD_NAMES) -> FaceModel:
    rng = np.random.default_rng(7)
    return FaceModel(
        encodings=rng.normal(0.0, 0.1, size=(len(names), 128)),
        names=names,
        metadata={"version": "2405011230", "people": {name: 1 for name in names}},
    )


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key].copy() for key in archive.files}


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Rewrite the archive as a sound zip (fresh CRCs), whatever the arrays now hold."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


class FileCreatingPayload:
    """Unpickling this object creates `marker` — what a malicious model.data would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_round_trip_keeps_names_encodings_and_metadata_exactly(tmp_path: Path) -> None:
    model = make_model()
    path = tmp_path / "model.data"

    file_sha = save_model(model, path)
    loaded = load_model(path)

    assert file_sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.names == AWKWARD_NAMES
    np.testing.assert_array_equal(loaded.encodings, model.encodings)
    assert loaded.encodings.dtype == np.float64
    assert loaded.version == "2405011230"
    assert loaded.people == tuple(sorted(AWKWARD_NAMES))
    assert loaded.metadata["people"]["Dr. Ana María"] == 1
    assert loaded.metadata["format"] == "edgeface-model"


def test_saved_file_is_a_plain_npz_without_pickles(tmp_path: Path) -> None:
    path = tmp_path / "model.data"
    save_model(make_model(), path)

    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["encodings", "metadata", "names", "sha256"]
        assert archive["names"].dtype.kind == "U"


def test_empty_model_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "model.data"
    save_model(FaceModel(np.empty((0, 128)), (), {"version": "x"}), path)

    assert len(load_model(path)) == 0


def test_save_replaces_atomically_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "model.data"
    save_model(make_model(("Old",)), path)
    save_model(make_model(("New",)), path)

    assert load_model(path).names == ("New",)
    assert [p.name for p in tmp_path.iterdir()] == ["model.data"]


def test_a_crafted_pickle_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.data"
    path.write_bytes(pickle.dumps({"encodings": [], "names": [], "x": FileCreatingPayload(marker)}))

    with pytest.raises(ModelError, match="pickle") as raised:
        load_model(path)

    assert str(path) in str(raised.value)
    assert not marker.exists()


def test_an_npz_hiding_a_pickled_object_array_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.data"
    payload = np.array([FileCreatingPayload(marker)], dtype=object)
    with path.open("wb") as handle:
        np.savez(handle, encodings=np.zeros((1, 128)), names=payload, metadata=payload, sha256=payload)

    with pytest.raises(ModelError, match=str(path)):
        load_model(path)

    assert not marker.exists()


def test_a_flipped_byte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.data"
    save_model(make_model(), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(ModelError, match=str(path)):
        load_model(path)


def test_altered_content_in_a_valid_archive_fails_the_sha256(tmp_path: Path) -> None:
    """Rewrite the zip with one encoding changed: the container is sound, the digest is not."""
    path = tmp_path / "model.data"
    save_model(make_model(), path)
    arrays = read_arrays(path)
    arrays["encodings"][0, 0] += 1e-9
    write_arrays(path, arrays)

    with pytest.raises(ModelError, match="sha256 mismatch"):
        load_model(path)


def test_a_renamed_person_fails_the_sha256(tmp_path: Path) -> None:
    path = tmp_path / "model.data"
    save_model(make_model(), path)
    arrays = read_arrays(path)
    arrays["names"][1] = "Mallory"
    write_arrays(path, arrays)

    with pytest.raises(ModelError, match="sha256 mismatch"):
        load_model(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"name,encoding\nGreg,0.1\n", "not an edgeface model"),
        (b"PK\x03\x04 truncated", "damaged or truncated"),
    ],
)
def test_files_that_are_not_models_are_refused_with_the_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "model.data"
    path.write_bytes(content)

    with pytest.raises(ModelError, match=reason) as raised:
        load_model(path)

    assert str(path) in str(raised.value)


def test_a_truncated_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.data"
    save_model(make_model(), path)
    path.write_bytes(path.read_bytes()[:-200])

    with pytest.raises(ModelError, match="damaged or truncated"):
        load_model(path)


def test_a_zip_of_something_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.data"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")

    with pytest.raises(ModelError, match="missing encodings"):
        load_model(path)


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "model.data"

    with pytest.raises(ModelError, match="cannot read") as raised:
        load_model(path)

    assert str(path) in str(raised.value)


def test_model_rejects_mismatched_names_and_blank_names() -> None:
    with pytest.raises(ValueError, match="2 encodings but 1 names"):
        FaceModel(np.zeros((2, 128)), ("A",), {})
    with pytest.raises(ValueError, match="invalid person name"):
        FaceModel(np.zeros((1, 128)), ("  ",), {})


def test_model_encodings_are_read_only() -> None:
    model = make_model()

    with pytest.raises(ValueError, match="read-only"):
        model.encodings[0, 0] = 1.0
