"""Names voted over several attempts: stable through one bad frame, two thresholds, a score."""

from __future__ import annotations

import pytest

from edgeface.naming import NameVote
from edgeface.status import detection_status
from edgeface.values import UNKNOWN, Box, Detection

OBAMA = "Barack Obama"


def test_a_known_name_does_not_flip_to_unknown_on_one_bad_attempt() -> None:
    vote = NameVote(named=0.6)
    assert vote.add({OBAMA: 0.38}, size=90).name == OBAMA

    turned = vote.add({OBAMA: 0.72}, size=90)  # one blurred, turned frame: alone it would be Unknown

    assert turned.name == OBAMA
    assert turned.attempts == 2 and turned.distance == pytest.approx(0.55)


def test_a_known_name_does_not_flip_to_someone_else_on_one_attempt() -> None:
    vote = NameVote(named=0.6)
    vote.add({OBAMA: 0.40, "Joe Biden": 0.85}, size=90)

    assert vote.add({"Joe Biden": 0.45, OBAMA: 0.70}, size=90).name == OBAMA


def test_a_name_is_given_up_once_surely_unknown() -> None:
    vote = NameVote(named=0.6, unknown=0.7)
    vote.add({OBAMA: 0.5}, size=90)
    vote.add({OBAMA: 0.58}, size=90)
    assert vote.match().name == OBAMA

    for _ in range(4):
        vote.add({OBAMA: 0.95}, size=90)

    assert vote.match().name == UNKNOWN


def test_one_borderline_attempt_names_nobody_two_do() -> None:
    vote = NameVote(named=0.6)
    assert vote.add({OBAMA: 0.57}, size=90).name == UNKNOWN  # inside the tolerance, not surely

    assert vote.add({OBAMA: 0.55}, size=90).name == OBAMA


def test_larger_faces_weigh_more() -> None:
    vote = NameVote(named=0.6)
    vote.add({OBAMA: 0.40}, size=150)
    vote.add({OBAMA: 0.90}, size=50)

    assert vote.match().distance == pytest.approx((0.40 * 1.0 + 0.90 / 3) / (1.0 + 1 / 3), abs=1e-4)
    assert vote.match().name == OBAMA


def test_an_unknown_threshold_below_the_tolerance_means_the_tolerance() -> None:
    assert NameVote(named=0.6, unknown=0.5).unknown == 0.6
    with pytest.raises(ValueError, match="positive"):
        NameVote(named=0.0)


def test_the_status_json_carries_the_score_and_the_attempts() -> None:
    vote = NameVote(named=0.6)
    vote.add({OBAMA: 0.4}, size=90)
    vote.add({OBAMA: 0.5}, size=90)

    record = detection_status(Detection(Box(10, 60, 70, 0), vote.match()))

    assert record == {
        "name": OBAMA,
        "known": True,
        "distance": 0.45,
        "score": 0.55,
        "attempts": 2,
        "box": {"top": 10, "right": 60, "bottom": 70, "left": 0},
        "track": None,  # a face of an uploaded picture has no track
    }
