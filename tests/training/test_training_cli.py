"""The model commands end to end: train, inspect, validate, convert-legacy (exit codes, files)."""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from edgeface import training_cli
from edgeface.model import load_model

from .photo_sets import photo_folder_of
from .test_model_file import FileCreatingPayload


def edgeface(*argv: str | Path) -> int:
    """Run one model command as `edgeface` would (only this command group is registered)."""
    parser = argparse.ArgumentParser(prog="edgeface")
    training_cli.register(parser.add_subparsers(required=True))
    args = parser.parse_args([str(arg) for arg in argv])
    code: int = args.handler(args)
    return code


def train_into(output: Path, photos: Path, cache: Path) -> int:
    return edgeface("train", photos, "-o", output, "--cache", cache, "--version", "2401011200")


def train_then_validate(root: Path, files: dict[str, Path], cache: Path, *options: str) -> int:
    """Train on a folder of `files`, then run the gate on the same photos; the gate's exit code."""
    photos = photo_folder_of(root / "photos", files)
    model = root / "model.data"
    assert train_into(model, photos, cache) == 0
    return edgeface("validate", model, photos, "--cache", cache, *options)


@pytest.fixture
def trained_file(photo_folder: Path, shared_cache: Path, tmp_path: Path) -> Path:
    output = tmp_path / "out" / "model.data"
    assert train_into(output, photo_folder, shared_cache) == 0
    return output


