# SPDX-License-Identifier: Apache-2.0
"""Build a model image and push it through a registry's HTTP API, without a container engine.

A model image (images/model/Containerfile) is a busybox base plus ONE layer of its own, the last:
``bin/copy-model`` and ``opt/model/model.data``. A new model version is the same image with
another model.data: this module takes an image of the repository as its template (``initial``,
which every deployment pushes), checks that its last layer holds exactly those files, writes
that layer again with the new model.data, rewrites the configuration's version and checksum
(labels and environment), and pushes the layer, the configuration and the manifest through the
Docker Registry HTTP API V2 / OCI distribution API. The base layers are the template's: they are
already in the repository, so a push sends about the model's size.

The layer is reproducible: the same model, version and time give the same digests, on every
device of a fleet.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urljoin

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import Request

# Not datetime.UTC: target hosts may run Python < 3.11.
UTC = timezone.utc  # noqa: UP017

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST))

MODEL_PATH = "opt/model/model.data"
COPY_MODEL_PATH = "bin/copy-model"
# What the model's own layer may hold: its two files and their folders.
MODEL_LAYER_MEMBERS = frozenset({"bin", COPY_MODEL_PATH, "opt", "opt/model", MODEL_PATH})

VERSION_LABELS = ("io.edgeai.model.version", "org.opencontainers.image.version")
SHA256_LABEL = "io.edgeai.model.sha256"
# Described the inputs of a podman build: not true of an image written here.
STALE_LABELS = ("io.edgeai.build.inputs", "org.opencontainers.image.revision")


class RegistryError(Exception):
    """Why a build or push stopped; `reason` is one of the REASONS, for the caller's message."""

    REASONS = ("unreachable", "credentials_refused", "template_missing", "not_a_model_image", "refused")

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Answer:
    """One HTTP answer of the registry."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Registry:
    """One repository's registry, spoken to over the distribution API with basic auth."""

    url: str
    username: str = ""
    password: str = ""
    ca_path: str | None = None
    validate_certs: bool = True
    timeout: int = 30

    def _request(
        self, method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        headers = dict(headers or {})
        if self.username:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = "Basic " + token
        request = Request(validate_certs=self.validate_certs, ca_path=self.ca_path, timeout=self.timeout)
        try:
            response = request.open(method, url, data=data, headers=headers)
            return Answer(
                response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
            )
        except HTTPError as error:
            body = error.read() or b""
            if error.code in (401, 403):
                raise RegistryError(
                    "credentials_refused",
                    f"the registry {self.url} refused the credentials (HTTP {error.code}) "
                    f"for {method} {_path_of(url)}",
                ) from None
            return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, body)
        except (URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RegistryError("unreachable", f"cannot reach the registry {self.url}: {reason}") from None

    def _url(self, repository: str, kind: str, reference: str = "") -> str:
        return f"{self.url.rstrip('/')}/v2/{repository}/{kind}/{quote(reference, safe=':')}"

    def manifest(self, repository: str, reference: str) -> tuple[str, bytes] | None:
        """The manifest's media type and bytes, or None when the registry has no such reference."""
        answer = self._request(
            "GET", self._url(repository, "manifests", reference), headers={"Accept": ACCEPT}
        )
        if answer.status == 404:
            return None
        _expect(answer, 200, f"GET {repository}:{reference}")
        media_type = answer.headers.get("content-type", "").split(";")[0]
        return media_type or json.loads(answer.body).get("mediaType", ""), answer.body

    def blob(self, repository: str, digest: str) -> bytes:
        answer = self._request("GET", self._url(repository, "blobs", digest))
        _expect(answer, 200, f"GET blob {digest} of {repository}")
        if sha256_digest(answer.body) != digest:
            raise RegistryError(
                "refused", f"the registry {self.url} served blob {digest} of {repository} with other content"
            )
        return answer.body

    def has_blob(self, repository: str, digest: str) -> bool:
        return self._request("HEAD", self._url(repository, "blobs", digest)).status == 200

    def push_blob(self, repository: str, data: bytes) -> str:
        """Upload a blob (monolithic: a POST, then one PUT); nothing when the repository has it."""
        digest = sha256_digest(data)
        if self.has_blob(repository, digest):
            return digest
        start = f"{self.url.rstrip('/')}/v2/{repository}/blobs/uploads/"
        started = self._request("POST", start, data=b"", headers={"Content-Length": "0"})
        _expect(started, 202, f"start an upload to {repository}")
        location = urljoin(start, started.headers.get("location", ""))
        location += ("&" if "?" in location else "?") + "digest=" + quote(digest, safe="")
        uploaded = self._request(
            "PUT", location, data=data, headers={"Content-Type": "application/octet-stream"}
        )
        _expect(uploaded, 201, f"upload blob {digest} to {repository}")
        return digest

    def put_manifest(self, repository: str, tag: str, media_type: str, data: bytes) -> str:
        answer = self._request(
            "PUT", self._url(repository, "manifests", tag), data=data, headers={"Content-Type": media_type}
        )
        _expect(answer, 201, f"PUT {repository}:{tag}")
        return answer.headers.get("docker-content-digest") or sha256_digest(data)


def _path_of(url: str) -> str:
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]


