# SPDX-License-Identifier: Apache-2.0
"""The S3 connection options of the collection's modules (s3_versions.CONNECTION_ARGUMENT_SPEC)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  endpoint_url:
    description:
      - URL of the S3 endpoint; empty for AWS.
    type: str
    default: ""
  region:
    description:
      - Region name used to sign requests.
    type: str
    default: us-east-1
  access_key:
    description:
      - Access key ID.
    type: str
    required: true
  secret_key:
    description:
      - Secret access key.
    type: str
    required: true
  validate_certs:
    description:
      - Verify the endpoint's TLS certificate.
    type: bool
    default: true
"""