def test_train_writes_a_model_despite_skipped_photos(
    photo_folder: Path, shared_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "model.data"

    assert train_into(output, photo_folder, shared_cache) == 0

    out, err = capsys.readouterr()
    assert load_model(output).people == ("Barack Obama", "Joe Biden")
    assert "skipped Nobody.png: no face found" in err
    assert "Barack Obama  2" in out
    assert "several faces    1" in out


def test_strict_training_fails_and_leaves_the_old_model(
    trained_file: Path, photo_folder: Path, shared_cache: Path
) -> None:
    before = trained_file.read_bytes()

    code = edgeface("train", photo_folder, "-o", trained_file, "--cache", shared_cache, "--strict")

    assert code == 1
    assert trained_file.read_bytes() == before


def test_an_empty_model_is_not_written_and_the_old_file_is_untouched(
    photo_folder: Path, shared_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = photo_folder_of(
        tmp_path / "bad", {"Nobody.png": photo_folder / "Nobody.png", "Notes.jpg": photo_folder / "Notes.jpg"}
    )
    output = tmp_path / "model.data"
    output.write_bytes(b"previous model")

    code = edgeface("train", bad, "-o", output, "--cache", shared_cache)

    assert code == 1
    assert output.read_bytes() == b"previous model"
    assert "nothing written" in capsys.readouterr().err


def test_inspect_json_prints_the_metadata(trained_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()

    assert edgeface("inspect", trained_file, "--json") == 0

    record = json.loads(capsys.readouterr().out)
    assert record["metadata"]["version"] == "2401011200"
    assert record["metadata"]["people"] == {"Barack Obama": 2, "Joe Biden": 1}
    assert record["rows"] == 3


def test_inspect_refuses_a_pickle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    legacy = tmp_path / "model.data"
    legacy.write_bytes(pickle.dumps(([np.zeros(128)], ["Greg"])))

    assert edgeface("inspect", legacy) == 1
    assert "pickle" in capsys.readouterr().err


def test_validate_passes_a_good_model_on_its_photos(
    trained_file: Path, photo_folder: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = edgeface("validate", trained_file, photo_folder, "--cache", shared_cache)

    assert code == 0, capsys.readouterr().out
    assert "validation passed: 3 photos checked" in capsys.readouterr().out


def test_validate_refuses_two_people_closer_than_the_tolerance(
    sample_photos: Path, shared_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"Barack Obama.jpg": sample_photos / "obama.jpg", "Impostor.jpg": sample_photos / "obama2.jpg"}

    code = train_then_validate(tmp_path, files, shared_cache)

    assert code == 1
    assert "Barack Obama (Barack Obama.jpg) and Impostor (Impostor.jpg)" in capsys.readouterr().out


def test_validate_refuses_a_person_recognised_as_someone_else(
    sample_photos: Path, shared_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {
        "Barack Obama.jpg": sample_photos / "obama.jpg",
        "Joe Biden/biden.jpg": sample_photos / "biden.jpg",
        "Joe Biden/mislabelled.jpg": sample_photos / "obama2.jpg",
    }

    code = train_then_validate(tmp_path, files, shared_cache, "--tolerance", "0.5")

    out = capsys.readouterr().out
    assert code == 1
    assert "Joe Biden/biden.jpg: Joe Biden not recognised" in out
    assert "Joe Biden/mislabelled.jpg: Joe Biden is taken for Barack Obama" in out


def test_validate_refuses_a_person_without_photos(
    trained_file: Path,
    photo_folder: Path,
    shared_cache: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    only_obama = photo_folder_of(tmp_path / "obama", {"Barack Obama.jpg": photo_folder / "Barack Obama.jpg"})

    code = edgeface("validate", trained_file, only_obama, "--cache", shared_cache)

    assert code == 1
    assert "Joe Biden: no usable photo" in capsys.readouterr().out


@pytest.fixture
def crafted_legacy(tmp_path: Path) -> tuple[Path, Path]:
    """A model in the demo's pickle format whose names hide a payload; (file, the file the
    payload would create if it ever ran)."""
    marker = tmp_path / "pwned"
    legacy = tmp_path / "old.pickle"
    legacy.write_bytes(pickle.dumps([[np.zeros(128)], [FileCreatingPayload(marker)]]))
    return legacy, marker


def test_convert_legacy_refuses_without_the_flag_and_runs_nothing(
    crafted_legacy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy, marker = crafted_legacy
    output = tmp_path / "model.data"

    assert edgeface("convert-legacy", legacy, "-o", output) == 1
    assert "--i-trust-this-file" in capsys.readouterr().err
    assert not output.exists()
    assert not marker.exists()


def test_convert_legacy_even_with_the_flag_rebuilds_only_arrays(
    crafted_legacy: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy, marker = crafted_legacy

    assert edgeface("convert-legacy", legacy, "-o", tmp_path / "model.data", "--i-trust-this-file") == 1
    assert "refusing to load" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [
        ([np.full(128, 0.1), np.full(128, 0.2)], ["Greg", "Dr. Ana María"]),  # model_training.py
        (
            [np.full(128, 0.1), np.full(128, 0.2)],
            [{"name": "Greg"}, {"name": "Dr. Ana María"}],
        ),  # server-rhte
        {"encodings": [np.full(128, 0.1), np.full(128, 0.2)], "names": ["Greg", "Dr. Ana María"]},
        [("Greg", np.full(128, 0.1)), ("Dr. Ana María", np.full(128, 0.2))],
    ],
    ids=["tuple-of-names", "name-records", "dict", "pairs"],
)
def test_convert_legacy_reads_the_demos_shapes(content: object, tmp_path: Path) -> None:
    legacy = tmp_path / "old.pickle"
    legacy.write_bytes(pickle.dumps(content))
    output = tmp_path / "model.data"

    assert (
        edgeface("convert-legacy", legacy, "-o", output, "--i-trust-this-file", "--version", "2301010000")
        == 0
    )

    model = load_model(output)
    assert model.names == ("Greg", "Dr. Ana María")
    np.testing.assert_allclose(model.encodings[1], np.full(128, 0.2))
    assert model.version == "2301010000"
    assert model.metadata["converted_from"]["file"] == "old.pickle"


def test_an_empty_folder_trains_an_empty_model_only_when_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The people store after everyone was forgotten: retrain publishes a model that knows nobody."""
    empty = tmp_path / "photos"
    empty.mkdir()
    output = tmp_path / "model.data"

    assert edgeface("train", empty, "-o", output, "--version", "2612050000") == 1
    assert not output.exists()
    assert edgeface("train", empty, "-o", output, "--version", "2612050000", "--allow-empty") == 0
    assert edgeface("validate", output, empty) == 1  # an empty model is refused unless allowed
    assert edgeface("validate", output, empty, "--allow-empty") == 0
    assert "nobody to recognise" in capsys.readouterr().out
    assert edgeface("inspect", output) == 0
    assert "rows      0 encodings of 0 people" in capsys.readouterr().out
