"""HTTP: the Flask application factory. Routes read the pipeline's state; none of them starts work.

/             page: live stream, who is on screen, model version, fps
/video_feed   MJPEG (multipart/x-mixed-replace) of the first camera, the shared encoded frames
/video_feed/<name>  the same, of camera <name> (404 for a camera the device does not have)
/api/status   JSON: model version and people, tolerance in use, where the detector runs, and per
              camera (`cameras`) input fps, recognition rate, last detections; the first camera's
              also at the top level
/healthz      503 naming the loop that is stuck or dead (capture, inference-N, display, mjpeg-writer)
              or the worker process that died, so that the pod is restarted (a missing stream is not one)
/readyz       503 with the reasons while the model is missing/corrupt or, with FACE_REQUIRE_CUDA=on, the
              detector runs on the CPU (a missing stream is not one); says where the detector runs
/api/recognize  POST a picture (the body, or one file of a form; at most 8 MiB): its faces, each
              as /api/status describes one (400 not a picture, 413 too large, 429 busy, 503 starting)
/metrics      Prometheus text format
/people, /api/people..., /api/tracks/<track>/enroll  who the model knows, and an operator's
              changes (edgeface.web_people)
/login        the login form (GET) and the login (POST); /logout (POST) ends the session

Every route passes edgeface.auth's one check first (edgeface.login.install): without a credential
the page redirects to /login and the others answer 401; /healthz, /readyz and /login are open.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, Response, abort, jsonify, render_template, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edgeface import __version__
from edgeface.auth import Authoriser, load_authoriser
from edgeface.broadcaster import MIMETYPE
from edgeface.config import AppConfig, load_config
from edgeface.login import install
from edgeface.people import open_people_store
from edgeface.picture import PictureError, decode_picture
from edgeface.pipeline import Pipeline
from edgeface.status import detection_status, detector_status
from edgeface.uploads import uploaded_picture
from edgeface.web_people import people_routes

EXTENSION = "edgeface"
AUTH_EXTENSION = "edgeface-auth"
CONFIG_EXTENSION = "edgeface-config"
VIDEO_FEED = "/video_feed"  # the MJPEG routes (and /<name>); edgeface.server serves their GETs itself
PICTURES_AT_ONCE = 2  # uploads recognised at the same time; one more is answered 429


def stream_path(path: str) -> tuple[bool, str | None]:
    """Whether `path` asks for a camera's stream, and which: None for /video_feed (the first), its
    name for /video_feed/<name>."""
    if path == VIDEO_FEED:
        return True, None
    name = path.removeprefix(f"{VIDEO_FEED}/")
    if name != path and name and "/" not in name:
        return True, name
    return False, None


def create_app(
    config: AppConfig | None = None, pipeline: Pipeline | None = None, authoriser: Authoriser | None = None
) -> Flask:
    """Build the app around one pipeline and one authoriser (built here from `config` unless
    given: ConfigError naming the variable when the users, tokens or secret files are unusable).
    Nothing is started: whoever serves the app starts the pipeline (`pipeline_of(app).start()`)
    and stops it."""
    config = config or load_config()
    logging.getLogger("edgeface").setLevel(config.log_level_number)
    if authoriser is None:
        authoriser = load_authoriser(config)
    if pipeline is None:
        pipeline = Pipeline(config)
    app = Flask(__name__)
    app.extensions[EXTENSION] = pipeline
    app.extensions[AUTH_EXTENSION] = authoriser
    app.extensions[CONFIG_EXTENSION] = config
    install(app, authoriser)
    app.register_blueprint(people_routes(pipeline, open_people_store(config), config))

    @app.get("/")
    def index() -> str:
        return render_template("index.html", status=pipeline.status(), version=__version__)

    @app.get(VIDEO_FEED)
    @app.get(f"{VIDEO_FEED}/<name>")
    def video_feed(name: str | None = None) -> Response:
        # Under `edgeface serve` a GET never gets here (edgeface.server hands it to the broadcaster).
        camera = pipeline.camera(name)
        if camera is None:
            abort(404, description=f"no camera named {name!r} here")
        if request.method == "HEAD":  # the head only: an endless body would hold a thread
            return Response(mimetype=MIMETYPE, headers={"Cache-Control": "no-store"})
        response = Response(camera.broadcaster.stream(), mimetype=MIMETYPE)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/api/status")
    def api_status() -> Response:
        return jsonify(pipeline.status())

    uploads = threading.BoundedSemaphore(PICTURES_AT_ONCE)

    @app.post("/api/recognize")
    def api_recognize() -> tuple[dict[str, Any], int]:
        try:
            image = decode_picture(uploaded_picture())
        except PictureError as error:
            return {"error": str(error)}, error.status
        if not pipeline.pool.serving:
            return {"error": "the inference workers are starting: try again in a few seconds"}, 503
        if not uploads.acquire(blocking=False):
            return {"error": f"{PICTURES_AT_ONCE} pictures are being recognised: try again"}, 429
        try:
            recognised = pipeline.recognise(image)
        finally:
            uploads.release()
        if recognised is None:
            return {"error": "no inference worker answered: try again"}, 503
        width, height = recognised.size
        return {
            "faces": [detection_status(face) for face in recognised.faces],
            "names": sorted({face.match.name for face in recognised.faces}),
            "picture": {"width": width, "height": height},
            "model": {"version": pipeline.model.version},
            "seconds": round(recognised.seconds, 3),
        }, 200

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, Any], int]:
        problems = pipeline.health()
        if problems:
            return {"status": "unhealthy", "problems": problems}, 503
        return {"status": "ok"}, 200

    @app.get("/readyz")
    def readyz() -> tuple[dict[str, Any], int]:
        # The model's version (a UTC minute, no name) and where the detector runs are open too: a
        # rollout asks what a new pod serves without a credential (Kubernetes' pod proxy carries
        # none for the app).
        reasons = pipeline.readiness()
        body = {
            "ready": not reasons,
            "reasons": reasons,
            "model": {"version": pipeline.model.version},
            "detector": detector_status(pipeline.backend, pipeline.config),
        }
        return (body, 503 if reasons else 200)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(pipeline.registry), mimetype=CONTENT_TYPE_LATEST)

    return app


def pipeline_of(app: Flask) -> Pipeline:
    pipeline: Pipeline = app.extensions[EXTENSION]
    return pipeline


def authoriser_of(app: Flask) -> Authoriser:
    authoriser: Authoriser = app.extensions[AUTH_EXTENSION]
    return authoriser


def config_of(app: Flask) -> AppConfig:
    config: AppConfig = app.extensions[CONFIG_EXTENSION]
    return config
