"""edgeai.appliance.model_image against a real registry (Docker distribution, TLS and logins).

The template images here are written through the registry's own API (a small base layer and a
model layer shaped as images/model/Containerfile makes it); tests/images runs what this module
pushes from a podman-built template with podman itself.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from collection_code import module_utils
from servers import Registry, SiteCredentials

from .conftest import run_module

REPOSITORY = "ai-for-edge/model"
COPY_MODEL = b"#!/bin/sh\necho copy-model\n"
CREATED = datetime(2026, 12, 5, 13, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def model_image() -> ModuleType:
    return module_utils("model_image")


@pytest.fixture(scope="module")
def site() -> Iterator[SiteCredentials]:
    credentials = SiteCredentials()
    yield credentials
    credentials.remove()


@pytest.fixture
def registry(site: SiteCredentials) -> Iterator[Registry]:
    with Registry(site=site) as server:
        yield server


def tar_of(files: dict[str, bytes], folders: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def client(
    model_image: ModuleType, registry: Registry, site: SiteCredentials, password: str | None = None
) -> Any:
    return model_image.Registry(
        url=f"https://{registry.host}",
        username=site.USER,
        password=site.password if password is None else password,
        ca_path=str(site.ca_file),
    )


def push_template(
    model_image: ModuleType,
    api: Any,
    tag: str = "initial",
    model: bytes = b"empty model",
    extra: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """A model image as the Containerfile builds it: a base layer, then the model's own layer."""
    base = tar_of({"bin/busybox": b"\x7fELF not really"}, ("bin",))
    own = tar_of(
        {"bin/copy-model": COPY_MODEL, "opt/model/model.data": model, **(extra or {})},
        ("bin", "opt", "opt/model"),
    )
    layers = [gzip.compress(base, mtime=0), gzip.compress(own, mtime=0)]
    sha = hashlib.sha256(model).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-12-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/bin", f"MODEL_VERSION={tag}", f"MODEL_SHA256={sha}", "MODEL_TARGET_DIR=/models"],
            "Entrypoint": ["/bin/copy-model"],
            "User": "65534",
            "Labels": {
                "io.edgeai.model.version": tag,
                "io.edgeai.model.sha256": sha,
                "org.opencontainers.image.version": tag,
                "io.edgeai.build.inputs": "sha256:00",
            },
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": [model_image.sha256_digest(base), model_image.sha256_digest(own)],
        },
        "history": [
            {"created_by": "COPY busybox"},
            {"created_by": "LABEL", "empty_layer": True},
            {"created_by": "COPY --from=files /files/ /"},
        ],
    }
    config_bytes = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": model_image.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": api.push_blob(REPOSITORY, config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": api.push_blob(REPOSITORY, layer),
                "size": len(layer),
            }
            for layer in layers
        ],
    }
    api.put_manifest(REPOSITORY, tag, model_image.OCI_MANIFEST, json.dumps(manifest).encode())
    return manifest


def pulled(
    model_image: ModuleType, api: Any, tag: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, bytes]]:
    """The manifest, configuration and model-layer files the registry serves for `tag`."""
    _, body = api.manifest(REPOSITORY, tag)
    manifest = json.loads(body)
    config = json.loads(api.blob(REPOSITORY, manifest["config"]["digest"]))
    layer = gzip.decompress(api.blob(REPOSITORY, manifest["layers"][-1]["digest"]))
    assert model_image.sha256_digest(layer) == config["rootfs"]["diff_ids"][-1]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        files = {
            member.name: tar.extractfile(member).read() for member in tar.getmembers() if member.isfile()
        }  # type: ignore[union-attr]
    return manifest, config, files


def test_a_new_version_replaces_only_the_model_and_its_labels(
    model_image: ModuleType, registry: Registry, site: SiteCredentials
) -> None:
    api = client(model_image, registry, site)
    template = push_template(model_image, api)
    model = b"new encodings " * 100
    result = model_image.push_model_image(api, REPOSITORY, "2612051330", model, created=CREATED)
    assert result.changed
    assert result.digest == registry.manifest_digest(REPOSITORY, "2612051330")
    manifest, config, files = pulled(model_image, api, "2612051330")
    assert files == {"bin/copy-model": COPY_MODEL, "opt/model/model.data": model}
    # The base is the template's, not sent again: the push is about the model's size.
    assert manifest["layers"][:-1] == template["layers"][:-1]
    assert result.pushed_bytes < len(model) + 2048
    sha = hashlib.sha256(model).hexdigest()
    labels = config["config"]["Labels"]
    assert labels["io.edgeai.model.version"] == labels["org.opencontainers.image.version"] == "2612051330"
    assert labels["io.edgeai.model.sha256"] == sha
    assert "io.edgeai.build.inputs" not in labels
    assert (
        f"MODEL_SHA256={sha}" in config["config"]["Env"]
        and "MODEL_VERSION=2612051330" in config["config"]["Env"]
    )
    assert config["config"]["Entrypoint"] == ["/bin/copy-model"] and config["config"]["User"] == "65534"
    assert config["created"] == "2026-12-05T13:30:00Z"


