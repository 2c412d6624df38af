# SPDX-License-Identifier: Apache-2.0
"""Publish a model version folder to any S3 endpoint once, complete, never overwritten."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_publish
short_description: Publish files as a new version folder in an S3 bucket, once and completely
version_added: 0.1.0
description:
  - Makes sure O(bucket) exists, creating it when O(create_bucket) is true.
  - "With O(prefix), refuses a version folder that holds anything, then uploads O(files) in their
    order as C(<prefix>/<file name>), each with a conditional put (header C(If-None-Match) C(*)). Of
    several runs racing for one version, the store lets exactly one write it."
  - A run that fails half-way deletes the objects it wrote, so a version folder is complete or
    absent.
  - Works with AWS and S3-compatible stores that honour conditional puts (SeaweedFS, MinIO, Ceph RGW).
  - Failure messages never carry the credentials; RV(reason) tells the caller what went wrong.
author: edgeai.appliance maintainers (!UNKNOWN)
requirements:
  - boto3 on the host that runs the module
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - edgeai.appliance.s3
attributes:
  check_mode:
    support: full
    details: Reads the bucket and the version folder and reports what would be written.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  bucket:
    description:
      - Name of the bucket.
    type: str
    required: true
  create_bucket:
    description:
      - Create O(bucket) when it does not exist; otherwise a missing bucket fails with RV(reason)
        C(bucket_missing).
    type: bool
    default: false
  prefix:
    description:
      - The version folder, without a trailing slash. Empty ensures the bucket only.
    type: str
    default: ""
  files:
    description:
      - Local files uploaded into O(prefix), in this order; the first one claims the version.
    type: list
    elements: path
    default: []
  metadata:
    description:
      - User metadata stored with every object.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Publish model 2412011200
  edgeai.appliance.s3_publish:
    endpoint_url: http://192.0.2.20:30900
    access_key: "{{ s3_access_key }}"
    secret_key: "{{ s3_secret_key }}"
    bucket: models
    create_bucket: true
    prefix: "2412011200"
    files: [build/2412011200/model.data, build/2412011200/metadata.json]
    metadata:
      model-version: "2412011200"
  no_log: true
"""

RETURN = r"""
bucket_created:
  description: Whether the bucket was created (would be, in check mode).
  returned: always
  type: bool
objects:
  description: The objects written (would be, in check mode), in order.
  returned: always
  type: list
  elements: dict
  sample: [{key: 2412011200/model.data, etag: 9b2cf535f27731c974343645a3985328, size: 5160}]
reason:
  description: >-
    On failure: bucket_missing, version_taken, credentials_refused, unreachable or failed.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.edgeai.appliance.plugins.module_utils.s3_versions import (  # noqa: E402
    CONNECTION_ARGUMENT_SPEC,
    PublishError,
    boto3,
    connect,
    publish,
)

ARGUMENT_SPEC = {
    **CONNECTION_ARGUMENT_SPEC,
    "create_bucket": {"type": "bool", "default": False},
    "prefix": {"type": "str", "default": ""},
    "files": {"type": "list", "elements": "path", "default": []},
    "metadata": {"type": "dict", "default": {}},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if boto3 is None:
        module.fail_json(msg=missing_required_lib("boto3"))
    params = module.params
    try:
        publication = publish(
            connect(params),
            params["bucket"],
            params["prefix"].strip("/"),
            params["files"],
            {key: str(value) for key, value in params["metadata"].items()},
            create_bucket=params["create_bucket"],
            check_mode=module.check_mode,
        )
    except PublishError as error:
        module.fail_json(msg=str(error), reason=error.reason, bucket_created=False, objects=[])
    module.exit_json(
        changed=publication.changed, bucket_created=publication.bucket_created, objects=publication.objects
    )


if __name__ == "__main__":
    main()
