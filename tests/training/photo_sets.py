"""Build small photo folders for training tests from existing photos."""

from __future__ import annotations

import shutil
from pathlib import Path


def photo_folder_of(root: Path, files: dict[str, Path]) -> Path:
    """Copy each source photo to `root/<relative name>` (creating `Name/` folders); return root."""
    for relative, source in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    return root
