# SPDX-License-Identifier: Apache-2.0
"""The scrypt_hash filter: a password as the web app's users file holds it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: scrypt_hash
short_description: Hash a password for the web app's users file (scrypt)
version_added: 0.1.0
description:
  - Returns C(scrypt$N$r$p$SALT$KEY), the hash C(edgeface hash-password) writes, with SALT and KEY in
    standard base64; KEY is C(hashlib.scrypt(password, salt, N, r, p, dklen=32)).
  - The salt is given, not drawn, so that a play renders the same users file every time (idempotent);
    keep it with the password (the webapp role generates both once into C(edge_credentials_dir)).
author: edgeai.appliance maintainers (!UNKNOWN)
positional: _input, salt
options:
  _input:
    description: The password.
    type: str
    required: true
  salt:
    description: The salt, 8 characters or more (its UTF-8 bytes are used).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: A users file line
  ansible.builtin.set_fact:
    users_line: "operator:viewer:{{ password | edgeai.appliance.scrypt_hash(salt) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The hash, e.g. C(scrypt$16384$8$1$c2FsdHNhbHQ=$...).
  type: str
"""

import base64  # noqa: E402
import hashlib  # noqa: E402

# The web app's parameters (edgeface.auth): 16 MiB of memory, ~50 ms per check on a Jetson-class core.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_LENGTH = 32


def scrypt_hash(password: str, salt: str) -> str:
    """`scrypt$N$r$p$SALT$KEY` for `password` with `salt`; ValueError for a salt under 8 bytes."""
    salt_bytes = str(salt).encode()
    if len(salt_bytes) < 8:
        raise ValueError("scrypt_hash: the salt needs 8 characters or more")
    key = hashlib.scrypt(
        str(password).encode(), salt=salt_bytes, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_LENGTH
    )
    encoded = (base64.b64encode(part).decode() for part in (salt_bytes, key))
    return "$".join(("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), *encoded))


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"scrypt_hash": scrypt_hash}
