"""HTTP: the Flask application factory. Routes read the pipeline's state; none of them starts work.

/             page: live stream, who is on screen, model version, fps
/video_feed   MJPEG (multipart/x-mixed-replace), the shared encoded frames
/api/status   JSON: model version and people, tolerance in use, input fps, recognition rate, last detections
/healthz      503 naming the loop that is stuck or dead (capture, inference-N, display, mjpeg-writer)
              or the worker process that died, so that the pod is restarted (a missing stream is not one)
/readyz       503 with the reasons while the model is missing/corrupt (a missing stream is not one)
/metrics      Prometheus text format
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edgeface import __version__
from edgeface.broadcaster import MIMETYPE
from edgeface.config import AppConfig, load_config
from edgeface.pipeline import Pipeline

EXTENSION = "edgeface"
VIDEO_FEED = "/video_feed"  # the MJPEG route; edgeface.server serves its GETs itself


def create_app(config: AppConfig | None = None, pipeline: Pipeline | None = None) -> Flask:
    """Build the app around one pipeline (built here unless given). Nothing is started: whoever
    serves the app starts the pipeline (`pipeline_of(app).start()`) and stops it."""
    config = config or load_config()
    logging.getLogger("edgeface").setLevel(config.log_level_number)
    if pipeline is None:
        pipeline = Pipeline(config)
    app = Flask(__name__)
    app.extensions[EXTENSION] = pipeline

    @app.get("/")
    def index() -> str:
        return render_template("index.html", status=pipeline.status(), version=__version__)

    @app.get(VIDEO_FEED)
    def video_feed() -> Response:
        # Under `edgeface serve` a GET never gets here (edgeface.server hands it to the broadcaster).
        if request.method == "HEAD":  # the head only: an endless body would hold a thread
            return Response(mimetype=MIMETYPE, headers={"Cache-Control": "no-store"})
        response = Response(pipeline.broadcaster.stream(), mimetype=MIMETYPE)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/api/status")
    def api_status() -> Response:
        return jsonify(pipeline.status())

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, Any], int]:
        problems = pipeline.health()
        if problems:
            return {"status": "unhealthy", "problems": problems}, 503
        return {"status": "ok"}, 200

    @app.get("/readyz")
    def readyz() -> tuple[dict[str, Any], int]:
        reasons = pipeline.readiness()
        return ({"ready": not reasons, "reasons": reasons}, 503 if reasons else 200)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(pipeline.registry), mimetype=CONTENT_TYPE_LATEST)

    return app


def pipeline_of(app: Flask) -> Pipeline:
    pipeline: Pipeline = app.extensions[EXTENSION]
    return pipeline