def test_the_same_model_gives_the_same_digest_on_every_registry_and_a_rerun_changes_nothing(
    model_image: ModuleType, registry: Registry, site: SiteCredentials
) -> None:
    model = b"the fleet's model"
    digests = []
    with Registry(site=site) as other:
        for server in (registry, other):
            api = client(model_image, server, site)
            push_template(model_image, api)
            digests.append(model_image.push_model_image(api, REPOSITORY, "v2", model, created=CREATED).digest)
        assert digests[0] == digests[1]
        again = model_image.push_model_image(
            client(model_image, other, site), REPOSITORY, "v2", model, created=CREATED
        )
    assert not again.changed and again.digest == digests[0] and again.pushed_bytes == 0


def test_a_version_naming_another_model_is_refused(
    model_image: ModuleType, registry: Registry, site: SiteCredentials
) -> None:
    api = client(model_image, registry, site)
    push_template(model_image, api)
    model_image.push_model_image(api, REPOSITORY, "v3", b"first", created=CREATED)
    with pytest.raises(model_image.RegistryError, match="already names another model") as refused:
        model_image.push_model_image(api, REPOSITORY, "v3", b"second", created=CREATED)
    assert refused.value.reason == "refused"


def test_a_template_whose_last_layer_holds_more_than_the_model_is_refused_naming_the_files(
    model_image: ModuleType, registry: Registry, site: SiteCredentials
) -> None:
    api = client(model_image, registry, site)
    push_template(model_image, api, tag="odd", extra={"etc/passwd": b"root:x:0:0\n"})
    with pytest.raises(model_image.RegistryError, match="etc/passwd") as refused:
        model_image.push_model_image(api, REPOSITORY, "v4", b"model", template="odd")
    assert refused.value.reason == "not_a_model_image"
    assert registry.manifest_digest(REPOSITORY, "v4") is None


def test_a_missing_template_names_what_pushes_it(
    model_image: ModuleType, registry: Registry, site: SiteCredentials
) -> None:
    with pytest.raises(model_image.RegistryError, match=r"deploy\.yml pushes it") as refused:
        model_image.push_model_image(client(model_image, registry, site), REPOSITORY, "v5", b"model")
    assert refused.value.reason == "template_missing"


def test_a_wrong_password_is_refused_without_showing_it(
    model_image: ModuleType, registry: Registry, site: SiteCredentials
) -> None:
    with pytest.raises(model_image.RegistryError) as refused:
        model_image.push_model_image(
            client(model_image, registry, site, password="not-it-42"), REPOSITORY, "v6", b"m"
        )
    assert refused.value.reason == "credentials_refused"
    assert "not-it-42" not in str(refused.value) and site.password not in str(refused.value)


def test_the_module_pushes_checks_and_reports(
    model_image: ModuleType, registry: Registry, site: SiteCredentials, tmp_path: Path
) -> None:
    push_template(model_image, client(model_image, registry, site))
    model_file = tmp_path / "model.data"
    model_file.write_bytes(b"module model")
    arguments = {
        "registry_url": f"https://{registry.host}",
        "tag": "v7",
        "model_file": str(model_file),
        "sha256": hashlib.sha256(b"module model").hexdigest(),
        "created": "1796563800",
        "username": site.USER,
        "password": site.password,
        "ca_path": str(site.ca_file),
    }
    checked = run_module(tmp_path, "edgeai.appliance.model_image", arguments, check_mode=True)
    assert checked["changed"] and not checked.get("failed"), checked
    assert registry.manifest_digest(REPOSITORY, "v7") is None

    pushed = run_module(tmp_path, "edgeai.appliance.model_image", arguments)
    assert pushed["changed"] and pushed["digest"] == checked["digest"] == registry.manifest_digest(
        REPOSITORY, "v7"
    )
    assert site.password not in pushed["output"]

    wrong = run_module(
        tmp_path, "edgeai.appliance.model_image", {**arguments, "tag": "v8", "sha256": "0" * 64}
    )
    assert wrong["failed"] and wrong["reason"] == "checksum" and "0000000000" in wrong["msg"]
