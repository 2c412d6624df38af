"""The mosquitto_hash filter writes lines a real Mosquitto accepts, and the same line on every run."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import free_port, stop_process, wait_for_port

from .conftest import REPO_ROOT, load_by_path

FILTER = REPO_ROOT / "plugins" / "filter" / "mosquitto_hash.py"
SALT = "Zq8s1LmN0pXa"


def mosquitto_hash(password: str, salt: str) -> str:
    hashed: str = load_by_path("edgeai_appliance_mosquitto_hash", FILTER).mosquitto_hash(password, salt)
    return hashed


@pytest.fixture
def broker() -> Iterator[int]:
    """Mosquitto on loopback whose one user, edge, has the filter's hash of "correct horse"."""
    # Started as root, mosquitto reads its files as the mosquitto user: not under pytest's 0700 tmp.
    tmp_path = Path(tempfile.mkdtemp(prefix="mosquitto-hash-"))
    tmp_path.chmod(0o755)
    (tmp_path / "passwd").write_text(f"edge:{mosquitto_hash('correct horse', SALT)}\n")
    port = free_port()
    (tmp_path / "m.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {tmp_path / 'passwd'}\npersistence false\n"
    )
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    process = subprocess.Popen(["mosquitto", "-c", str(tmp_path / "m.conf")], stderr=subprocess.DEVNULL)
    wait_for_port(port)
    yield port
    stop_process(process)
    shutil.rmtree(tmp_path)


def publish(port: int, password: str) -> int:
    argv = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-u", "edge", "-P", password]
    argv += ["-t", "t", "-m", "m"]
    return subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode


def test_mosquitto_accepts_the_filters_hash_and_refuses_another_password(broker: int) -> None:
    assert publish(broker, "correct horse") == 0
    assert publish(broker, "correct horsE") != 0


def test_the_same_salt_gives_the_same_line_so_reruns_change_nothing() -> None:
    assert mosquitto_hash("a password", SALT) == mosquitto_hash("a password", SALT)
    assert mosquitto_hash("a password", SALT) != mosquitto_hash("a password", "other-salt12")
    assert mosquitto_hash("a password", SALT).startswith("$7$101$")


def test_a_salt_of_another_length_is_refused() -> None:
    with pytest.raises(ValueError, match="12 bytes"):
        mosquitto_hash("a password", "short")
