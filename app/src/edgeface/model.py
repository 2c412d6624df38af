"""The model file `model.data`: face encodings, their names and a JSON metadata record.

It is an `.npz` archive (numpy's zip of `.npy` arrays), never a pickle:

    encodings  float64 (N, 128)   one row per training photo
    names      unicode (N,)       the person of each row, fixed-width
    metadata   unicode (1,)       one JSON object: format, version, created, people, ...
    sha256     unicode (1,)       hex digest of `content_digest(...)` over the three above

Loading reads the arrays with `allow_pickle=False`, so nothing in the file is ever executed,
and recomputes the digest, so a truncated or altered file is refused instead of half-used.

Before anything is inflated, the zip's central directory is read: a file whose members would
inflate beyond `MAX_INFLATED_BYTES` (64 MiB) is refused. That is room for ~20,000 training photos
(1 KiB of float64 each, plus their names and metadata record, both stored as UTF-32); the models
of a site are a few hundred rows. Without the check, a small compressed file (a "zip bomb": 2 GiB
of zeros deflate to 2 MiB) is inflated whole in every inference worker. zipfile never inflates a
member past the size its directory entry declares, so the declared sizes bound the memory used.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "edgeface-model"
FORMAT_VERSION = 1
ENCODING_SIZE = 128
_ARRAYS = ("encodings", "names", "metadata", "sha256")
MAX_INFLATED_BYTES = 64 * 1024 * 1024
"""Largest total size of a model file's inflated members (see the module's docstring)."""
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"  # protocol 2+ pickles start with PROTO (0x80)


class ModelError(ValueError):
    """The model file cannot be used; the message names the file and the reason."""


@dataclass(frozen=True, eq=False)
class FaceModel:
    """Known faces: `encodings[i]` is a photo of `names[i]`.

    encodings: (N, 128) float64, read-only; names: N strings; metadata: the JSON record.
    """

    encodings: np.ndarray
    names: tuple[str, ...]
    metadata: dict[str, Any]

    def __post_init__(self) -> None:
        encodings = np.array(self.encodings, dtype=np.float64, copy=True).reshape(-1, ENCODING_SIZE)
        if len(encodings) != len(self.names):
            raise ValueError(f"{len(encodings)} encodings but {len(self.names)} names")
        for name in self.names:
            if not isinstance(name, str) or not name.strip() or "\x00" in name:
                raise ValueError(f"invalid person name {name!r}")
        if not np.all(np.isfinite(encodings)):
            raise ValueError("encodings contain NaN or infinity")
        encodings.setflags(write=False)
        object.__setattr__(self, "encodings", encodings)
        object.__setattr__(self, "names", tuple(self.names))

    @property
    def version(self) -> str:
        """The model version, `YYMMDDHHMM` (UTC) unless one was given at training."""
        return str(self.metadata.get("version", ""))

    @property
    def people(self) -> tuple[str, ...]:
        """Sorted unique names."""
        return tuple(sorted(set(self.names)))

    def __len__(self) -> int:
        return len(self.names)


def new_version(now: datetime | None = None) -> str:
    """A model version from the clock: `YYMMDDHHMM` in UTC (the seed's image tag format)."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%y%m%d%H%M")


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC timestamp with seconds, e.g. `2024-05-01T12:30:00Z`."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def metadata_json(metadata: dict[str, Any]) -> str:
    """The canonical JSON text of a metadata record (sorted keys, UTF-8, no NaN)."""
    return json.dumps(metadata, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def content_digest(encodings: np.ndarray, names: tuple[str, ...], metadata_text: str) -> str:
    """sha256 hex over the model's content, independent of the zip container's bytes.

    Each part is length-prefixed so that bytes cannot move from one part to the next.
    """
    digest = hashlib.sha256(FORMAT.encode())
    parts = (
        np.ascontiguousarray(encodings, dtype="<f8").tobytes(),
        json.dumps(list(names), ensure_ascii=False).encode(),
        metadata_text.encode(),
    )
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def save_model(model: FaceModel, path: str | os.PathLike[str]) -> str:
    """Write `model` to `path` atomically (temp file + rename); return the file's sha256 hex.

    The metadata's `format` and `format_version` are set here. A reader never sees a partial
    file: either the old file or the complete new one.
    """
    target = Path(path)
    metadata = {**model.metadata, "format": FORMAT, "format_version": FORMAT_VERSION}
    text = metadata_json(metadata)
    names = np.array(model.names, dtype=str) if model.names else np.zeros(0, dtype="<U1")
    buffer = io.BytesIO()
    np.savez(
        buffer,
        encodings=model.encodings,
        names=names,
        metadata=np.array([text]),
        sha256=np.array([content_digest(model.encodings, model.names, text)]),
    )
    data = buffer.getvalue()
    atomic_write_bytes(target, data)
    return hashlib.sha256(data).hexdigest()


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Replace `target` with `data` in one rename; the temp file lives in the same directory."""
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


def load_model(path: str | os.PathLike[str], expected_sha256: str | None = None) -> FaceModel:
    """Read and verify a model file; raise ModelError naming `path` and the reason.

    Refused: a missing file, a file whose sha256 is not `expected_sha256` (MODEL_SHA256, lowercase
    hex of the whole file, as `sha256sum` prints it; checked first, before anything is parsed),
    a pickle (the original demo's format), anything not an npz, a truncated archive, arrays of
    the wrong type or shape, and a mismatch of the content digest stored inside.
    """
    source = Path(path)
    try:
        with source.open("rb") as handle:
            head = handle.read(4)
            if expected_sha256 is not None:
                handle.seek(0)
                actual = hashlib.file_digest(handle, "sha256").hexdigest()
                if actual != expected_sha256.lower():
                    raise ModelError(
                        f"{source}: file sha256 {actual} is not MODEL_SHA256 {expected_sha256.lower()};"
                        " refusing to load it"
                    )
    except OSError as error:
        raise ModelError(f"{source}: cannot read model file ({error.strerror or error})") from error
    if not head.startswith(_ZIP_MAGIC):
        if head.startswith(_PICKLE_MAGIC):
            reason = "is a pickle (the original demo's format); refusing to load it"
            reason += " — convert it once with `edgeface convert-legacy` if you trust it"
        elif not head:
            reason = "is empty"
        else:
            reason = "is not an edgeface model (not an npz archive)"
        raise ModelError(f"{source}: {reason}")
    _check_inflated_size(source)
    try:
        with np.load(source, allow_pickle=False) as archive:
            missing = [key for key in _ARRAYS if key not in archive.files]
            if missing:
                raise ModelError(f"{source}: not an edgeface model (missing {', '.join(missing)})")
            arrays = {key: archive[key] for key in _ARRAYS}
    except ModelError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
        raise ModelError(f"{source}: damaged or truncated model file ({error})") from error
    return _model_from_arrays(source, arrays)


def _check_inflated_size(source: Path) -> None:
    """Refuse, from the zip's central directory alone, a file that would inflate too far."""
    try:
        with zipfile.ZipFile(source) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ModelError(f"{source}: damaged or truncated model file ({error})") from error
    inflated = sum(member.file_size for member in members)
    if inflated > MAX_INFLATED_BYTES:
        largest = max(members, key=lambda member: member.file_size)
        raise ModelError(
            f"{source}: refusing to inflate {_mib(inflated)} from {_mib(source.stat().st_size)} on disk"
            f" ({largest.filename}: {_mib(largest.file_size)}); an edgeface model inflates to at most"
            f" {_mib(MAX_INFLATED_BYTES)}"
        )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _model_from_arrays(source: Path, arrays: dict[str, np.ndarray]) -> FaceModel:
    encodings, names, metadata_array, digest_array = (arrays[key] for key in _ARRAYS)
    if encodings.dtype != np.float64 or encodings.ndim != 2 or encodings.shape[1] != ENCODING_SIZE:
        raise ModelError(f"{source}: encodings are {encodings.dtype} {encodings.shape}, not float64 (N, 128)")
    if names.dtype.kind != "U" or names.shape != (len(encodings),):
        raise ModelError(f"{source}: names are {names.dtype} {names.shape}, not {len(encodings)} strings")
    for key, array in (("metadata", metadata_array), ("sha256", digest_array)):
        if array.dtype.kind != "U" or array.shape != (1,):
            raise ModelError(f"{source}: {key} is {array.dtype} {array.shape}, not one string")
    text = str(metadata_array[0])
    name_tuple = tuple(str(name) for name in names)
    expected = str(digest_array[0])
    actual = content_digest(encodings, name_tuple, text)
    if actual != expected:
        raise ModelError(f"{source}: sha256 mismatch (stored {expected[:12]}…, content {actual[:12]}…)")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelError(f"{source}: metadata is not JSON ({error})") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelError(f"{source}: metadata does not declare format {FORMAT!r}")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{source}: format version {metadata.get('format_version')!r} is not supported"
            f" (this edgeface reads {FORMAT_VERSION})"
        )
    try:
        return FaceModel(encodings=encodings, names=name_tuple, metadata=metadata)
    except ValueError as error:
        raise ModelError(f"{source}: {error}") from error
