"""`edgeface serve` as a container runs it: PID 1 of its own PID namespace (`unshare`), stopped by a
signal; and a port already in use."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from servers import free_port, stop_process, wait_until

pytestmark = pytest.mark.slow

SERVE = [sys.executable, "-m", "edgeface", "serve", "--host", "127.0.0.1"]


def children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux keeps the list per thread)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def serve_env(video: Path, model: Path, port: int) -> dict[str, str]:
    environ = dict(os.environ, VIDEO_STREAM_URL=str(video), MODEL_FILENAME=str(model), WEB_PORT=str(port))
    return dict(environ, WEB_AUTH="off")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_as_pid_1_stops_on_a_signal_within_2_s_leaving_no_process(
    stop_signal: signal.Signals, video: Path, obama_model: Path, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        namespace = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", *SERVE],
            env=serve_env(video, obama_model, port),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: readyz(port) == 200, 120, "/readyz 200 (both workers up)")
        (serve,) = children(namespace.pid)  # PID 1 inside the namespace
        workers = children(serve)
        assert len(workers) == 2
        (nspid,) = [
            line
            for line in Path(f"/proc/{serve}/status").read_text().splitlines()
            if line.startswith("NSpid:")
        ]
        assert nspid.split()[-1] == "1"  # its pid in its own namespace

        sent = time.monotonic()
        os.kill(serve, stop_signal)
        code = namespace.wait(timeout=30)
        seconds = time.monotonic() - sent
    finally:
        stop_process(namespace, signal.SIGKILL)

    text = log.read_text()
    print(f"{stop_signal.name} to exit as PID 1: {seconds:.2f} s")
    assert code == 0, text
    assert seconds < 2.0, text
    assert "every inference worker exited" in text, text
    assert not [pid for pid in [serve, *workers] if Path(f"/proc/{pid}").exists()]


def test_a_port_in_use_exits_non_zero_naming_it_and_starts_nothing(video: Path, tmp_path: Path) -> None:
    model = tmp_path / "unique-model-name.data"  # no process may ever name it
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*SERVE, "--port", str(port)],
            env=serve_env(video, model, port),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert result.returncode == 1
    assert f"edgeface serve: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "model not loaded" not in result.stderr  # no inference worker was started
    running = [pid for pid in os.listdir("/proc") if pid.isdigit() and str(model) in _cmdline(int(pid))]
    assert running == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
