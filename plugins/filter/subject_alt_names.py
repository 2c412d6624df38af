# SPDX-License-Identifier: Apache-2.0
"""The subject_alt_names filter: the names MicroShift's API certificate may carry."""

from __future__ import annotations

import ipaddress
import re

DOCUMENTATION = r"""
---
name: subject_alt_names
short_description: Keep the names MicroShift accepts in apiServer.subjectAltNames
version_added: 0.2.0
description:
  - MicroShift refuses to start when C(apiServer.subjectAltNames) holds C(localhost), C(127.0.0.1) or
    C(::1) (it adds its own internal names); RHEL's default host name is C(localhost), so a device
    whose host name was never set would otherwise put it there.
  - Keeps, in order and once each, the entries that are an IP address other than a loopback one or a
    DNS name (RFC 1123 labels) that is not a localhost name. Empty entries are dropped.
author: edgeai.appliance maintainers (!UNKNOWN)
positional: _input
options:
  _input:
    description: Candidate names (the device address, host name, FQDN, the site's extra names).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: The names for the certificate
  ansible.builtin.debug:
    msg: "{{ names | edgeai.appliance.subject_alt_names }}"
  vars:
    names: ['192.0.2.20', 'localhost', 'localhost.localdomain', 'nuc-01']
  # -> ['192.0.2.20', 'nuc-01']
"""

RETURN = r"""
_value:
  description: The usable names; what was dropped is the input minus this list.
  type: list
  elements: str
"""

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# /etc/hosts' loopback names: localhost, localhost.localdomain, localhost4(.localdomain4), ...
_LOCALHOST_LABELS = ("localhost", "localhost4", "localhost6")


def usable_name(name: str) -> bool:
    """True for an address that is not loopback, or a DNS name that is not a localhost name."""
    text = name.strip().rstrip(".").lower()
    if not text:
        return False
    try:
        return not ipaddress.ip_address(text).is_loopback
    except ValueError:
        pass
    if text.split(".")[0] in _LOCALHOST_LABELS or text.endswith(".localhost"):
        return False
    return len(text) <= 253 and all(_LABEL.fullmatch(label) for label in text.split("."))


def subject_alt_names(names: list[str]) -> list[str]:
    kept: list[str] = []
    for name in names:
        text = str(name or "").strip()
        if usable_name(text) and text not in kept:
            kept.append(text)
    return kept


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"subject_alt_names": subject_alt_names}
