"""`edgeface recognize`, `doctor` and `serve`'s refusal of bad settings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from edgeface import web_cli


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edgeface")
    web_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


def test_recognize_names_a_known_face_in_json(
    sample_photos: Path, obama_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["recognize", str(sample_photos / "obama2.jpg"), "--model", str(obama_model), "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    (face,) = report["faces"]
    assert face["name"] == "Barack Obama" and face["known"] is True
    assert 0 < face["distance"] < 0.6
    assert set(face["box"]) == {"top", "right", "bottom", "left"}
    assert report["model_version"] == "2401020304"


def test_recognize_calls_a_stranger_unknown(
    sample_photos: Path, obama_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["recognize", str(sample_photos / "biden.jpg"), "--model", str(obama_model)]) == 0

    out = capsys.readouterr().out
    assert "1 face(s)" in out and "Unknown" in out


def test_recognize_refuses_an_unreadable_image_and_a_missing_model(
    tmp_path: Path, obama_model: Path, sample_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    assert run(["recognize", str(text), "--model", str(obama_model)]) == 2
    assert f"{text}: cannot read the image" in capsys.readouterr().err

    missing = tmp_path / "none.data"
    assert run(["recognize", str(sample_photos / "obama.jpg"), "--model", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_serve_refuses_a_bad_setting_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACE_LOC_MODEL", "yolo")

    assert run(["serve"]) == 2
    assert "FACE_LOC_MODEL='yolo' is invalid: expected hog or cnn" in capsys.readouterr().err


def test_serve_refuses_a_server_without_threads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["serve", "--threads", "0"])

    assert exit_info.value.code == 2
    assert "argument --threads: must be at least 1, got 0" in capsys.readouterr().err


def test_doctor_reports_versions_and_whether_cnn_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["doctor", "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    for key in (
        "edgeface",
        "opencv",
        "dlib",
        "dlib_use_cuda",
        "face_recognition",
        "opencv_cuda_devices",
        "cnn",
    ):
        assert key in report
    assert report["cnn"].startswith(("yes", "runs on the CPU only", "no:"))
