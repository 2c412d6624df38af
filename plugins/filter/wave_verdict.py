# SPDX-License-Identifier: Apache-2.0
"""The wave_verdict filter: whether a rollout's waves go on after one of them."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: wave_verdict
short_description: Judge a rollout wave against the failure budget
version_added: 0.1.0
description:
  - Takes the results of a wave's devices (C(updated), C(unchanged), C(deployed), C(rolled back), C(failed),
    C(not reached)) and says whether the waves after it stop - when the share of devices that
    neither were updated nor already up to date passes O(max_fail_percentage).
author: edgeai.appliance maintainers (!UNKNOWN)
positional: _input, max_fail_percentage
options:
  _input:
    description: The wave's results, one per device.
    type: list
    elements: str
    required: true
  max_fail_percentage:
    description: The share of a wave's devices that may fail, in percent (0, any failure stops the waves).
    type: float
    required: true
"""

EXAMPLES = r"""
- name: Stop the waves after a wave over budget
  ansible.builtin.set_fact:
    verdict: "{{ wave_results | edgeai.appliance.wave_verdict(edge_rollout_max_fail_percentage) }}"
"""

RETURN = r"""
_value:
  description: C(stop) (bool), C(failed) and C(devices) (counts), C(reason) (a sentence when it stops).
  type: dict
"""

from typing import Any  # noqa: E402

from ansible_collections.edgeai.appliance.plugins.module_utils.rollout import wave_verdict as judge  # noqa: E402


def wave_verdict(results: list[str], max_fail_percentage: float) -> dict[str, Any]:
    return judge(list(results), float(max_fail_percentage))


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"wave_verdict": wave_verdict}
