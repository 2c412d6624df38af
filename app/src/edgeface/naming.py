"""Naming stage: a tracked face's name from several recognition attempts, not from one frame.

One encoding of a face that turns, blurs or shrinks can land far from the person's known
encodings (or, rarely, near someone else's). So, as Frigate does, each tracked face keeps its
last attempts and is named by their **size-weighted mean distance** to each candidate person
(a 150 px face counts more than a 45 px one), with two thresholds:

- `named` (the tolerance in use): a face is given a name when that mean is within it, after two
  attempts, or after one that is well inside it (`named - SURE_MARGIN`);
- `unknown` (default `named + 0.1`, `FACE_UNKNOWN_DISTANCE`): a named face keeps its name until
  the mean distance to it reaches this, so one bad attempt never flips it to Unknown or to
  someone else; a face not (yet) named is shown as Unknown.

    vote = NameVote(named=0.6, unknown=0.7)
    vote.add({"Barack Obama": 0.41, "Joe Biden": 0.83}, size=62)
    vote.match()          # Match("Barack Obama", 0.41, attempts=1)
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass

from edgeface.values import UNKNOWN, Match

ATTEMPTS = 8
"""Attempts a face's name is voted from (the newest ones)."""
SURE_MARGIN = 0.1
"""One attempt names a face by itself when its distance is this far inside the tolerance."""
FULL_WEIGHT_SIZE = 150
"""Face height (px) from which an attempt has full weight; a smaller face's weighs size/this."""
UNKNOWN_MARGIN = 0.1
"""The default `unknown` threshold: this much above the tolerance."""
FAR = 1.0
"""The distance assumed to a person an attempt did not list among its nearest."""


@dataclass(frozen=True)
class Attempt:
    candidates: Mapping[str, float]  # the nearest people: name -> distance
    weight: float


class NameVote:
    """The attempts of one tracked face and the name they give (`match()`)."""

    def __init__(self, named: float, unknown: float | None = None) -> None:
        unknown = named + UNKNOWN_MARGIN if unknown is None else max(unknown, named)
        if not named > 0.0:
            raise ValueError(f"the naming threshold must be positive, got {named}")
        self.named, self.unknown = named, unknown
        self.attempts: collections.deque[Attempt] = collections.deque(maxlen=ATTEMPTS)
        self.total = 0  # attempts made over the face's whole life
        self._name = UNKNOWN

    def add(self, candidates: Mapping[str, float], size: int) -> Match:
        """Add one attempt (a face `size` px tall and its nearest people) and return the name."""
        self.attempts.append(Attempt(dict(candidates), min(1.0, max(size, 1) / FULL_WEIGHT_SIZE)))
        self.total += 1
        self._name = self._decide()
        return self.match()

    def distance_to(self, name: str) -> float:
        """Size-weighted mean distance of the attempts to `name`."""
        weights = sum(attempt.weight for attempt in self.attempts)
        spread = sum(attempt.weight * attempt.candidates.get(name, FAR) for attempt in self.attempts)
        return spread / weights

    def match(self) -> Match:
        """The face's name now, with the mean distance it rests on (to the nearest candidate for
        Unknown; None before any attempt or without a model) and the number of attempts."""
        if not self.attempts:
            return Match(UNKNOWN, None, 0)
        nearest = self._nearest()
        if self._name != UNKNOWN:
            return Match(self._name, round(self.distance_to(self._name), 4), len(self.attempts))
        distance = None if nearest is None else round(self.distance_to(nearest), 4)
        return Match(UNKNOWN, distance, len(self.attempts))

    def _nearest(self) -> str | None:
        names = {name for attempt in self.attempts for name in attempt.candidates}
        return min(sorted(names), key=self.distance_to) if names else None

    def _decide(self) -> str:
        nearest = self._nearest()
        if nearest is None:
            return UNKNOWN
        distance = self.distance_to(nearest)
        sure = distance <= self.named - SURE_MARGIN or (len(self.attempts) >= 2 and distance <= self.named)
        if sure:
            return nearest
        if self._name != UNKNOWN and self.distance_to(self._name) < self.unknown:
            return self._name  # not surely someone else, not surely a stranger: it stays
        return UNKNOWN
