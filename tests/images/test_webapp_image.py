"""The CPU webapp image: non-root, `edgeface serve` by default, the face stack works inside it."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from servers import free_port

from .conftest import RunContainer, image_config, podman

pytestmark = pytest.mark.slow


def test_webapp_runs_edgeface_serve_as_a_non_root_user_without_healthcheck(
    built_images: dict[str, str],
) -> None:
    config = image_config(built_images["webapp"])
    assert config["User"] == "10001"
    assert config["Entrypoint"] == ["edgeface"]
    assert config["Cmd"] == ["serve"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert "Healthcheck" not in config
    assert "WEB_PORT=8080" in config["Env"]


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """podman options mounting a users file, as the webapp role's Secret does."""
    from edgeface.auth import user_line

    folder = tmp_path_factory.mktemp("webapp-auth")
    folder.chmod(0o755)  # the app runs as a non-root user
    (folder / "users").write_text(user_line("operator", "a password for the image test") + "\n")
    (folder / "users").chmod(0o644)
    return ["-v", f"{folder}:/etc/edgeface/auth:ro", "-e", "WEB_USERS_FILE=/etc/edgeface/auth/users"]


def test_webapp_refuses_to_serve_without_users(built_images: dict[str, str]) -> None:
    result = podman("run", "--rm", built_images["webapp"], check=False)
    assert result.returncode == 2
    assert "WEB_USERS_FILE" in result.stderr


def test_webapp_answers_healthz_on_its_exposed_port(
    built_images: dict[str, str], run_container: RunContainer, users: list[str]
) -> None:
    port = free_port()
    name = run_container(
        built_images["webapp"],
        options=[
            *("-p", f"127.0.0.1:{port}:8080", "-e", "VIDEO_STREAM_URL=rtmp://127.0.0.1:9/live/none"),
            *users,
        ],
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                assert response.status == 200
                break
        except OSError as error:
            if time.monotonic() > deadline:
                logs = podman("logs", name, check=False)
                raise AssertionError(
                    f"/healthz never answered: {error}\n{logs.stdout}{logs.stderr}"
                ) from error
            time.sleep(0.5)
    assert podman("exec", name, "id", "-u").stdout.strip() == "10001"


@pytest.mark.parametrize("init", [False, True], ids=["pid-1", "with-init"])
def test_podman_stop_of_a_running_webapp_takes_under_3_s(
    init: bool, built_images: dict[str, str], run_container: RunContainer, users: list[str]
) -> None:
    """`edgeface serve` handles SIGTERM itself: as PID 1 (no init) the kernel would otherwise
    drop the signal and podman would wait its 10 s and SIGKILL."""
    port = free_port()
    name = run_container(
        built_images["webapp"],
        options=[
            *(["--init"] if init else []),
            *("-p", f"127.0.0.1:{port}:8080", "-e", "VIDEO_STREAM_URL=rtmp://127.0.0.1:9/live/none"),
            *users,
        ],
    )
    wait_for_readyz(port, name)

    started = time.monotonic()
    podman("stop", "-t", "10", name)
    seconds = time.monotonic() - started

    state = podman("inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", name).stdout.split()
    logs = podman("logs", name, check=False)
    print(f"podman stop ({'with --init' if init else 'edgeface as PID 1'}): {seconds:.2f} s")
    assert seconds < 3.0, f"{logs.stdout}{logs.stderr}"
    assert state == ["0", "false"]  # exited by itself, not SIGKILLed (137)
    assert "every inference worker exited" in logs.stdout + logs.stderr


def wait_for_readyz(port: int, name: str, timeout: float = 120) -> None:
    """Until /readyz answers 200 (the model image is absent here: 503 "model not loaded" counts too,
    once the workers have started)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                return
        except urllib.error.HTTPError as error:
            if "model not loaded" in error.read().decode():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            logs = podman("logs", name, check=False)
            raise AssertionError(f"/readyz never settled\n{logs.stdout}{logs.stderr}")
        time.sleep(0.5)


def test_webapp_recognises_a_sample_photo(
    built_images: dict[str, str], model_file: Path, sample_photos: Path, tmp_path: Path
) -> None:
    shutil.copy(model_file, tmp_path / "model.data")
    shutil.copy(sample_photos / "obama2.jpg", tmp_path / "obama2.jpg")
    # Readable by the image's user (10001), as the model image's copy in a pod is.
    tmp_path.chmod(0o755)
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    result = podman(
        *("run", "--rm", "--network", "none", "-v", f"{tmp_path}:/work:ro"),
        *(built_images["webapp"], "recognize", "/work/obama2.jpg", "--model", "/work/model.data", "--json"),
    )
    report = json.loads(result.stdout)
    assert [face["name"] for face in report["faces"]] == ["Barack Obama"]
    assert report["model_version"] == "test-images"


def test_webapp_reports_a_missing_model_by_name(built_images: dict[str, str], sample_photos: Path) -> None:
    result = podman(
        *("run", "--rm", "--network", "none", "-v", f"{sample_photos}:/photos:ro"),
        *(built_images["webapp"], "recognize", "/photos/biden.jpg", "--model", "/model/absent.data"),
        check=False,
    )
    assert result.returncode == 2
    assert "/model/absent.data" in result.stderr