def _expect(answer: Answer, wanted: int, what: str) -> None:
    if answer.status != wanted:
        detail = answer.body.decode("utf-8", "replace").strip()[:300]
        raise RegistryError("refused", f"{what}: HTTP {answer.status}{': ' + detail if detail else ''}")


@dataclass
class ModelImage:
    """A model image ready to push: its new layer, configuration and manifest."""

    layer: bytes
    config: bytes
    manifest: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def _member_name(member: tarfile.TarInfo) -> str:
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def model_layer(template_layer: bytes, model: bytes, mtime: int) -> bytes:
    """The template's model layer (uncompressed tar) with `model` as its model.data.

    Raises RegistryError(not_a_model_image) when the layer holds anything but the model's files.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(template_layer), mode="r:*") as source:
            return _with_model(source, model, mtime)
    except (tarfile.TarError, EOFError) as error:
        raise RegistryError("not_a_model_image", f"its last layer is not a readable tar ({error})") from None


def _with_model(source: tarfile.TarFile, model: bytes, mtime: int) -> bytes:
    members = source.getmembers()
    names = {_member_name(member) for member in members} - {""}
    if not {MODEL_PATH, COPY_MODEL_PATH} <= names or not names <= MODEL_LAYER_MEMBERS:
        raise RegistryError(
            "not_a_model_image",
            f"its last layer holds {sorted(names)}, not the model's files {sorted(MODEL_LAYER_MEMBERS)}",
        )
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as target:
        for member in members:
            if _member_name(member) == MODEL_PATH:
                replaced = copy.copy(member)
                replaced.size = len(model)
                replaced.mtime = mtime
                target.addfile(replaced, io.BytesIO(model))
            elif member.isfile():
                target.addfile(member, source.extractfile(member))
            else:
                target.addfile(member)
    return out.getvalue()


def model_config(
    template_config: dict[str, Any], diff_id: str, version: str, sha256: str, created: str
) -> dict[str, Any]:
    """The template's configuration describing model `version` (labels, environment, layer)."""
    config = copy.deepcopy(template_config)
    container = config.setdefault("config", {})
    labels = container.get("Labels") or {}
    for name in STALE_LABELS:
        labels.pop(name, None)
    labels.update({name: version for name in VERSION_LABELS})
    labels[SHA256_LABEL] = sha256
    labels["org.opencontainers.image.created"] = created
    container["Labels"] = labels
    values = {"MODEL_VERSION": version, "MODEL_SHA256": sha256}
    env = [entry for entry in container.get("Env") or [] if entry.split("=", 1)[0] not in values]
    container["Env"] = env + [f"{name}={value}" for name, value in values.items()]
    config["created"] = created
    rootfs = config.setdefault("rootfs", {"type": "layers"})
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", [])[:-1], diff_id]
    history = list(config.get("history", []))
    layered = [index for index, entry in enumerate(history) if not entry.get("empty_layer")]
    if layered:
        history[layered[-1]] = {
            "created": created,
            "created_by": f"edgeai.appliance.model_image: model.data of model {version}",
        }
    config["history"] = history
    return config


