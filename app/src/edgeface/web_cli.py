"""Sub-commands of the web app: `serve`, `recognize IMAGE`, `doctor`, and `hash-password` /
`hash-token`, which make the lines of WEB_USERS_FILE and WEB_TOKENS_FILE."""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeface import __version__
from edgeface.arguments import positive_int
from edgeface.config import AppConfig, ConfigError, load_config

DEFAULT_THREADS = 16
"""waitress worker threads: for the page, the JSON and the metrics (stream viewers hold none)."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser("serve", help="run the recognition web app (env contract: see README)")
    serve.add_argument("--host", help="address to listen on (default: WEB_HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="TCP port (default: WEB_PORT or 5000)")
    serve.add_argument(
        "--threads",
        type=positive_int,
        default=DEFAULT_THREADS,
        help="HTTP worker threads (stream viewers need none)",
    )
    serve.set_defaults(handler=run_serve)

    recognize = subparsers.add_parser("recognize", help="name the faces in one photo with a model")
    recognize.add_argument("image", type=Path, help="photo (JPEG, PNG, ...)")
    recognize.add_argument("--model", type=Path, default=Path("model.data"), help="model file")
    recognize.add_argument("--json", action="store_true", help="print JSON instead of a table")
    recognize.set_defaults(handler=run_recognize)

    doctor = subparsers.add_parser(
        "doctor",
        help="versions, CUDA, what FACE_LOC_MODEL's detector runs on here (exit 1 when"
        " FACE_REQUIRE_CUDA=on and it is not CUDA)",
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.set_defaults(handler=run_doctor)

    password = subparsers.add_parser(
        "hash-password",
        help="print a WEB_USERS_FILE line (name:role:scrypt-hash) for the password read from stdin",
    )
    password.add_argument("--user", required=True, help="the user name (A-Z a-z 0-9 . _ @ -)")
    password.add_argument(
        "--role",
        choices=("viewer", "operator"),
        default="viewer",
        help="viewer watches; operator may also enrol and forget",
    )
    password.set_defaults(handler=run_hash_password)

    token = subparsers.add_parser(
        "hash-token",
        help="print a WEB_TOKENS_FILE line (name:sha256 or name:role:sha256) for the token read from stdin",
    )
    token.add_argument("--name", required=True, help="who uses the token, e.g. prometheus")
    token.add_argument(
        "--role",
        choices=("viewer", "operator"),
        default=None,
        help="operator: may enrol and forget (default: viewer)",
    )
    token.set_defaults(handler=run_hash_token)


def _config_or_exit() -> Any:
    try:
        return load_config()
    except ConfigError as error:
        print(f"edgeface: {error}", file=sys.stderr)
        return None


class _Shutdown(SystemExit):
    """Raised in the main thread by SIGTERM/SIGINT; waitress's run() returns on a SystemExit."""


