# SPDX-License-Identifier: Apache-2.0
"""The with_model filter: the web app's played objects, serving another model and nothing else."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: with_model
short_description: The web app's objects with only their model fields changed
version_added: 0.1.0
description:
  - Takes the objects a device runs (a kube file, a GitOps tree) and changes only what names the
    model the app serves, in the Deployment that copies it (the one with an initContainer
    C(model)) - the initContainer's image, the app container's C(MODEL_SHA256) and the
    C(edgeai.appliance/model-version) annotations of the Deployment and its pod template.
    Every other object and field comes back as it was, so a model rollout changes nothing else.
  - Fails naming what is missing when no Deployment copies a model.
author: edgeai.appliance maintainers (!UNKNOWN)
positional: _input, image, sha256, version
options:
  _input:
    description: The objects (a list of dicts).
    type: list
    elements: dict
    required: true
  image:
    description: The model image, C(REGISTRY/REPOSITORY@sha256:...).
    type: str
    required: true
  sha256:
    description: The model file's checksum (the app refuses a file that differs).
    type: str
    required: true
  version:
    description: The model version.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Serve model 2612051330 with the objects the device runs
  ansible.builtin.set_fact:
    objects: "{{ played | edgeai.appliance.with_model(image_ref, model_sha256, '2612051330') }}"
"""

RETURN = r"""
_value:
  description: A copy of the objects, the model's fields changed.
  type: list
  elements: dict
"""

import copy  # noqa: E402
from typing import Any  # noqa: E402

from ansible.errors import AnsibleFilterError  # noqa: E402

MODEL_VERSION_ANNOTATION = "edgeai.appliance/model-version"
MODEL_CONTAINER = "model"


def _copies_model(obj: dict[str, Any]) -> bool:
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return obj.get("kind") == "Deployment" and any(
        container.get("name") == MODEL_CONTAINER for container in pod.get("initContainers") or []
    )


def _annotate(obj: dict[str, Any], version: str) -> None:
    metadata = obj.setdefault("metadata", {})
    metadata["annotations"] = dict(metadata.get("annotations") or {}, **{MODEL_VERSION_ANNOTATION: version})


def with_model(objects: list[dict[str, Any]], image: str, sha256: str, version: str) -> list[dict[str, Any]]:
    changed = copy.deepcopy(list(objects))
    deployments = [obj for obj in changed if isinstance(obj, dict) and _copies_model(obj)]
    if len(deployments) != 1:
        kinds = ", ".join(
            f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
            for obj in changed
            if isinstance(obj, dict)
        )
        raise AnsibleFilterError(
            f"with_model: {len(deployments)} Deployments copy a model (an initContainer named "
            f"{MODEL_CONTAINER!r}), expected 1, among: {kinds or 'no objects'}"
        )
    deployment = deployments[0]
    template = deployment["spec"]["template"]
    _annotate(deployment, version)
    _annotate(template, version)
    pod = template["spec"]
    for container in pod["initContainers"]:
        if container.get("name") == MODEL_CONTAINER:
            container["image"] = image
    checksums = [
        entry
        for container in pod.get("containers") or []
        for entry in container.get("env") or []
        if entry.get("name") == "MODEL_SHA256"
    ]
    if not checksums:
        raise AnsibleFilterError(
            "with_model: no container of the Deployment sets MODEL_SHA256 (the app's model checksum)"
        )
    for entry in checksums:
        entry["value"] = sha256
    return changed


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"with_model": with_model}
