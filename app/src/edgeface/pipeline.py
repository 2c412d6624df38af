"""The pipeline: source → inference (detector + recogniser) → annotator → broadcaster.

Threads, whatever the number of viewers:
- `capture` (edgeface.source): reads the stream, keeps only the newest frame;
- `inference-N`, one per inference worker process (`INFERENCE_WORKERS`; dlib runs on one core
  per process): each takes the newest frame no other has taken, sends it to its worker and
  keeps the detections if they are the newest; at most `VIDEO_PROCESSING_FPS` updates a second.
  With two or more workers one follows the faces and the others scan (`Pipeline.mode_of`);
- `display`: for every new frame (the stream's own rate), draws the latest detections on it and
  JPEG-encodes it once for all viewers; a "no signal" frame twice a second while the stream is away;
- `mjpeg-writer` (edgeface.broadcaster), from the first viewer on: sends each part to every viewer.

Each loop records its progress (edgeface.liveness); `health()` names a loop that is stuck or dead,
and an inference worker process that died (it is restarted, and healthy again once it has said
hello). `stop()` ends everything within one deadline: the workers are asked to exit together.
"""

from __future__ import annotations

import collections
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edgeface import __version__
from edgeface.annotator import annotate, no_signal_frame
from edgeface.broadcaster import Broadcaster
from edgeface.config import AppConfig
from edgeface.inference import (
    AUTO,
    FOLLOW,
    SCAN,
    InferenceError,
    InferenceResult,
    InferenceWorker,
    ModelInfo,
    detection_to_json,
)
from edgeface.liveness import Liveness
from edgeface.source import LIVE, VideoSource
from edgeface.values import Detection

log = logging.getLogger(__name__)

NO_SIGNAL_INTERVAL = 0.5  # seconds between "no signal" frames
RATE_WINDOW = 10.0  # seconds over which rates are averaged
INFER_SECONDS = 30.0  # longest a worker may take over one frame before its loop counts as stuck
STOP_SECONDS = 1.2  # the whole pipeline's shutdown deadline: `edgeface serve` ends within 2 s of SIGTERM


@dataclass(frozen=True)
class Recognition:
    """The latest inference result and when it was made."""

    detections: list[Detection] = field(default_factory=list)
    frame_number: int = 0
    at: float = 0.0  # epoch seconds the analysed frame was captured
    seconds: float = 0.0  # time the worker took


