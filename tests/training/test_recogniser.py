"""The recogniser: nearest known encoding within the tolerance, on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from edgeface.model import FaceModel
from edgeface.recogniser import Recogniser, encode_faces
from edgeface.values import UNKNOWN, Box


def obama_only(encodings: dict[str, np.ndarray]) -> FaceModel:
    return FaceModel(np.stack([encodings["obama"], encodings["obama2"]]), ("Barack Obama",) * 2, {})


def test_another_photo_of_a_known_person_is_named(sample_encodings: dict[str, np.ndarray]) -> None:
    recogniser = Recogniser(obama_only(sample_encodings))

    (match,) = recogniser.identify(sample_encodings["obama3"][None, :])

    assert match.name == "Barack Obama"
    assert match.distance is not None and match.distance < 0.6


def test_a_person_not_in_the_model_is_unknown_with_the_distance(
    sample_encodings: dict[str, np.ndarray],
) -> None:
    recogniser = Recogniser(obama_only(sample_encodings))

    (match,) = recogniser.identify(sample_encodings["biden"][None, :])

    assert match.name == UNKNOWN
    assert not match.known
    assert match.distance is not None and match.distance > 0.6


def test_several_faces_are_named_in_order(sample_encodings: dict[str, np.ndarray]) -> None:
    model = FaceModel(
        np.stack([sample_encodings["obama"], sample_encodings["biden"]]), ("Barack Obama", "Joe Biden"), {}
    )
    queries = np.stack([sample_encodings["biden"], sample_encodings["obama3"]])

    names = [match.name for match in Recogniser(model).identify(queries)]

    assert names == ["Joe Biden", "Barack Obama"]


def test_tolerance_decides_between_name_and_unknown() -> None:
    known = np.zeros((1, 128))
    query = np.zeros((1, 128))
    query[0, 0] = 0.5  # distance exactly 0.5
    model = FaceModel(known, ("Greg",), {})

    assert Recogniser(model, tolerance=0.5).identify(query)[0].name == "Greg"
    assert Recogniser(model, tolerance=0.4).identify(query)[0].name == UNKNOWN


@pytest.mark.parametrize("model", [None, FaceModel(np.empty((0, 128)), (), {})])
def test_no_model_names_nobody(model: FaceModel | None) -> None:
    matches = Recogniser(model).identify(np.zeros((2, 128)))

    assert [(m.name, m.distance) for m in matches] == [(UNKNOWN, None), (UNKNOWN, None)]


def test_no_encodings_give_no_matches(sample_encodings: dict[str, np.ndarray]) -> None:
    assert Recogniser(obama_only(sample_encodings)).identify(np.empty((0, 128))) == []


def test_bad_shapes_and_tolerances_are_refused() -> None:
    with pytest.raises(ValueError, match="128"):
        Recogniser(None).identify(np.zeros((2, 64)))
    with pytest.raises(ValueError, match="tolerance"):
        Recogniser(None, tolerance=0.0)


def test_encode_faces_returns_one_row_per_box() -> None:
    rgb = np.zeros((50, 50, 3), dtype=np.uint8)

    assert encode_faces(rgb, []).shape == (0, 128)
    with pytest.raises(ValueError, match="RGB"):
        encode_faces(np.zeros((50, 50), dtype=np.uint8), [Box(0, 10, 10, 0)])
