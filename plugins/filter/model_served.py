# SPDX-License-Identifier: Apache-2.0
"""The model_served filter: whether an app's /readyz answer shows the intended model in service."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: model_served
short_description: Judge a /readyz answer against the model version a rollout intended
version_added: 0.1.0
description:
  - Done (C(ok)) only when the app is ready and names the intended model version. A ready app with
    another version is the old pod; the intended version not ready is the new pod failing, and
    C(reason) carries the app's own reasons.
  - The same decision for every runtime (podman's loopback, the new MicroShift pod).
author: edgeai.appliance maintainers (!UNKNOWN)
positional: _input, intended
options:
  _input:
    description: The parsed JSON body of C(GET /readyz) (anything else is "no answer").
    type: raw
    required: true
  intended:
    description: The model version the rollout meant to serve.
    type: str
    required: true
  status:
    description: The HTTP status of the answer, when known (200 ready, 503 not).
    type: int
"""

EXAMPLES = r"""
- name: Wait until the app serves the new model
  ansible.builtin.uri:
    url: https://127.0.0.1:8443/readyz
    status_code: [200, 503]
    validate_certs: false
  register: answer
  until: (answer.json | default(none) | edgeai.appliance.model_served(version, answer.status)).ok
  retries: 30
  delay: 2
"""

RETURN = r"""
_value:
  description: C(ok) (bool), C(version) (what the app serves), C(reason) (a sentence for messages).
  type: dict
"""

from typing import Any  # noqa: E402

from ansible_collections.edgeai.appliance.plugins.module_utils.rollout import serves_model  # noqa: E402


def model_served(answer: Any, intended: str, status: int | None = None) -> dict[str, Any]:
    return serves_model(answer, str(intended), int(status) if status not in (None, "") else None).as_dict()


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"model_served": model_served}
