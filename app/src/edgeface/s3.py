"""A small S3 client for the people store: put, get, delete and list objects of one bucket.

The app needs four calls of one bucket; a full SDK (boto3 and botocore, ~100 MB installed) would
more than double what the webapp image adds for that. Requests are signed with AWS Signature
Version 4 (the header form, payload hashed), path-style (`<endpoint>/<bucket>/<key>`), which
SeaweedFS, MinIO, Ceph RGW, NooBaa and AWS all accept. Errors are `S3Error`, naming the endpoint,
the bucket and what the store answered; the keys never appear in one.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

TIMEOUT_SECONDS = 10.0
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
UNSIGNED_SAFE = "-_.~"


class S3Error(RuntimeError):
    """A request the store refused or could not be sent; `status` is the HTTP status (0: none)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class S3Location:
    """Where the bucket is and who asks: `url` is the endpoint (http[s]://host[:port])."""

    url: str
    bucket: str
    region: str
    access_key: str
    secret_key: str
    ca_file: Path | None = None

    def __repr__(self) -> str:  # never the keys
        return f"S3Location({self.url!r}, bucket={self.bucket!r})"


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe=UNSIGNED_SAFE)


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signed_headers(
    location: S3Location,
    method: str,
    path: str,
    query: dict[str, str],
    body: bytes,
    *,
    now: datetime.datetime,
) -> dict[str, str]:
    """The headers of a request signed with SigV4 (`path` already URI-encoded)."""
    host = urllib.parse.urlsplit(location.url).netloc
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": stamp}
    names = sorted(headers)
    canonical = "\n".join(
        [
            method,
            path,
            "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items())),
            "".join(f"{name}:{headers[name]}\n" for name in names),
            ";".join(names),
            payload,
        ]
    )
    scope = f"{day}/{location.region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(f"AWS4{location.secret_key}".encode(), day)
    for part in (location.region, "s3", "aws4_request"):
        key = _sign(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={location.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


class S3Bucket:
    """One bucket of one S3 endpoint; thread-safe (a connection per request)."""

    def __init__(self, location: S3Location) -> None:
        parsed = urllib.parse.urlsplit(location.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"{location.url!r} is not an http(s)://host[:port] endpoint")
        self.location = location
        self._https = parsed.scheme == "https"
        self._netloc = parsed.netloc
        self._context = (
            ssl.create_default_context(cafile=str(location.ca_file) if location.ca_file else None)
            if self._https
            else None
        )

    def describe(self) -> str:
        return f"bucket {self.location.bucket} at {self.location.url}"

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._request("PUT", key, body=body, content_type=content_type)

    def get(self, key: str) -> bytes | None:
        """The object's bytes, None when there is no such key."""
        status, body = self._request("GET", key, missing_ok=True)
        return None if status == 404 else body

    def delete(self, key: str) -> None:
        self._request("DELETE", key, missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, sorted (ListObjectsV2, all pages)."""
        found: list[str] = []
        token = ""
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            body = self._request("GET", "", query=query)[1]
            try:
                root = ElementTree.fromstring(body)
            except ElementTree.ParseError as error:
                raise S3Error(f"{self.describe()}: the listing is not XML ({error})") from None
            found += [node.text or "" for node in root.iter(f"{S3_NS}Key")]
            token = root.findtext(f"{S3_NS}NextContinuationToken") or ""
            if root.findtext(f"{S3_NS}IsTruncated") != "true" or not token:
                return sorted(found)

    def _request(
        self,
        method: str,
        key: str,
        *,
        body: bytes = b"",
        query: dict[str, str] | None = None,
        content_type: str | None = None,
        missing_ok: bool = False,
    ) -> tuple[int, bytes]:
        query = query or {}
        path = (
            "/" + _quote(self.location.bucket) + ("/" + urllib.parse.quote(key, safe="/-_.~") if key else "/")
        )
        headers = signed_headers(
            self.location, method, path, query, body, now=datetime.datetime.now(datetime.UTC)
        )
        if content_type:
            headers["content-type"] = content_type
        target = path + (
            "?" + urllib.parse.urlencode(sorted(query.items()), quote_via=urllib.parse.quote) if query else ""
        )
        connection: http.client.HTTPConnection = (
            http.client.HTTPSConnection(self._netloc, timeout=TIMEOUT_SECONDS, context=self._context)
            if self._https
            else http.client.HTTPConnection(self._netloc, timeout=TIMEOUT_SECONDS)
        )
        try:
            connection.request(method, target, body=body or None, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise S3Error(f"{self.describe()}: cannot reach the store ({error})") from None
        finally:
            connection.close()
        if response.status == 404 and missing_ok:
            return 404, b""
        if response.status >= 300:
            raise S3Error(
                f"{self.describe()}: {method} {key or '/'} answered {self._reason(response.status, data)}",
                response.status,
            )
        return response.status, data

    @staticmethod
    def _reason(status: int, body: bytes) -> str:
        try:
            root = ElementTree.fromstring(body)
            code, message = root.findtext("Code") or "", root.findtext("Message") or ""
        except ElementTree.ParseError:
            code, message = "", ""
        if status == 403:
            return f"403 {code or 'Forbidden'}: the store refused the credentials or this action"
        return f"{status} {code} {message}".strip()