def _stop_on_signal(number: int, _frame: Any) -> None:
    # One shutdown: a second signal during it would abort the clean-up half-way.
    for name in STOP_SIGNALS:
        signal.signal(name, signal.SIG_IGN)
    log.info("%s received: stopping", signal.Signals(number).name)
    raise _Shutdown(0)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT, then stop everything within STOP_SECONDS.

    The port is bound before the pipeline starts, so a port in use costs no worker process.
    SIGTERM has a handler of our own: as a container's PID 1 (no init) the kernel would
    otherwise ignore it, and podman or the kubelet would wait out their grace period and
    SIGKILL. With an init (`podman run --init`) the init passes the signal on: the same path.
    """
    config = _config_or_exit()
    if config is None:
        return 2
    logging.basicConfig(
        level=config.log_level_number, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from edgeface.pipeline import STOP_SECONDS  # noqa: PLC0415
    from edgeface.server import serve_app  # noqa: PLC0415
    from edgeface.web import create_app, pipeline_of  # noqa: PLC0415

    try:
        app = create_app(config)
    except ConfigError as error:
        print(f"edgeface serve: {error}", file=sys.stderr)
        return 2
    pipeline = pipeline_of(app)
    host, port = args.host or config.web_host, args.port or config.web_port
    try:
        server = serve_app(app, pipeline.broadcaster_of, host, port, args.threads)
    except OSError as error:
        print(f"edgeface serve: cannot listen on {host}:{port}: {error.strerror or error}", file=sys.stderr)
        return 1
    for name in STOP_SIGNALS:
        signal.signal(name, _stop_on_signal)
    try:
        pipeline.start()
        server.print_listen("Serving on http://{}:{}")
        server.run()  # returns on _Shutdown, after waitress has stopped its threads
    except _Shutdown:
        pass  # the signal came before run()
    finally:
        started = time.monotonic()
        server.close()
        server.task_dispatcher.shutdown(timeout=0.5)  # idle HTTP threads end at once
        clean = pipeline.stop(STOP_SECONDS)
        seconds = time.monotonic() - started
        if clean:
            log.info("stopped in %.2f s: every inference worker exited", seconds)
        else:
            log.warning("stopped in %.2f s: an inference worker was killed at the deadline", seconds)
    return 0


def run_recognize(args: argparse.Namespace) -> int:
    config = _config_or_exit()
    if config is None:
        return 2
    import cv2  # noqa: PLC0415

    from edgeface.detector import Detector  # noqa: PLC0415
    from edgeface.inference import analyse  # noqa: PLC0415
    from edgeface.model import ModelError, load_model  # noqa: PLC0415
    from edgeface.recogniser import Recogniser, choose_tolerance  # noqa: PLC0415
    from edgeface.status import detection_status  # noqa: PLC0415

    try:
        model = load_model(args.model)
    except ModelError as error:
        print(f"edgeface recognize: {error}", file=sys.stderr)
        return 2
    bgr = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if bgr is None:
        print(f"edgeface recognize: {args.image}: cannot read the image", file=sys.stderr)
        return 2
    detector = Detector(config.face_loc_model, config.face_ratio, config.face_loc_ntu)
    tolerance, _ = choose_tolerance(config.face_tolerance, model)
    detections = analyse(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), detector, Recogniser(model, tolerance))
    faces = [detection_status(item) for item in detections]
    if args.json:
        record = {"image": str(args.image), "model_version": model.version, "tolerance": tolerance}
        print(json.dumps({**record, "faces": faces}, indent=2))
    else:
        print(f"{args.image}: {len(faces)} face(s), model {model.version}")
        for face in faces:
            distance = "-" if face["distance"] is None else f"{face['distance']:.3f}"
            box = face["box"]
            print(
                f"  {face['name']:<24} distance {distance}  box top={box['top']} right={box['right']}"
                f" bottom={box['bottom']} left={box['left']}"
            )
    return 0


def doctor_report(config: AppConfig) -> dict[str, Any]:
    """What the seed checked by hand on a Jetson, whether the CNN detector can run here, and
    `detector`: what the configured FACE_LOC_MODEL runs on here, as /api/status says it (probed
    in this process, as the inference worker does)."""
    import cv2  # noqa: PLC0415
    import numpy  # noqa: PLC0415

    from edgeface.detector import probe_backend  # noqa: PLC0415
    from edgeface.status import detector_status  # noqa: PLC0415

    report: dict[str, Any] = {
        "edgeface": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
    }
    build = cv2.getBuildInformation()
    report["opencv_cuda_build"] = [line.strip() for line in build.splitlines() if "CUDA" in line][:5]
    cuda_module = getattr(cv2, "cuda", None)
    report["opencv_cuda_devices"] = cuda_module.getCudaEnabledDeviceCount() if cuda_module is not None else 0
    try:
        import dlib  # noqa: PLC0415

        report["dlib"] = dlib.__version__
        backend = probe_backend(config.face_loc_model)
        report["dlib_use_cuda"] = backend.dlib_cuda
        report["dlib_cuda_devices"] = backend.devices
        detector, runs_on = detector_status(backend, config), backend.describe()
    except ImportError as error:
        report["dlib"] = f"missing ({error})"
        report["dlib_use_cuda"] = False
        report["dlib_cuda_devices"] = 0
        detector = detector_status(None, config, unknown=f"dlib is missing ({error})")
        runs_on = "nothing: dlib is missing"
    try:
        import face_recognition  # noqa: PLC0415

        report["face_recognition"] = face_recognition.__version__
    except ImportError as error:
        report["face_recognition"] = f"missing ({error})"
    report["nvidia_l4t_core"] = _l4t_version()
    report["cnn"] = _cnn_check(report)
    report["detector"], report["detector_runs_on"] = detector, runs_on
    return report


def _l4t_version() -> str | None:
    """The Jetson's nvidia-l4t-core package version, or the tegra release line; None elsewhere."""
    if shutil.which("dpkg-query"):
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "nvidia-l4t-core"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    release = Path("/etc/nv_tegra_release")
    return release.read_text().splitlines()[0].strip() if release.is_file() else None


