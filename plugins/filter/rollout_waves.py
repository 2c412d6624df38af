# SPDX-License-Identifier: Apache-2.0
"""The rollout_waves filter: which wave each device of a fleet rolls out in."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: rollout_waves
short_description: Cut a fleet's devices into rollout waves
version_added: 0.1.0
description:
  - Cuts the list as Ansible's C(serial) does - each entry of O(waves) is a number of devices or a
    percentage of them all (at least one device), the last entry repeats until every device has a
    wave - and returns each device's wave number (1, 2, ...). The tenth wave takes every device left.
  - A bad entry fails naming it (the variable is C(edge_rollout_waves)).
author: edgeai.appliance maintainers (!UNKNOWN)
positional: _input, waves
options:
  _input:
    description: The devices, in the order they roll out.
    type: list
    elements: str
    required: true
  waves:
    description: The wave sizes, e.g. C([1, "25%", "100%"]).
    type: list
    elements: raw
    required: true
"""

EXAMPLES = r"""
- name: Put each device in the group of its wave
  ansible.builtin.group_by:
    key: "edge_wave_{{ waves[inventory_hostname] }}"
  vars:
    waves: "{{ ansible_play_hosts_all | edgeai.appliance.rollout_waves(edge_rollout_waves) }}"
"""

RETURN = r"""
_value:
  description: 'Each device''s wave, e.g. C({"dev1": 1, "dev2": 2, "dev3": 3, "dev4": 3}).'
  type: dict
"""

from typing import Any  # noqa: E402

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.edgeai.appliance.plugins.module_utils.rollout import plan_waves  # noqa: E402


def rollout_waves(hosts: list[str], waves: list[Any]) -> dict[str, int]:
    try:
        return plan_waves(list(hosts), waves)
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"rollout_waves": rollout_waves}
