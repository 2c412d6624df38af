# SPDX-License-Identifier: Apache-2.0
"""The bcrypt_hash filter: a password as Docker distribution's htpasswd file holds it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: bcrypt_hash
short_description: Hash a password for the registry's htpasswd file (bcrypt)
description:
  - Returns C($2b$COST$SALTHASH), the only hash Docker distribution's htpasswd authentication accepts.
  - The salt is given, not drawn, so that a play renders the same htpasswd file every time (idempotent);
    keep it with the password (the registry role generates both once into C(edge_credentials_dir)).
  - Needs the C(bcrypt) Python package on the controller (C(requirements.txt) pins it).
author: edgeai.appliance maintainers (!UNKNOWN)
positional: _input, salt
options:
  _input:
    description: The password (72 bytes at most are used, as bcrypt does).
    type: str
    required: true
  salt:
    description: 22 characters of bcrypt's alphabet (C(./A-Za-z0-9)).
    type: str
    required: true
  cost:
    description: The work factor, 4 to 31.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: An htpasswd line
  ansible.builtin.set_fact:
    htpasswd_line: "edgeai:{{ password | edgeai.appliance.bcrypt_hash(salt) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The hash, e.g. C($2b$10$...), 60 characters.
  type: str
"""

import re  # noqa: E402

try:
    import bcrypt
except ImportError:  # the error below names the package to install
    bcrypt = None

SALT_PATTERN = re.compile(r"[./A-Za-z0-9]{22}")
BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def bcrypt_hash(password: str, salt: str, cost: int = 10) -> str:
    """`$2b$COST$…` for `password` with `salt`; ValueError names what is wrong with the input."""
    if bcrypt is None:
        raise ValueError("bcrypt_hash: the bcrypt Python package is missing on the controller")
    if not SALT_PATTERN.fullmatch(str(salt)):
        raise ValueError("bcrypt_hash: the salt must be 22 characters of ./A-Za-z0-9")
    if not 4 <= int(cost) <= 31:
        raise ValueError(f"bcrypt_hash: cost {cost} is outside 4-31")
    # 22 characters carry 132 bits, bcrypt's salt 128: the last character keeps its top 2 bits only.
    salt = salt[:21] + BCRYPT_ALPHABET[BCRYPT_ALPHABET.index(salt[21]) & 0x30]
    prefix = f"$2b${int(cost):02d}${salt}".encode()
    return bcrypt.hashpw(str(password).encode()[:72], prefix).decode()


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"bcrypt_hash": bcrypt_hash}
