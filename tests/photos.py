"""Real face photos for the tests, fetched once and cached, never committed.

The face_recognition 1.3.0 source distribution ships `tests/test_images/`: obama.jpg,
obama2.jpg, obama3.jpg, obama_partial_face*.jpg, biden.jpg, 32bit.png — two people, one face
each. We fetch that sdist with pip (the package index is reachable where PyPI is) and unpack
only the images into a cache directory.

    python tests/photos.py          # fetch (if needed) and print the directory
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "face_recognition==1.3.0"
MEMBER_PREFIX = "face_recognition-1.3.0/tests/test_images/"
EXPECTED = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")


def cache_dir() -> Path:
    base = os.environ.get("EDGEAI_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "edgeai-appliance"
    )
    return Path(base) / "face-samples"


def sample_photos_dir() -> Path:
    """Return the directory of sample photos, downloading the sdist on first use."""
    target = cache_dir()
    if all((target / name).is_file() for name in EXPECTED):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                tmp,
                SDIST,
            ],
            check=True,
        )
        (sdist,) = Path(tmp).glob("face_recognition-*.tar.gz")
        staging = Path(tmp) / "images"
        staging.mkdir()
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name.startswith(MEMBER_PREFIX):
                    name = Path(member.name).name
                    source = archive.extractfile(member)
                    assert source is not None
                    (staging / name).write_bytes(source.read())
        missing = [name for name in EXPECTED if not (staging / name).is_file()]
        if missing:
            raise RuntimeError(f"{sdist.name} lacks the sample photos {missing}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(staging, target)
    return target


if __name__ == "__main__":
    print(sample_photos_dir())