def build(
    template_manifest: dict[str, Any],
    template_config: dict[str, Any],
    template_layer: bytes,
    *,
    model: bytes,
    version: str,
    created: datetime,
) -> ModelImage:
    """The model image of `model` made from a template image's manifest, configuration and last layer."""
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sha256 = hashlib.sha256(model).hexdigest()
    tar = model_layer(template_layer, model, int(created.timestamp()))
    # mtime=0: the same tar gives the same compressed bytes, run after run.
    layer = gzip.compress(tar, compresslevel=6, mtime=0)
    config = json.dumps(
        model_config(template_config, sha256_digest(tar), version, sha256, stamp),
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    manifest = copy.deepcopy(template_manifest)
    manifest["config"] = dict(manifest["config"], digest=sha256_digest(config), size=len(config))
    last = {key: value for key, value in manifest["layers"][-1].items() if key != "annotations"}
    if not last["mediaType"].endswith("gzip"):
        last["mediaType"] = (
            "application/vnd.oci.image.layer.v1.tar+gzip"
            if manifest.get("mediaType", OCI_MANIFEST) == OCI_MANIFEST
            else "application/vnd.docker.image.rootfs.diff.tar.gzip"
        )
    manifest["layers"] = [*manifest["layers"][:-1], dict(last, digest=sha256_digest(layer), size=len(layer))]
    manifest.pop("annotations", None)
    media_type = manifest.get("mediaType") or OCI_MANIFEST
    return ModelImage(
        layer=layer,
        config=config,
        manifest=json.dumps(manifest, separators=(",", ":")).encode(),
        media_type=media_type,
    )


def _image_manifest(
    registry: Registry, repository: str, reference: str, architecture: str
) -> tuple[str, dict[str, Any]] | None:
    """The single-platform manifest of `reference` (an index is resolved to `architecture`)."""
    found = registry.manifest(repository, reference)
    if found is None:
        return None
    media_type, body = found
    manifest = json.loads(body)
    media_type = manifest.get("mediaType") or media_type
    if media_type in (OCI_INDEX, DOCKER_LIST):
        platforms = [
            entry
            for entry in manifest.get("manifests", [])
            if entry.get("platform", {}).get("architecture") == architecture
        ]
        if not platforms:
            raise RegistryError("not_a_model_image", f"{repository}:{reference} has no {architecture} image")
        return _image_manifest(registry, repository, platforms[0]["digest"], architecture)
    return media_type, manifest


def _labels(registry: Registry, repository: str, manifest: dict[str, Any]) -> dict[str, str]:
    config = json.loads(registry.blob(repository, manifest["config"]["digest"]))
    return (config.get("config") or {}).get("Labels") or {}


@dataclass
class PushResult:
    changed: bool
    digest: str
    pushed_bytes: int


def push_model_image(
    registry: Registry,
    repository: str,
    tag: str,
    model: bytes,
    *,
    template: str = "initial",
    architecture: str = "amd64",
    created: datetime | None = None,
    check_mode: bool = False,
) -> PushResult:
    """Push model `tag` (its model.data is `model`) made from image `template` of `repository`.

    Nothing is pushed when the tag already names an image of this very model.data; a tag naming
    another model is refused (a version is published once).
    """
    sha256 = hashlib.sha256(model).hexdigest()
    existing = _image_manifest(registry, repository, tag, architecture)
    if existing is not None:
        labels = _labels(registry, repository, existing[1])
        if labels.get(SHA256_LABEL) == sha256:
            digest = registry.manifest(repository, tag)
            return PushResult(False, sha256_digest(digest[1]) if digest else "", 0)
        raise RegistryError(
            "refused",
            f"{repository}:{tag} already names another model (sha256 {labels.get(SHA256_LABEL, 'unknown')}, "
            f"this one is {sha256}): a version is published once",
        )
    found = _image_manifest(registry, repository, template, architecture)
    if found is None:
        raise RegistryError(
            "template_missing",
            f"the registry {registry.url} has no {repository}:{template} to build the model image on "
            "(deploy.yml pushes it: run it first)",
        )
    media_type, manifest = found
    config = json.loads(registry.blob(repository, manifest["config"]["digest"]))
    if SHA256_LABEL not in ((config.get("config") or {}).get("Labels") or {}):
        raise RegistryError(
            "not_a_model_image",
            f"{repository}:{template} has no {SHA256_LABEL} label: it is not a model image",
        )
    try:
        layer = registry.blob(repository, manifest["layers"][-1]["digest"])
        image = build(manifest, config, layer, model=model, version=tag, created=created or datetime.now(UTC))
    except RegistryError as error:
        if error.reason != "not_a_model_image":
            raise
        raise RegistryError(
            error.reason,
            f"{repository}:{template} is not a model image of images/model/Containerfile: {error} "
            "(one of an older collection? deploy.yml builds and pushes the current one)",
        ) from None
    image.media_type = media_type if media_type in (OCI_MANIFEST, DOCKER_MANIFEST) else image.media_type
    if check_mode:
        return PushResult(True, image.digest, len(image.layer) + len(image.config) + len(image.manifest))
    registry.push_blob(repository, image.layer)
    registry.push_blob(repository, image.config)
    digest = registry.put_manifest(repository, tag, image.media_type, image.manifest)
    return PushResult(True, digest, len(image.layer) + len(image.config) + len(image.manifest))
