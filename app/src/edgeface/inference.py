"""Inference: detector + recogniser on one frame, run in a worker *process*.

dlib holds Python's GIL for the whole of a detection (~90 ms) or an encoding (~60 ms per face),
measured here: two threads take twice as long as one. In the web process that would freeze the
capture and the viewers for that long, so the pipeline runs `analyse` in a child process
(`python -m edgeface.inference`), talking over its stdin/stdout with length-prefixed JSON headers
and raw frame bytes: nothing is pickled. The child loads the model itself and reports its
version, people or the reason it could not load it; without a model every face is Unknown. It
also reports what its detector runs on (edgeface.detector.probe_backend): probed there, as CUDA
belongs to the process that detects and the web process opens none.

    worker = InferenceWorker(config).start()
    result = worker.infer(bgr_frame, ScanJob([whole_frame]))   # InferenceResult(found, attempts, ...)

A job is one of two kinds, the same for every camera (edgeface.workers shares the workers out):
follow the faces on screen around where they were (`FollowJob`), or find faces in regions and
make recognition attempts (`ScanJob`); what is on screen is the parent's (edgeface.tracks). Only
the part of the frame a job looks at is sent (`job_extent`): a follow of two faces moves a few
hundred KB instead of a 2.7 MB 720p frame.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from edgeface.config import AppConfig
from edgeface.detector import Detector, DetectorBackend, grown, overlap, probe_backend
from edgeface.model import FaceModel, ModelError, load_model
from edgeface.naming import SURE_MARGIN, UNKNOWN_MARGIN
from edgeface.recogniser import FROM_ENVIRONMENT, Recogniser, choose_tolerance, encode_faces, model_tolerance
from edgeface.tracks import SAME_FACE, FollowRegion
from edgeface.values import Box, Detection

log = logging.getLogger(__name__)

SCAN, FOLLOW = "scan", "follow"
"""The kinds of job a worker takes: see InferenceWorker.infer."""
ENCODE_MARGIN = 0.5
"""A face to encode is sent with this x its size around it (the landmarks reach past the box)."""


class InferenceError(RuntimeError):
    """The worker process died or answered nonsense; the pipeline restarts it."""


@dataclass(frozen=True)
class ModelInfo:
    """What the worker loaded: version and people, or why there is no model; the tolerance it
    names faces with and where that came from (edgeface.recogniser.choose_tolerance)."""

    path: str
    version: str | None = None
    people: tuple[str, ...] = ()
    trained: frozenset[str] = frozenset()  # the sha256 of every photo the model was trained on
    error: str | None = None
    tolerance: float | None = None
    tolerance_source: str | None = None

    @property
    def loaded(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class FollowJob:
    """Re-detect each followed face in its region, scaled (edgeface.tracks.FollowRegion)."""

    regions: Sequence[FollowRegion]


@dataclass(frozen=True)
class ScanJob:
    """Find faces in `regions` at the configured scale, then encode the `encode` faces (track
    id, box) and, with `encode_found`, every face found that is not one of the `known` boxes. An
    attempt that lands in the ambiguous band is made again at once with the other alignment
    (`second_opinion`). With a `scale`, the regions are scanned at that scale instead of the
    configured one (a finer look for small faces: edgeface.scanning.FineLook)."""

    regions: Sequence[Box]
    encode: Sequence[tuple[int, Box]] = ()
    known: Sequence[Box] = ()
    encode_found: bool = True
    scale: float = 0.0  # 0: the detector's configured scale


Job = FollowJob | ScanJob


@dataclass(frozen=True)
class Attempt:
    """One recognition attempt of a scan: whose (track id, None for a face the scan found), where,
    and the nearest people with their distances."""

    track: int | None
    box: Box
    candidates: dict[str, float]


@dataclass(frozen=True)
class InferenceResult:
    seconds: float = 0.0  # detection + encoding + matching time inside the worker
    encoded: int = 0  # faces encoded
    found: list[Box] = field(default_factory=list)  # SCAN: faces found
    attempts: list[Attempt] = field(default_factory=list)  # SCAN: recognition attempts
    followed: dict[int, list[Box]] = field(default_factory=dict)  # FOLLOW: faces per track id


def analyse(rgb: np.ndarray, detector: Detector, recogniser: Recogniser) -> list[Detection]:
    """Find and name every face in `rgb` (HxWx3 uint8, RGB order)."""
    boxes = detector.detect(rgb)
    matches = recogniser.identify(encode_faces(rgb, boxes))
    return [Detection(box, match) for box, match in zip(boxes, matches, strict=True)]


def box_to_wire(box: Box) -> list[int]:
    return list(box.as_css())


def box_from_wire(record: Sequence[Any]) -> Box:
    return Box(int(record[0]), int(record[1]), int(record[2]), int(record[3]))


def shifted(box: Box, down: int, right: int) -> Box:
    return Box(box.top + down, box.right + right, box.bottom + down, box.left + right)


def job_extent(job: Job, shape: tuple[int, ...]) -> Box:
    """The part of a frame of `shape` (H, W, ...) that `job` looks at: its regions, and each face
    to encode with ENCODE_MARGIN around it."""
    height, width = shape[:2]
    if isinstance(job, FollowJob):
        boxes = [region.region for region in job.regions]
    else:
        boxes = list(job.regions) + [grown(box, ENCODE_MARGIN, (height, width)) for _, box in job.encode]
    if not boxes:
        return Box(0, 0, 0, 0)
    return Box(
        max(0, min(box.top for box in boxes)),
        min(width, max(box.right for box in boxes)),
        min(height, max(box.bottom for box in boxes)),
        max(0, min(box.left for box in boxes)),
    )


SCANNED_PER_SECOND = 3.0e6  # px/s dlib's HOG scans at 2x on one core (a 1280x720 frame in ~0.3 s)


def job_seconds(job: Job, shape: tuple[int, ...]) -> float:
    """Roughly how long `job` keeps a worker on a frame of `shape`: the pixels it scans at their
    scale. A FollowJob scales each face to ~90 px: a few ms."""
    if isinstance(job, FollowJob):
        pixels = sum(r.region.width * r.region.height * r.scale**2 for r in job.regions) / 4
    else:
        extent = job_extent(job, shape)
        pixels = extent.width * extent.height * (job.scale**2 / 4 if job.scale else 1.0)
    return float(pixels / SCANNED_PER_SECOND)


def job_to_wire(job: Job, origin: Box) -> dict[str, Any]:
    """`job` for a worker sent only the `origin` part of the frame (boxes relative to it)."""

    def wire(box: Box) -> list[int]:
        return box_to_wire(shifted(box, -origin.top, -origin.left))

    if isinstance(job, FollowJob):
        return {"mode": FOLLOW, "regions": [[*wire(r.region), r.scale, r.track] for r in job.regions]}
    return {
        "mode": SCAN,
        "regions": [wire(box) for box in job.regions],
        "encode": [[track, *wire(box)] for track, box in job.encode],
        "known": [wire(box) for box in job.known],
        "encode_found": job.encode_found,
    } | ({"scale": job.scale} if job.scale else {})


def _candidates(attempt: dict[str, Any]) -> dict[str, float]:
    return {str(name): float(distance) for name, distance in attempt["candidates"].items()}


def result_from_wire(reply: dict[str, Any], origin: Box) -> InferenceResult:
    """A worker's reply, its boxes back in the whole frame's pixels."""

    def box(record: Sequence[Any]) -> Box:
        return shifted(box_from_wire(record), origin.top, origin.left)

    return InferenceResult(
        seconds=float(reply["seconds"]),
        encoded=int(reply.get("encoded", 0)),
        found=[box(item) for item in reply.get("found", ())],
        attempts=[
            Attempt(item["track"], box(item["box"]), _candidates(item)) for item in reply.get("attempts", ())
        ],
        followed={int(k): [box(b) for b in v] for k, v in reply.get("followed", {}).items()},
    )


def backend_to_wire(backend: DetectorBackend) -> dict[str, Any]:
    """The detector's backend in the worker's hello (edgeface.status has the public JSON)."""
    return {
        "model": backend.model,
        "cuda": backend.cuda,
        "devices": backend.devices,
        "dlib_cuda": backend.dlib_cuda,
        "cuda_error": backend.cuda_error,
        "instead_of": backend.instead_of,
    }


def backend_from_wire(record: dict[str, Any]) -> DetectorBackend:
    error, instead_of = record.get("cuda_error"), record.get("instead_of")
    return DetectorBackend(
        model=str(record["model"]),
        cuda=bool(record["cuda"]),
        devices=int(record["devices"]),
        dlib_cuda=bool(record.get("dlib_cuda", False)),
        cuda_error=None if error is None else str(error),
        instead_of=None if instead_of is None else str(instead_of),
    )


def write_message(stream: IO[bytes], header: dict[str, Any], payload: bytes = b"") -> None:
    """One message: 4-byte header length, JSON header, 8-byte payload length, payload."""
    text = json.dumps(header).encode()
    stream.write(len(text).to_bytes(4, "little") + text + len(payload).to_bytes(8, "little"))
    stream.write(payload)
    stream.flush()


def read_message(stream: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    def exactly(count: int) -> bytes:
        data = stream.read(count)
        if data is None or len(data) != count:
            raise EOFError("inference stream closed")
        return data

    header = json.loads(exactly(int.from_bytes(exactly(4), "little")))
    payload = exactly(int.from_bytes(exactly(8), "little"))
    if not isinstance(header, dict):
        raise InferenceError(f"bad message header {header!r}")
    return header, payload


class InferenceWorker:
    """The parent's handle on the worker process; `infer()` is called by one thread at a time."""

    def __init__(self, config: AppConfig, start_timeout: float = 120.0) -> None:
        self.config = config
        self.start_timeout = start_timeout  # seconds to load dlib and the model and say hello
        self.model = ModelInfo(str(config.model_filename), error="inference worker not started")
        self.backend: DetectorBackend | None = None  # what the detector runs on, from the hello
        self._process: subprocess.Popen[bytes] | None = None
        self._serving = False  # the process has said hello: it reads its input from then on
        self.returncode: int | None = None  # of the last process stopped (negative: its signal)
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None else process.pid

    def exit_status(self) -> int | None:
        """The process's exit code (negative: the signal that ended it) once it has ended, else
        None (running, or never started)."""
        process = self._process
        return None if process is None else process.poll()

    def start(self) -> InferenceWorker:
        """Start the process and wait (up to `start_timeout` s) for its hello; raise
        InferenceError if it dies or stays silent that long (the process is then stopped)."""
        config = self.config
        arguments = {
            "model": str(config.model_filename),
            "model_sha256": config.model_sha256,
            "tolerance": config.face_tolerance,
            "detector": config.face_loc_model,
            "ratio": config.face_ratio,
            "upsample": config.face_loc_ntu,
            "min_size": config.face_min_size,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "edgeface.inference", json.dumps(arguments)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._process, self._serving = process, False
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], self.start_timeout)
        if not readable:
            self.stop(timeout=1.0)
            raise InferenceError(f"inference worker did not start within {self.start_timeout:g} s")
        try:
            hello, _ = read_message(process.stdout)
        except EOFError as error:
            self.stop(timeout=1.0)
            raise InferenceError(f"inference worker exited while starting: {error}") from error
        self._serving = True
        self.model = ModelInfo(
            path=str(config.model_filename),
            version=hello.get("version"),
            people=tuple(hello.get("people") or ()),
            trained=frozenset(hello.get("trained") or ()),
            error=hello.get("error"),
            tolerance=hello.get("tolerance"),
            tolerance_source=hello.get("tolerance_source"),
        )
        self.backend = backend_from_wire(hello["detector"])
        if problem := self.backend.problem(config.face_require_cuda):
            log.warning("%s", problem)
        if self.model.error:
            log.error("model not loaded, every face will be %s: %s", "Unknown", self.model.error)
        else:
            log.info("model %s loaded: %d people", self.model.version, len(self.model.people))
        recorded = hello.get("model_tolerance")
        if self.model.tolerance_source == FROM_ENVIRONMENT and recorded not in (None, self.model.tolerance):
            log.warning(
                "FACE_TOLERANCE=%s overrides the tolerance %s the model was validated with",
                self.model.tolerance,
                recorded,
            )
        return self

    def infer(self, bgr: np.ndarray, job: Job) -> InferenceResult:
        """Run `job` on `bgr` (HxWx3 uint8, OpenCV's BGR order): follow faces (FollowJob), or find
        faces and encode them (ScanJob). Only the part of `bgr` the job looks at is sent."""
        origin = job_extent(job, bgr.shape)
        header = job_to_wire(job, origin)
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                raise InferenceError("inference worker is not running")
            part = bgr[origin.top : origin.bottom, origin.left : origin.right]
            image = np.ascontiguousarray(part, dtype=np.uint8)
            header["shape"] = list(image.shape)
            try:
                write_message(process.stdin, header, image.tobytes())  # type: ignore[arg-type]
                reply, _ = read_message(process.stdout)  # type: ignore[arg-type]
            except (OSError, EOFError, ValueError) as error:
                raise InferenceError(f"inference worker failed: {error}") from error
        if "error" in reply:
            raise InferenceError(str(reply["error"]))
        return result_from_wire(reply, origin)

    def close_input(self) -> None:
        """Ask the process to end: it exits at the end of its input, after the frame it is on.
        `stop` then waits for it; several workers are asked first and waited for together."""
        process = self._process
        if process is None:
            return
        if self._serving:
            self.close_input_of(process)
        else:  # still loading dlib and the model, it reads nothing yet: it has nothing to lose
            process.terminate()

    def stop(self, timeout: float = 5.0) -> bool:
        """End the process: its input closed, up to `timeout` s for it to exit, then SIGKILL.
        True when it exited by itself (or was not running)."""
        process, self._process = self._process, None
        if process is None:
            return True
        self.close_input_of(process)
        exited = True
        try:
            process.wait(max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            exited = False
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self.returncode = process.returncode
        return exited

    @staticmethod
    def close_input_of(process: subprocess.Popen[bytes]) -> None:
        if process.stdin is not None:
            with contextlib.suppress(OSError):  # the pipe of a worker that died
                process.stdin.close()


def _scan(
    rgb: np.ndarray, header: dict[str, Any], detector: Detector, recogniser: Recogniser, min_size: int
) -> dict[str, Any]:
    """A ScanJob: the faces found (at least `min_size` px tall) and the recognition attempts."""
    regions = [box_from_wire(r) for r in header["regions"]]
    scale = float(header.get("scale", 0.0))
    found = [box for box in detector.detect_in(rgb, regions, scale or None) if box.height >= min_size]
    known = [box_from_wire(item) for item in header["known"]]
    targets: list[tuple[int | None, Box]] = [
        (int(item[0]), box_from_wire(item[1:])) for item in header["encode"]
    ]
    if header.get("encode_found", True):
        targets += [(None, box) for box in found if all(overlap(box, other) < SAME_FACE for other in known)]
    nearest = recogniser.candidates(encode_faces(rgb, [box for _, box in targets]))
    attempts = list(zip(targets, nearest, strict=True))
    attempts += second_opinion(rgb, attempts, recogniser)
    return {
        "found": [box_to_wire(box) for box in found],
        "attempts": [
            {"track": track, "box": box_to_wire(box), "candidates": candidates}
            for (track, box), candidates in attempts
        ],
        "encoded": len(attempts),
    }


def second_opinion(
    rgb: np.ndarray,
    attempts: Sequence[tuple[tuple[int | None, Box], dict[str, float]]],
    recogniser: Recogniser,
) -> list[tuple[tuple[int | None, Box], dict[str, float]]]:
    """A second attempt, made at once, of each face whose attempt landed in the ambiguous band
    (nearest person within the tolerance + UNKNOWN_MARGIN but not surely: edgeface.naming), encoded on
    the 68-landmark alignment instead of the 5-landmark one: a different view of the same face,
    so that a face named by two attempts is named now instead of RETRY_SECONDS later (a frontal
    face near the threshold waited for the tracks' retries, up to a second)."""
    named = recogniser.tolerance
    unsure = [
        (target, candidates)
        for target, candidates in attempts
        if candidates and named - SURE_MARGIN < min(candidates.values()) <= named + UNKNOWN_MARGIN
    ]
    if not unsure:
        return []
    boxes = [box for (_, box), _ in unsure]
    again = recogniser.candidates(encode_faces(rgb, boxes, landmarks="large"))
    return [(target, candidates) for (target, _), candidates in zip(unsure, again, strict=True)]


def _follow(rgb: np.ndarray, header: dict[str, Any], detector: Detector) -> dict[str, Any]:
    """A FollowJob: the faces found in each track's region, by track id."""
    return {
        str(int(item[5])): [
            box_to_wire(box) for box in detector.detect_at(rgb, box_from_wire(item[:4]), float(item[4]))
        ]
        for item in header["regions"]
    }


def trained(model: FaceModel) -> list[str]:
    """The sha256 of each photo the model's metadata says it was trained on."""
    photos = model.metadata.get("photos")
    if not isinstance(photos, list):
        return []
    return sorted(
        {str(photo["sha256"]) for photo in photos if isinstance(photo, dict) and photo.get("sha256")}
    )


def _serve(arguments: dict[str, Any], requests: IO[bytes], replies: IO[bytes]) -> None:
    """The worker's loop: load the model, say hello, then answer one frame at a time until EOF."""
    import cv2  # noqa: PLC0415

    model: FaceModel | None
    try:
        model = load_model(arguments["model"], arguments.get("model_sha256"))
        hello: dict[str, Any] = {
            "version": model.version,
            "people": list(model.people),
            "trained": trained(model),
        }
    except ModelError as error:
        model, hello = None, {"error": str(error)}
    configured = arguments["tolerance"]
    tolerance, source = choose_tolerance(None if configured is None else float(configured), model)
    hello.update(tolerance=tolerance, tolerance_source=source, model_tolerance=model_tolerance(model))
    backend = probe_backend(arguments["detector"])  # here, in the process that detects
    hello["detector"] = backend_to_wire(backend)
    detector = Detector(backend.model, float(arguments["ratio"]), int(arguments["upsample"]))
    recogniser = Recogniser(model, tolerance)
    detector.detect(np.zeros((64, 64, 3), dtype=np.uint8))  # load dlib's models before saying hello
    write_message(replies, hello)
    while True:
        try:
            header, payload = read_message(requests)
        except EOFError:
            return
        try:
            bgr = np.frombuffer(payload, dtype=np.uint8).reshape(header["shape"])
            started = time.perf_counter()
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # dlib expects RGB; OpenCV decodes BGR
            if header["mode"] == SCAN:
                reply = _scan(rgb, header, detector, recogniser, int(arguments.get("min_size", 0)))
            else:
                reply = {"followed": _follow(rgb, header, detector)}
            reply["seconds"] = time.perf_counter() - started
        except (ValueError, KeyError) as error:
            reply = {"error": f"cannot analyse frame: {error}"}
        write_message(replies, reply)


if __name__ == "__main__":
    # The parent decides when a worker ends (it closes our input); a Ctrl-C in a terminal reaches
    # the whole process group, and would otherwise kill the worker mid-reply with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Replies go to a private copy of stdout; fd 1 then points at stderr, so that anything a C
    # library prints cannot corrupt the message stream.
    _replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve(json.loads(sys.argv[1]), sys.stdin.buffer, _replies)
