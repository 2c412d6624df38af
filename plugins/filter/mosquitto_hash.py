# SPDX-License-Identifier: Apache-2.0
"""The mosquitto_hash filter: a password as Mosquitto's password file holds it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: mosquitto_hash
short_description: Hash a password for Mosquitto's password file (PBKDF2-SHA512)
version_added: 0.1.0
description:
  - Returns C($7$101$SALT$HASH), the hash C(mosquitto_passwd) writes (Mosquitto 2.0), with SALT and
    HASH in standard base64; HASH is C(hashlib.pbkdf2_hmac('sha512', password, salt, 101)).
  - The salt is given, not drawn, so that a play renders the same password file every time
    (idempotent); keep it with the password (the mqtt_broker role generates both once into
    C(edge_credentials_dir)).
author: edgeai.appliance maintainers (!UNKNOWN)
positional: _input, salt
options:
  _input:
    description: The user's password, in clear.
    required: true
    type: str
  salt:
    description: The salt, 12 characters (their UTF-8 bytes are Mosquitto's 12-byte salt).
    required: true
    type: str
"""

EXAMPLES = r"""
- name: The broker's password file, one line per user
  ansible.builtin.copy:
    content: |
      edgeface:{{ app_password | edgeai.appliance.mosquitto_hash(salt) }}
      events:{{ reader_password | edgeai.appliance.mosquitto_hash(salt) }}
    dest: /etc/mosquitto/passwd
    mode: "0640"
  no_log: true
"""

RETURN = r"""
_value:
  description: The hash, e.g. C($7$101$c2FsdHNhbHRzYWx0$...).
  type: str
"""

import base64  # noqa: E402
import hashlib  # noqa: E402

# mosquitto_passwd's parameters: PBKDF2-SHA512, 101 iterations, a 12-byte salt, a 64-byte hash.
ITERATIONS = 101
SALT_LENGTH = 12


def mosquitto_hash(password: str, salt: str) -> str:
    """`$7$101$SALT$HASH` for `password` with `salt`; ValueError for a salt that is not 12 bytes."""
    salt_bytes = str(salt).encode()
    if len(salt_bytes) != SALT_LENGTH:
        raise ValueError(f"mosquitto_hash: the salt must be {SALT_LENGTH} bytes")
    key = hashlib.pbkdf2_hmac("sha512", str(password).encode(), salt_bytes, ITERATIONS)
    encoded = (base64.b64encode(part).decode() for part in (salt_bytes, key))
    return "$".join(("", "7", str(ITERATIONS), *encoded))


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"mosquitto_hash": mosquitto_hash}