def _cnn_check(report: dict[str, Any]) -> str:
    if str(report.get("face_recognition", "")).startswith("missing"):
        return "no: face_recognition is missing"
    import numpy  # noqa: PLC0415

    from edgeface.detector import Detector  # noqa: PLC0415

    started = time.perf_counter()
    try:
        Detector("cnn", 1.0, 0).detect(numpy.zeros((120, 160, 3), dtype=numpy.uint8))
    except (RuntimeError, ValueError) as error:
        return f"no: {error}"
    seconds = time.perf_counter() - started
    if report.get("dlib_cuda_devices"):
        return (
            f"yes, on CUDA ({report['dlib_cuda_devices']} device(s)); 160x120 test frame in {seconds:.2f} s"
        )
    return (
        f"runs on the CPU only (no CUDA in dlib): 160x120 test frame in {seconds:.2f} s, far too slow"
        " for live video; keep FACE_LOC_MODEL=hog here"
    )


def run_doctor(args: argparse.Namespace) -> int:
    """Print the report; exit 1 when FACE_REQUIRE_CUDA=on and the detector would not run on CUDA
    (the reason on stderr, as /readyz would give it), 2 on a bad setting."""
    config = _config_or_exit()
    if config is None:
        return 2
    report = doctor_report(config)
    detector = report["detector"]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        # The detector in words (its object is for the JSON), then what is wrong with it.
        rows = {key: value for key, value in report.items() if key not in ("detector", "detector_runs_on")}
        rows |= {"detector": report["detector_runs_on"], "detector_problem": detector["problem"]}
        for key, value in rows.items():
            shown = "; ".join(value) if isinstance(value, list) else value
            print(f"{key:<20} {shown if shown not in (None, '') else '-'}")
    if detector["required"] and not detector["cuda"]:
        print(f"edgeface doctor: {detector['problem']}", file=sys.stderr)
        return 1
    return 0


def _secret_from_stdin(what: str) -> str:
    """The first line of stdin without its line break (a terminal is prompted, without echo)."""
    if sys.stdin.isatty():
        import getpass  # noqa: PLC0415

        return getpass.getpass(f"{what}: ")
    return sys.stdin.readline().rstrip("\r\n")


def _print_line(command: str, make: Callable[[str], str]) -> int:
    try:
        print(make(_secret_from_stdin(command.removeprefix("hash-"))))
    except ValueError as error:
        print(f"edgeface {command}: {error}", file=sys.stderr)
        return 2
    return 0


def run_hash_password(args: argparse.Namespace) -> int:
    from edgeface.auth import user_line  # noqa: PLC0415

    return _print_line("hash-password", lambda password: user_line(args.user, password, args.role))


def run_hash_token(args: argparse.Namespace) -> int:
    from edgeface.auth import token_line  # noqa: PLC0415

    return _print_line("hash-token", lambda token: token_line(args.name, token, args.role))
