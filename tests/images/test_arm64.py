"""The CPU webapp image for arm64 (a Jetson or any arm64 board without the L4T image), built and
run on this machine under qemu emulation: the face stack from the aarch64 wheels works.

Built offline with its own prefix (never the product tags other tests run), once per session;
cached layers make a second build quick. Skipped only where the kernel cannot run arm64
binaries (binfmt_misc cannot be mounted or qemu's handler cannot be registered)."""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import build_images, image_config, podman

pytestmark = pytest.mark.slow

PREFIX = "localhost/edgeai-arm64-test/arm64"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
HANDLER = "qemu-aarch64"


def arm64_emulation_problem() -> str | None:
    """None when arm64 binaries run here (natively, or qemu's binfmt handler is registered, which
    this registers as scripts/setup.sh does when it can); otherwise why they cannot."""
    if platform.machine() == "aarch64":
        return None
    handler = BINFMT / HANDLER
    if handler.exists():
        if not handler.read_text().startswith("enabled"):
            try:
                handler.write_text("1")
            except OSError as error:
                return f"{handler} is disabled and cannot be enabled: {error}"
        return None
    if not (BINFMT / "register").exists():
        command = ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)]
        mount = subprocess.run(command, capture_output=True, text=True, check=False)
        if mount.returncode != 0:
            return f"binfmt_misc cannot be mounted on {BINFMT}: {mount.stderr.strip()}"
    conf = Path(f"/usr/lib/binfmt.d/{HANDLER}.conf")
    if not conf.is_file():
        return f"no {conf}: install qemu-user-static (scripts/setup.sh does)"
    try:
        (BINFMT / "register").write_text(conf.read_text())
    except OSError as error:
        return f"cannot register {HANDLER} with binfmt_misc: {error}"
    return None


@pytest.fixture(scope="module")
def arm64_webapp(repo_root: Path) -> str:
    """The arm64 webapp image (scripts/build-images.sh --arch arm64 --offline-base); prints how
    long the build took, the CI cost of this module."""
    problem = arm64_emulation_problem()
    if problem:
        pytest.skip(f"arm64 emulation unavailable: {problem}")
    started = time.monotonic()
    stdout = build_images(
        repo_root, "--offline-base", "--arch", "arm64", "--prefix", PREFIX, "webapp", timeout=3600
    )
    match = re.search(r"^==> (\S+/webapp:\S+): (built|unchanged)", stdout, re.MULTILINE)
    assert match, stdout
    print(f"arm64 webapp image: {match[2]} in {time.monotonic() - started:.0f} s")
    return match[1]


def test_arm64_webapp_is_an_arm64_image_with_oci_labels(arm64_webapp: str) -> None:
    (record,) = json.loads(podman("image", "inspect", arm64_webapp).stdout)
    assert record["Architecture"] == "arm64"
    labels = image_config(arm64_webapp)["Labels"]
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.version"] == arm64_webapp.rsplit(":", 1)[1]
    # Built from a git checkout here; an installed collection's builds carry no revision label.
    assert re.fullmatch(r"[0-9a-f]{40}", labels["org.opencontainers.image.revision"])


def test_arm64_webapp_runs_edgeface_on_aarch64(arm64_webapp: str) -> None:
    version = podman("run", "--rm", "--platform", "linux/arm64", arm64_webapp, "--version", timeout=300)
    assert version.stdout.strip() == f"edgeface {arm64_webapp.rsplit(':', 1)[1]}"
    machine = podman("run", "--rm", "--platform", "linux/arm64", "--entrypoint", "uname", arm64_webapp, "-m")
    assert machine.stdout.strip() == "aarch64"


def test_arm64_webapp_recognises_a_sample_photo(
    arm64_webapp: str, model_file: Path, sample_photos: Path, tmp_path: Path
) -> None:
    shutil.copy(model_file, tmp_path / "model.data")
    shutil.copy(sample_photos / "obama2.jpg", tmp_path / "obama2.jpg")
    tmp_path.chmod(0o755)  # readable by the image's user (10001)
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    started = time.monotonic()
    result = podman(
        *("run", "--rm", "--platform", "linux/arm64", "--network", "none", "-v", f"{tmp_path}:/work:ro"),
        *(arm64_webapp, "recognize", "/work/obama2.jpg", "--model", "/work/model.data", "--json"),
        timeout=600,
    )
    print(f"edgeface recognize under arm64 emulation: {time.monotonic() - started:.1f} s")
    report = json.loads(result.stdout)
    assert [face["name"] for face in report["faces"]] == ["Barack Obama"]