class Pipeline:
    def __init__(self, config: AppConfig, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.liveness = Liveness()
        self.source = VideoSource(
            config.video_stream_url,
            device=config.video_device_id,
            size=(config.frame_width, config.frame_height),
            stall_seconds=config.stall_seconds,
            heartbeat=self.liveness.heartbeat("capture"),
        )
        self.workers = [InferenceWorker(config) for _ in range(config.inference_workers)]
        self.broadcaster = Broadcaster(heartbeat=self.liveness.heartbeat("mjpeg-writer"))
        self.registry = registry or CollectorRegistry()
        self.inference_seconds = Histogram(
            "edgeface_inference_seconds",
            "Time to detect, encode and name the faces of one frame",
            buckets=(0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2),
            registry=self.registry,
        )
        self.faces = Counter(
            "edgeface_faces",
            "Faces recognised, by name (Unknown for strangers)",
            ["name"],
            registry=self.registry,
        )
        self.faces_encoded = Counter(
            "edgeface_faces_encoded",
            "Faces encoded (the others of an update kept the name their tracked face had)",
            registry=self.registry,
        )
        self.registry.register(_PipelineCollector(self))
        self._recognition = Recognition()
        self._workers_ready = [False] * len(self.workers)
        self._worker_down: list[str | None] = [None] * len(self.workers)  # why a worker is restarting
        self._worker_restarts = 0
        self._lock = threading.Lock()  # guards frame claims, the latest recognition and the counts
        self._claimed = 0  # number of the newest frame an inference thread has taken
        self._next_turn: dict[str, float] = {}  # monotonic time the next update / scan may start
        self._seed: tuple[list[Detection], float] | None = None  # last scan: faces, monotonic time
        self._seed_number = 0
        self._recognised = 0
        self._recognised_at: collections.deque[float] = collections.deque(maxlen=600)
        self._full_frames = 0
        self._faces_encoded = 0
        self._displayed = 0
        self._displayed_at: collections.deque[float] = collections.deque(maxlen=600)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Pipeline:
        if self._threads:
            return self
        self.source.start()
        for index, worker in enumerate(self.workers):
            name = f"inference-{index}"
            thread = threading.Thread(target=self._run_inference, args=(index,), name=name, daemon=True)
            self.liveness.heartbeat(name).attach(thread, worker.start_timeout)
            thread.start()
            self._threads.append(thread)
        display = threading.Thread(target=self._run_display, name="display", daemon=True)
        self.liveness.heartbeat("display").attach(display, NO_SIGNAL_INTERVAL)
        display.start()
        self._threads.append(display)
        log.info("pipeline started on %s", self.source.description)
        return self

    def stop(self, timeout: float = STOP_SECONDS) -> bool:
        """Stop every thread and worker process within `timeout` seconds in all; True when each
        worker exited by itself (False: one had to be killed at the deadline). A capture stuck in
        OpenCV's open() or read() is left to its daemon thread: it holds no child process."""
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        self._stopping.set()
        self.liveness.end()
        for worker in self.workers:
            worker.close_input()  # all at once: each finishes its frame and exits, in parallel
        self.broadcaster.close(remaining())
        self.source.stop(timeout=0.0)
        for thread in self._threads:
            thread.join(remaining())
        exited = [worker.stop(remaining()) for worker in self.workers]
        self.source.stop(remaining())
        return all(exited)

    # -- stages -------------------------------------------------------------------------------
    def mode_of(self, index: int) -> str:
        """What worker `index` does: with tracking on and 2+ workers, worker 0 follows the faces on
        every update (a few ms) and the others make the full scans (detect + encode, ~250 ms)
        every FACE_TRACK_SECONDS, so the slow work no longer holds up the updates. Otherwise (one
        worker, tracking off, or updates no more frequent than scans, as at the seed's 1/s) each
        worker tracks on its own (AUTO)."""
        config = self.config
        if len(self.workers) < 2 or config.video_processing_fps * config.face_track_seconds <= 1.0:
            return AUTO
        return FOLLOW if index == 0 else SCAN

    def _run_inference(self, index: int) -> None:
        """Loop of inference thread `index`, which drives worker `index`."""
        worker, mode = self.workers[index], self.mode_of(index)
        heartbeat = self.liveness.heartbeat(f"inference-{index}")
        interval = self.config.face_track_seconds if mode == SCAN else 1.0 / self.config.video_processing_fps
        seed_sent = 0  # number of the last scan handed to this (FOLLOW) worker
        scanned = 0  # number of the last frame this (SCAN) worker scanned
        while not self._stopping.is_set():
            if self._workers_ready[index] and (code := worker.exit_status()) is not None:
                self._worker_died(index, f"worker process exited ({_exit_reason(code)})")
            if not self._workers_ready[index]:
                heartbeat.beat(worker.start_timeout)
                if not self._start_worker(index):
                    heartbeat.beat(2.0)
                    self._stopping.wait(2.0)
                    continue
                seed_sent = 0  # a new process knows no faces yet
            # The turn's wait plus the wait for a frame; an idle stream is progress too.
            heartbeat.beat(len(self.workers) * interval + 0.5)
            self._wait_for_turn("scan" if mode == SCAN else "update", interval)
            # A scan takes the newest frame even if an update has it too: it must not wait its turn
            # behind a follower that takes every frame.
            frame = self.source.wait_newer(scanned if mode == SCAN else self._claimed, timeout=0.5)
            if frame is None:
                if self.source.status().state != LIVE:
                    self._recognition = Recognition()  # boxes of a vanished stream mean nothing
                continue
            with self._lock:
                if mode == SCAN:
                    scanned = frame.number
                elif frame.number <= self._claimed:
                    continue  # another inference thread took it first
                else:
                    self._claimed = frame.number
                claimed_at = time.monotonic()
                seed = None
                if mode == FOLLOW and self._seed_number > seed_sent:
                    seed, seed_sent = self._seed, self._seed_number
            heartbeat.beat(INFER_SECONDS)
            try:
                result = worker.infer(frame.image, mode, seed)
            except InferenceError as error:
                if not self._stopping.is_set():  # at shutdown the workers' input is closed
                    self._worker_died(index, str(error))
                continue
            if mode == SCAN:
                with self._lock:
                    self._seed, self._seed_number = (result.detections, claimed_at), self._seed_number + 1
            self._record(result, frame.number, frame.captured, update=mode != SCAN)

    def _wait_for_turn(self, kind: str, interval: float) -> None:
        """Space the starts of all threads' `kind` of work `interval` seconds apart (never bunched)."""
        with self._lock:
            now = time.monotonic()
            turn = max(self._next_turn.get(kind, 0.0), now)
            self._next_turn[kind] = turn + interval
        self._stopping.wait(turn - now)

    def _record(self, result: InferenceResult, number: int, captured: float, update: bool = True) -> None:
        """Count the work of `result`; if it is an `update`, count it and show its detections
        (unless a newer frame's are already shown). A background scan is not an update: the
        follower's next update shows its names."""
        with self._lock:
            self._full_frames += result.full_frame
            self._faces_encoded += result.encoded
            if update:
                if number > self._recognition.frame_number:
                    self._recognition = Recognition(result.detections, number, captured, result.seconds)
                self._recognised += 1
                self._recognised_at.append(time.monotonic())
        self.inference_seconds.observe(result.seconds)
        self.faces_encoded.inc(result.encoded)
        if update:
            for detection in result.detections:
                self.faces.labels(detection.match.name).inc()

    def _worker_died(self, index: int, reason: str) -> None:
        """Worker `index` is gone: /healthz says so until its replacement has said hello."""
        worker = self.workers[index]
        worker.stop(timeout=1.0)
        code = worker.returncode
        if code is not None and f"({_exit_reason(code)})" not in reason:
            reason = f"{reason}; worker process exited ({_exit_reason(code)})"
        log.error("inference worker %d: %s; restarting it", index, reason)
        with self._lock:
            self._worker_down[index] = reason
            self._workers_ready[index] = False
            self._worker_restarts += 1

    def _start_worker(self, index: int) -> bool:
        worker = self.workers[index]
        try:
            worker.start()
        except (OSError, EOFError, ValueError, InferenceError) as error:
            worker.stop(timeout=1.0)
            if not self._stopping.is_set():
                log.error("cannot start inference worker %d: %s", index, error)
                with self._lock:
                    self._worker_down[index] = f"cannot start the worker process: {error}"
            return False
        with self._lock:
            self._workers_ready[index] = True
            self._worker_down[index] = None
        return True

    def _run_display(self) -> None:
        heartbeat = self.liveness.heartbeat("display")
        seen = 0
        last_no_signal = 0.0
        while not self._stopping.is_set():
            heartbeat.beat(NO_SIGNAL_INTERVAL + 1.0)  # the wait, then drawing and encoding a frame
            frame = self.source.wait_newer(seen, timeout=NO_SIGNAL_INTERVAL)
            if frame is not None:
                seen = frame.number
                blur = self.config.face_blur_unknown
                self.broadcaster.publish(
                    annotate(frame.image, self._recognition.detections, blur), frame.captured
                )
                self._displayed += 1
                self._displayed_at.append(time.monotonic())
                continue
            status = self.source.status()
            if status.state != LIVE and time.monotonic() - last_no_signal >= NO_SIGNAL_INTERVAL:
                size = (self.config.frame_width, self.config.frame_height)
                self.broadcaster.publish(no_signal_frame(size, status.error))
                last_no_signal = time.monotonic()

    # -- read-outs --------------------------------------------------------------------------------
    @property
    def model(self) -> ModelInfo:
        return self.workers[0].model

    @property
    def recognised(self) -> int:
        return self._recognised

    def health(self) -> list[str]:
        """Why the app is not alive, one line per loop naming it: a loop stuck or dead, a worker
        process that died (until its replacement is up); empty when all is well. A missing
        stream is no reason: the capture loop is then busy reconnecting."""
        problems = self.liveness.problems()
        if self._stopping.is_set():
            return problems
        for index, worker in enumerate(self.workers):
            with self._lock:
                ready, down = self._workers_ready[index], self._worker_down[index]
            code = worker.exit_status() if ready else None
            if code is not None:
                problems.append(f"inference-{index}: worker process exited ({_exit_reason(code)})")
            elif down is not None:
                problems.append(f"inference-{index}: {down}; restarting")
        return problems

    def readiness(self) -> list[str]:
        """Why the app is not ready to serve recognitions; empty when it is.

        A missing stream is not among the reasons: the app then serves its "no signal" page,
        which must stay reachable through the Service, and a rollout must not wait for a
        camera. The stream's state is in status() instead.
        """
        if not all(self._workers_ready):
            return ["inference worker starting"]
        if self.model.error:
            return [f"model not loaded: {self.model.error}"]
        return []

    def status(self) -> dict[str, Any]:
        """JSON-ready snapshot for /api/status and the page."""
        source = self.source.status()
        recognition = self._recognition
        return {
            "version": __version__,
            "model": {
                "version": self.model.version,
                "people": list(self.model.people),
                "file": self.model.path,
                "error": self.model.error,
            },
            "tolerance": {"value": self.model.tolerance, "source": self.model.tolerance_source},
            "source": {
                "state": source.state,
                "input_fps": round(source.fps, 2),
                "frames": source.frames,
                "reconnects": source.reconnects,
                "late_frames": source.late_frames,
                "stall_limit": round(source.stall_limit, 3),
                "frame_age": None if source.frame_age is None else round(source.frame_age, 3),
                "error": source.error,
            },
            "display_fps": round(_rate(self._displayed_at), 2),
            "recognition": {
                "rate": round(_rate(self._recognised_at), 2),
                "target_fps": self.config.video_processing_fps,
                "frames": self._recognised,
                "full_frame_detections": self._full_frames,
                "faces_encoded": self._faces_encoded,
                "last_seconds": round(recognition.seconds, 4),
                "worker_restarts": self._worker_restarts,
            },
            "viewers": self.broadcaster.viewers,
            "detections": [detection_to_json(item) for item in recognition.detections],
            "detections_at": recognition.at or None,
            "names": sorted({item.match.name for item in recognition.detections}),
        }


def _exit_reason(code: int) -> str:
    """`Popen.returncode` in words: "code 1", "SIGKILL"."""
    if code >= 0:
        return f"code {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _rate(stamps: collections.deque[float]) -> float:
    """Events per second over the last RATE_WINDOW seconds (0 when fewer than two)."""
    now = time.monotonic()
    recent = [stamp for stamp in list(stamps) if now - stamp <= RATE_WINDOW]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


class _PipelineCollector(Collector):
    """Counters the pipeline already keeps, read at scrape time."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def collect(self) -> Any:
        source = self.pipeline.source.status()
        yield CounterMetricFamily(
            "edgeface_frames_in", "Frames read from the video source", value=source.frames
        )
        yield CounterMetricFamily(
            "edgeface_frames_recognised",
            "Frames run through detection and recognition",
            value=self.pipeline.recognised,
        )
        yield CounterMetricFamily(
            "edgeface_reconnects", "Times the video stream was lost and reopened", value=source.reconnects
        )
        yield GaugeMetricFamily(
            "edgeface_viewers", "MJPEG viewers connected", value=self.pipeline.broadcaster.viewers
        )
        yield GaugeMetricFamily(
            "edgeface_signal", "1 when frames arrive, 0 on no signal", value=int(source.state == LIVE)
        )
        yield GaugeMetricFamily(
            "edgeface_model_loaded", "1 when the model file loaded", value=int(self.pipeline.model.loaded)
        )
