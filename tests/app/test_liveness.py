"""/healthz tells the truth: a dead inference worker or a wedged loop answers 503 naming it; an idle
stream does not; a worker that does not start in time is given up."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from edgeface.config import AppConfig
from edgeface.inference import InferenceError, InferenceWorker
from edgeface.pipeline import Pipeline
from edgeface.web import create_app
from servers import wait_until

from .conftest import config_without_stream

pytestmark = pytest.mark.slow


def health(client: FlaskClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/healthz")
    return response.status_code, response.get_json()


@pytest.fixture(scope="module")
def running(video: Path, obama_model: Path) -> Iterator[tuple[Pipeline, FlaskClient]]:
    config = AppConfig(
        model_filename=obama_model, video_stream_url=str(video), video_processing_fps=2, web_auth=False
    )
    pipeline = Pipeline(config)
    client = create_app(config, pipeline).test_client()
    pipeline.start()
    try:
        wait_until(lambda: client.get("/readyz").status_code == 200, 120, "both workers up")
        yield pipeline, client
    finally:
        pipeline.stop()


def test_healthz_is_ok_while_every_loop_progresses(running: tuple[Pipeline, FlaskClient]) -> None:
    _, client = running
    assert health(client) == (200, {"status": "ok"})


def test_a_killed_inference_worker_turns_healthz_503_naming_it(
    running: tuple[Pipeline, FlaskClient],
) -> None:
    pipeline, client = running
    wait_until(lambda: health(client)[0] == 200, 60, "a healthy app")
    pid = pipeline.workers[1].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    code, body = wait_until(lambda: (h := health(client))[0] == 503 and h, 5, "/healthz 503", interval=0.05)
    assert code == 503 and body["status"] == "unhealthy"
    assert any(problem.startswith("inference-1: ") and "SIGKILL" in problem for problem in body["problems"])
    # The pipeline restarts the worker: healthy again once the new one has said hello.
    wait_until(lambda: health(client)[0] == 200, 90, "/healthz 200 after the restart")
    status = client.get("/api/status").get_json()
    assert status["recognition"]["worker_restarts"] == 1
    assert pipeline.workers[1].pid != pid


def test_a_wedged_display_loop_turns_healthz_503_naming_it(running: tuple[Pipeline, FlaskClient]) -> None:
    pipeline, client = running
    wait_until(lambda: health(client)[0] == 200, 90, "a healthy app")
    # The display reads the faces to draw on every frame through the view's lock: held, the loop
    # hangs as a deadlock would hang it. The inference loops show their faces through that lock
    # too, and a follow that needed no worker (faces held still) has a deadline only a little
    # later than the display's: they may be named with it. The capture and the workers go on.
    with pipeline.view.lock:
        _, body = wait_until(lambda: (h := health(client))[0] == 503 and h, 10, "/healthz 503")
    named = {problem.split(":")[0]: problem for problem in body["problems"]}
    assert "display" in named and set(named) <= {"display", "follow", "scan"}
    assert "stuck" in named["display"]
    wait_until(lambda: health(client)[0] == 200, 10, "/healthz 200 once the display moves again")


def test_no_stream_is_healthy_and_ready(obama_model: Path) -> None:
    """Nothing listens at the stream's address: the capture loop backs off and retries, which is
    progress, not a stuck loop."""
    config = config_without_stream(obama_model)
    pipeline = Pipeline(config)
    client = create_app(config, pipeline).test_client()
    pipeline.start()
    try:
        wait_until(lambda: client.get("/readyz").status_code == 200, 120, "the worker up")
        idle_until = time.monotonic() + 8  # past the backoff's 2 s steps and the liveness grace
        while time.monotonic() < idle_until:
            assert health(client) == (200, {"status": "ok"})
            time.sleep(0.5)
        assert client.get("/api/status").get_json()["source"]["state"] == "no signal"
    finally:
        pipeline.stop()


def test_a_worker_that_does_not_start_in_time_is_stopped(obama_model: Path) -> None:
    worker = InferenceWorker(AppConfig(model_filename=obama_model), start_timeout=0.05)

    with pytest.raises(InferenceError, match=r"did not start within 0\.05 s"):
        worker.start()
    assert worker.pid is None  # the process was stopped, not left loading
