# SPDX-License-Identifier: Apache-2.0
"""The systemd_escape filter: a string as `systemd-escape` writes it, for unit instance names."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: systemd_escape
short_description: Escape a string for a systemd unit name, as systemd-escape does
version_added: 0.1.0
description:
  - Turns C(/) into C(-) and every other character outside C([A-Za-z0-9:_.]) (and a leading C(.))
    into C(\\xNN), so the string can be the instance of a template unit, e.g.
    C(podman-kube@<escaped kube file path>.service), whose C(%I) gives the string back.
author: edgeai.appliance maintainers (!UNKNOWN)
positional: _input
options:
  _input:
    description: The string to escape.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Enable podman's unit for a kube file
  ansible.builtin.command:
    argv: [systemctl, enable, "podman-kube@{{ kube_file | edgeai.appliance.systemd_escape }}.service"]
  vars:
    kube_file: /etc/edgeai-appliance/kube/webapp.yaml
"""

RETURN = r"""
_value:
  description: The escaped string, e.g. C(-etc-edgeai\\x2dappliance-kube-webapp.yaml).
  type: str
"""

_KEPT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.")


def systemd_escape(value: str) -> str:
    """`systemd-escape VALUE` (not --path): '/' -> '-', others outside [A-Za-z0-9:_.] -> \\xNN."""
    escaped = []
    for index, char in enumerate(str(value)):
        if char == "/":
            escaped.append("-")
        elif char in _KEPT and not (index == 0 and char == "."):
            escaped.append(char)
        else:
            escaped.append("".join(f"\\x{byte:02x}" for byte in char.encode()))
    return "".join(escaped)


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"systemd_escape": systemd_escape}
