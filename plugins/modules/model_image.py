# SPDX-License-Identifier: Apache-2.0
"""Build a model image and push it to a registry through its HTTP API, without a container engine."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_image
short_description: Push a model version as an image through a registry's HTTP API, no podman needed
version_added: 0.1.0
description:
  - Builds the model image of O(model_file) and pushes it as O(repository):O(tag), through the
    Docker Registry HTTP API V2 (the OCI distribution API). No container engine is needed, so
    the play can run where podman is absent (an execution environment of AAP).
  - The image is made from O(template), a model image of the same repository built from the
    collection's C(images/model/Containerfile) (C(initial), which every deployment pushes). Its last
    layer must hold exactly C(/bin/copy-model) and C(/opt/model/model.data); that layer is written
    again with the new model.data, the configuration's version and checksum (labels
    C(io.edgeai.model.version), C(io.edgeai.model.sha256), environment C(MODEL_VERSION),
    C(MODEL_SHA256)) rewritten, and the layer, configuration and manifest uploaded. The base layers
    are the template's, already in the repository.
  - The same model, tag and O(created) give the same digest on every registry.
  - A tag that already names an image of this model.data is left as it is (not changed); a tag
    that names another model is refused.
  - Failure messages never carry the password; RV(reason) tells the caller what went wrong.
author: edgeai.appliance maintainers (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the template and reports the digest the image would have; uploads nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  registry_url:
    description:
      - The registry's base URL, C(https://HOST:PORT) (or C(http://) for a registry without TLS).
    type: str
    required: true
  repository:
    description:
      - The repository of the model images in that registry.
    type: str
    default: ai-for-edge/model
  tag:
    description:
      - The model version, the image's tag.
    type: str
    required: true
  model_file:
    description:
      - The model.data to put in the image, on the host that runs the module.
    type: path
    required: true
  sha256:
    description:
      - The checksum O(model_file) must have (the validation gate's); refused when it differs.
    type: str
    default: ""
  template:
    description:
      - Tag of the model image of O(repository) the new image is made from.
    type: str
    default: initial
  architecture:
    description:
      - The device's architecture (C(amd64), C(arm64)); picks the image of a multi-platform template.
    type: str
    default: amd64
  created:
    description:
      - The image's creation time (ISO 8601, or seconds since the epoch); default now. Give the
        same value for every device to get the same digest everywhere.
    type: str
    default: ""
  username:
    description:
      - The registry user (basic authentication); empty for a registry without logins.
    type: str
    default: ""
  password:
    description:
      - That user's password.
    type: str
    default: ""
  ca_path:
    description:
      - A PEM file of the CA to verify the registry's certificate with.
    type: path
  validate_certs:
    description:
      - Verify the registry's TLS certificate.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each request.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Push model 2612051330 to the device's registry, built without podman
  edgeai.appliance.model_image:
    registry_url: https://registry.edge.example:5000
    tag: "2612051330"
    model_file: /srv/retrain/2612051330/model.data
    sha256: "{{ retrain_model_sha256 }}"
    architecture: arm64
    username: pusher
    password: "{{ vault_registry_password }}"
    ca_path: /etc/edgeai/ca.crt
  delegate_to: localhost
  register: model_image
"""

RETURN = r"""
digest:
  description: The manifest digest the registry serves for the tag (what a deployment pins).
  returned: success
  type: str
  sample: sha256:6f1c...
image:
  description: The image pushed, C(REPOSITORY:TAG) without the registry.
  returned: success
  type: str
  sample: ai-for-edge/model:2612051330
pushed_bytes:
  description: Bytes of layer, configuration and manifest sent (0 when the tag was there already).
  returned: success
  type: int
reason:
  description:
    - Why it failed, C(unreachable), C(credentials_refused), C(template_missing),
      C(not_a_model_image), C(refused) (another model under this tag, or the registry said no),
      C(checksum) (O(model_file) differs from O(sha256)), C(unreadable).
  returned: failure
  type: str
"""

import hashlib  # noqa: E402
from datetime import datetime  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.edgeai.appliance.plugins.module_utils.model_image import (  # noqa: E402
    UTC,
    Registry,
    RegistryError,
    push_model_image,
)

ARGUMENT_SPEC = {
    "registry_url": {"type": "str", "required": True},
    "repository": {"type": "str", "default": "ai-for-edge/model"},
    "tag": {"type": "str", "required": True},
    "model_file": {"type": "path", "required": True},
    "sha256": {"type": "str", "default": ""},
    "template": {"type": "str", "default": "initial"},
    "architecture": {"type": "str", "default": "amd64"},
    "created": {"type": "str", "default": ""},
    "username": {"type": "str", "default": ""},
    "password": {"type": "str", "default": "", "no_log": True},
    "ca_path": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "int", "default": 30},
}


def parse_created(value: str) -> datetime:
    """ISO 8601 or epoch seconds; now when empty."""
    if not value:
        return datetime.now(UTC)
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    image = f"{params['repository']}:{params['tag']}"
    try:
        with open(params["model_file"], "rb") as handle:
            model = handle.read()
    except OSError as error:
        module.fail_json(
            msg=f"cannot read model_file {params['model_file']}: {error.strerror}",
            reason="unreadable",
            image=image,
        )
    checksum = hashlib.sha256(model).hexdigest()
    if params["sha256"] and params["sha256"].lower() != checksum:
        module.fail_json(
            msg=f"model_file {params['model_file']} has sha256 {checksum}, not {params['sha256']}",
            reason="checksum",
            image=image,
        )
    try:
        created = parse_created(params["created"])
    except ValueError:
        module.fail_json(
            msg=f"created: {params['created']!r} is neither ISO 8601 nor seconds since the epoch",
            reason="refused",
            image=image,
        )
    registry = Registry(
        url=params["registry_url"],
        username=params["username"],
        password=params["password"],
        ca_path=params["ca_path"],
        validate_certs=params["validate_certs"],
        timeout=params["timeout"],
    )
    try:
        result = push_model_image(
            registry,
            params["repository"],
            params["tag"],
            model,
            template=params["template"],
            architecture=params["architecture"],
            created=created,
            check_mode=module.check_mode,
        )
    except RegistryError as error:
        module.fail_json(msg=str(error), reason=error.reason, image=image)
    module.exit_json(
        changed=result.changed, digest=result.digest, image=image, pushed_bytes=result.pushed_bytes
    )


if __name__ == "__main__":
    main()
