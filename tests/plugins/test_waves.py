"""How a fleet is cut into waves and when the waves stop (plugins/module_utils/rollout.py)."""

from __future__ import annotations

from types import ModuleType

import pytest

DEVICES = [f"dev{number:03d}" for number in range(1, 101)]


def sizes(plan: dict[str, int]) -> list[int]:
    waves = sorted(set(plan.values()))
    return [list(plan.values()).count(wave) for wave in waves]


@pytest.mark.parametrize(
    ("devices", "waves", "expected"),
    [
        (100, [1, "25%", "100%"], [1, 25, 74]),
        (3, [1, "25%", "100%"], [1, 1, 1]),
        (1, [1, "25%", "100%"], [1]),
        (4, [2], [2, 2]),
        (10, ["30%"], [3, 3, 3, 1]),
        # At most ten waves: the tenth takes the rest.
        (100, [1, "5%"], [1, 5, 5, 5, 5, 5, 5, 5, 5, 59]),
    ],
)
def test_waves_are_cut_as_serial_cuts_a_list(
    rollout: ModuleType, devices: int, waves: list[object], expected: list[int]
) -> None:
    plan = rollout.plan_waves(DEVICES[:devices], waves)
    assert sizes(plan) == expected
    assert list(plan) == DEVICES[:devices]  # every device, in the inventory's order
    assert list(plan.values()) == sorted(plan.values())


@pytest.mark.parametrize("bad", [[], ["a quarter"], [0], "100%"])
def test_a_bad_wave_list_is_refused_naming_the_variable(rollout: ModuleType, bad: object) -> None:
    with pytest.raises(ValueError, match="edge_rollout_waves"):
        rollout.plan_waves(DEVICES[:3], bad)


@pytest.mark.parametrize(
    ("results", "budget", "stop", "failed"),
    [
        (["updated"], 0, False, 0),
        (["updated", "unchanged", "updated"], 0, False, 0),
        (["rolled back"], 0, True, 1),
        (["updated", "updated", "updated", "failed"], 25, False, 1),
        (["updated", "updated", "rolled back", "failed"], 25, True, 2),
        (["updated", "unreachable"], 50, False, 1),
        ([], 0, False, 0),
    ],
)
def test_a_wave_over_its_failure_budget_stops_the_waves_after_it(
    rollout: ModuleType, results: list[str], budget: float, stop: bool, failed: int
) -> None:
    verdict = rollout.wave_verdict(results, budget)
    assert verdict["stop"] is stop and verdict["failed"] == failed
    assert ("edge_rollout_max_fail_percentage" in verdict["reason"]) is stop
