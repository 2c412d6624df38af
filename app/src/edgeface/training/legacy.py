"""Legacy models: the only place a pickle is ever read, and only behind an explicit flag."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from edgeface.model import ENCODING_SIZE
from edgeface.training.values import TrainingError

_LEGACY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _LegacyUnpickler(pickle.Unpickler):
    """Even a trusted pickle may only rebuild numpy arrays, lists, dicts and strings."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _LEGACY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are expected)")
        return super().find_class(module, name)


def read_legacy_model(path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """Encodings (N, 128) and names from the original demo's pickled `model.data`.

    Accepted shapes: `(encodings, names)` (names as strings or `{"name": ...}` records, as the
    seed's two trainers wrote them), `{"encodings": [...], "names": [...]}`, and a list of
    `(name, encoding)` pairs.
    """
    try:
        with path.open("rb") as handle:
            content = _LegacyUnpickler(handle).load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as error:
        raise TrainingError(f"{path}: cannot read the legacy model ({error})") from error
    if isinstance(content, dict) and "encodings" in content and "names" in content:
        encodings, names = content["encodings"], content["names"]
    elif isinstance(content, list | tuple) and content and all(_is_name_pair(item) for item in content):
        names, encodings = [item[0] for item in content], [item[1] for item in content]
    elif isinstance(content, list | tuple) and len(content) == 2:
        encodings, names = content
    else:
        raise TrainingError(f"{path}: not a known legacy model shape ({type(content).__name__})")
    names = [str(name.get("name", "")) if isinstance(name, dict) else str(name) for name in names]
    try:
        array = np.asarray(encodings, dtype=np.float64).reshape(-1, ENCODING_SIZE)
    except ValueError as error:
        raise TrainingError(f"{path}: encodings are not 128-d vectors ({error})") from error
    if len(array) != len(names):
        raise TrainingError(f"{path}: {len(array)} encodings but {len(names)} names")
    return array, tuple(names)


def _is_name_pair(item: object) -> bool:
    return isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str)
