# SPDX-License-Identifier: Apache-2.0
"""Publish a model version folder to S3 once: complete, and never over another run's.

Works on any boto3 S3 client (AWS, SeaweedFS, MinIO, Ceph RGW). A version folder is claimed by
its first object, written with a conditional put (``If-None-Match: *``): of several runs racing
for one version, the store lets exactly one write it, and the others stop before they write
anything. A run that fails half-way removes the objects it wrote, so a version is either
complete or absent.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
except ImportError:  # reported by the module through missing_required_lib
    boto3 = None
    BotoCoreError = ClientError = EndpointConnectionError = Exception

# The options every module of the collection that talks to S3 takes (doc fragment edgeai.appliance.s3).
CONNECTION_ARGUMENT_SPEC = {
    "endpoint_url": {"type": "str", "default": ""},
    "region": {"type": "str", "default": "us-east-1"},
    "access_key": {"type": "str", "required": True, "no_log": True},
    "secret_key": {"type": "str", "required": True, "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "bucket": {"type": "str", "required": True},
}

NOT_FOUND = {"404", "NoSuchBucket", "NotFound"}
NO_SUCH_KEY = {"404", "NoSuchKey", "NotFound"}
TAKEN = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
REFUSED_CREDENTIALS = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "403", "InvalidToken"}


class PublishError(Exception):
    """Why a publication stopped; `reason` is one of the REASONS, for the caller's message."""

    REASONS = ("bucket_missing", "version_taken", "credentials_refused", "unreachable", "failed")

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Publication:
    """What a publication did (or, in check mode, would do)."""

    bucket_created: bool = False
    objects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.bucket_created or bool(self.objects)


def connect(params: dict[str, Any]) -> Any:
    """A boto3 S3 client for a module's CONNECTION_ARGUMENT_SPEC parameters (the caller has
    checked that boto3 is there)."""
    return boto3.client(
        "s3",
        endpoint_url=params["endpoint_url"] or None,
        region_name=params["region"],
        aws_access_key_id=params["access_key"],
        aws_secret_access_key=params["secret_key"],
        verify=params["validate_certs"],
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10),
    )


def error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
    return ""


def explain(error: Exception, where: str) -> PublishError:
    """A PublishError for a boto3 error met while doing `where`; never carries a credential."""
    if isinstance(error, EndpointConnectionError):
        return PublishError("unreachable", f"cannot reach the S3 endpoint while {where}: {error}")
    code = error_code(error)
    if code in REFUSED_CREDENTIALS:
        return PublishError("credentials_refused", f"S3 refused the credentials while {where} ({code})")
    if isinstance(error, (ClientError, BotoCoreError)):
        return PublishError("failed", f"S3 failed while {where}: {code or error}")
    raise error


def ensure_bucket(client: Any, bucket: str, create: bool, check_mode: bool = False) -> bool:
    """True when the bucket was (or, in check mode, would be) created; PublishError when missing."""
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except (ClientError, BotoCoreError) as error:
        if error_code(error) not in NOT_FOUND:
            raise explain(error, f"looking for bucket {bucket}") from None
    if not create:
        raise PublishError(
            "bucket_missing", f"bucket {bucket} does not exist, and creating it was not asked for"
        )
    if not check_mode:
        try:
            client.create_bucket(Bucket=bucket)
        except (ClientError, BotoCoreError) as error:
            if error_code(error) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise explain(error, f"creating bucket {bucket}") from None
    return True


def version_objects(client: Any, bucket: str, prefix: str) -> list[str]:
    """The keys under `prefix`/ (at most a few: enough to say the version is taken)."""
    try:
        listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/", MaxKeys=10)
    except (ClientError, BotoCoreError) as error:
        raise explain(error, f"listing s3://{bucket}/{prefix}/") from None
    return [item["Key"] for item in listing.get("Contents", [])]


def put_new_objects(
    client: Any, bucket: str, prefix: str, files: list[str], metadata: dict[str, str]
) -> list[dict[str, Any]]:
    """Upload `files` in order as `prefix`/<file name>, each only if that key does not exist yet.

    The first file claims the version. On any failure the objects this call wrote are deleted
    (no other run can have written those keys: their puts were conditional) and PublishError says why.
    """
    written: list[dict[str, Any]] = []
    try:
        for path in files:
            key = f"{prefix}/{os.path.basename(path)}"
            with open(path, "rb") as body:
                try:
                    answer = client.put_object(
                        Bucket=bucket, Key=key, Body=body, Metadata=metadata, IfNoneMatch="*"
                    )
                except (ClientError, BotoCoreError) as error:
                    if error_code(error) in TAKEN:
                        raise PublishError(
                            "version_taken", f"s3://{bucket}/{key} was written by another run meanwhile"
                        ) from None
                    raise explain(error, f"uploading s3://{bucket}/{key}") from None
            etag = str(answer.get("ETag", "")).strip('"')
            written.append({"key": key, "etag": etag, "size": os.path.getsize(path)})
    except BaseException:
        for item in written:
            # The original failure is the one to report.
            with contextlib.suppress(ClientError, BotoCoreError):
                client.delete_object(Bucket=bucket, Key=item["key"])
        raise
    return written


def publish(
    client: Any,
    bucket: str,
    prefix: str,
    files: list[str],
    metadata: dict[str, str],
    *,
    create_bucket: bool = False,
    check_mode: bool = False,
) -> Publication:
    """Ensure the bucket, refuse a version folder that holds anything, then write `files` into it."""
    for path in files:
        if not os.path.isfile(path):
            raise PublishError("failed", f"{path}: no such file to upload")
    publication = Publication(bucket_created=ensure_bucket(client, bucket, create_bucket, check_mode))
    if not prefix:
        return publication
    if not publication.bucket_created:
        taken = version_objects(client, bucket, prefix)
        if taken:
            held = ", ".join(taken)
            raise PublishError(
                "version_taken", f"s3://{bucket}/{prefix}/ holds {held} already: never overwritten"
            )
    if check_mode:
        publication.objects = [{"key": f"{prefix}/{os.path.basename(path)}"} for path in files]
        return publication
    publication.objects = put_new_objects(client, bucket, prefix, files, metadata)
    return publication
