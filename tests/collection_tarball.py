"""The collection tarball: build it, and check that it holds what an installed collection needs
and nothing of the checkout's development files (galaxy.yml's build_ignore).

    python tests/collection_tarball.py [OUTPUT_DIR]    # what `make collection` runs

Prints the tarball's path, size and file count; exits 1 naming each problem.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Paths (files, or folders holding at least one file) every tarball must have.
ESSENTIAL = (
    "MANIFEST.json",
    "FILES.json",
    "README.md",
    "LICENSE",
    "CHANGELOG.rst",
    "changelogs/changelog.yaml",
    "meta/runtime.yml",
    "playbooks/site.yml",
    "plugins/modules",
    "plugins/module_utils",
    "plugins/filter",
    "roles",
    # What the images role builds from.
    "app/pyproject.toml",
    "app/src/edgeface",
    "images",
    "scripts/build-images.sh",
    "scripts/push-images.sh",
    "requirements.txt",
)

# What must never ship, with the reason shown when it does.
JUNK = (
    (r"(^|/)\.", "a dotfile or dot-folder"),
    (r"(^|/)(build|dist)(/|$)", "build output"),
    (r"\.egg-info(/|$)", "Python packaging metadata"),
    (r"(^|/)__pycache__(/|$)|\.py[co]$", "compiled Python"),
    (r"\.tar\.gz$", "a built artifact"),
    (r"^(benchmarks|e2e|molecule)(/|$)", "development only"),
    (r"^tests/(?!sanity(/ignore-[0-9.]+\.txt)?$)", "a test file (only tests/sanity/ignore-*.txt ships)"),
    (r"^changelogs/fragments(/|$)", "an unreleased changelog fragment"),
    (r"^inventories/[^/]+/credentials(/|$)", "generated site credentials"),
    (r"^(Makefile|pyproject\.toml|ansible\.cfg|site\.yml|CONTRIBUTING\.md)$", "checkout tooling"),
)


def ansible_galaxy() -> str:
    """The ansible-galaxy beside this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "ansible-galaxy"
    return str(beside) if beside.exists() else shutil.which("ansible-galaxy") or "ansible-galaxy"


def build(output_dir: Path, source: Path = ROOT) -> Path:
    """Build the collection from `source` into `output_dir`; return the tarball's path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [ansible_galaxy(), "collection", "build", "--force", "--output-path", str(output_dir), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    (tarball,) = sorted(output_dir.glob("edgeai-appliance-*.tar.gz"))
    return tarball


def members(tarball: Path) -> list[str]:
    """The tarball's paths, folders without their trailing slash."""
    with tarfile.open(tarball) as tar:
        return sorted(name.rstrip("/") for name in tar.getnames())


def source_entries(source: Path, folder: str, pattern: str) -> list[str]:
    """Paths under `folder` of the checkout that the tarball must carry too (e.g. every role)."""
    return sorted(str(path.relative_to(source)) for path in (source / folder).glob(pattern))


def problems(names: list[str], source: Path = ROOT) -> list[str]:
    """Every junk path in `names` and every essential path missing from it, one message each."""
    found = []
    for name in names:
        for pattern, why in JUNK:
            if re.search(pattern, name):
                found.append(f"{name}: {why}")
                break
    present = set(names)
    needed = [*ESSENTIAL]
    # Every role, playbook and plugin of the checkout, so a pattern that ignores too much shows.
    needed += source_entries(source, "roles", "*/meta/main.yml")
    needed += source_entries(source, "roles", "*/tasks/main.yml")
    needed += source_entries(source, "playbooks", "*.yml")
    needed += [p for p in source_entries(source, "plugins", "*/*.py") if "__pycache__" not in p]
    for path in needed:
        if path not in present and not any(name.startswith(path + "/") for name in present):
            found.append(f"{path}: missing")
    return found


def main(argv: list[str]) -> int:
    output_dir = Path(argv[0]) if argv else ROOT / "build"
    tarball = build(output_dir)
    names = members(tarball)
    with tarfile.open(tarball) as tar:
        files = sum(member.isfile() for member in tar.getmembers())
    print(f"{tarball}: {tarball.stat().st_size / 1024:.0f} KiB, {files} files")
    found = problems(names)
    for problem in found:
        print(f"  {problem}", file=sys.stderr)
    if found:
        print(f"{len(found)} problem(s) in {tarball.name}: fix galaxy.yml's build_ignore", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
