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

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from edgeface.annotator import annotate, no_signal_frame
from edgeface.broadcaster import Broadcaster
from edgeface.config import AppConfig
from edgeface.detector import DetectorBackend
from edgeface.inference import (
    AUTO,
    FOLLOW,
    SCAN,
    FollowJob,
    InferenceError,
    InferenceResult,
    InferenceWorker,
    Job,
    ModelInfo,
    ScanJob,
)
from edgeface.liveness import Heartbeat, Liveness
from edgeface.metrics import PipelineCollector, PipelineMetrics
from edgeface.recogniser import DEFAULT_TOLERANCE
from edgeface.scanning import ScanBudget, ScanPlan, ScanPlanner, SceneShare, SceneWatch
from edgeface.source import LIVE, Frame, VideoSource
from edgeface.status import pipeline_status
from edgeface.tracks import FRESH_FRAMES, FaceTracks
from edgeface.values import Box, Detection

log = logging.getLogger(__name__)

NO_SIGNAL_INTERVAL = 0.5  # seconds between "no signal" frames
IDLE_SECONDS = 0.3  # the scanner's pause between tiles while nothing changes
SCENE_WAIT = 0.25  # longest the scanner waits at a time for another worker's part of a new scene
SCAN_ENCODINGS = 1  # attempts per scan (each ~75 ms): a scan busy when the scene cuts ends soon
INFER_SECONDS = 30.0  # longest a worker may take over one frame before its loop counts as stuck
STOP_SECONDS = 1.2  # the whole pipeline's shutdown deadline: `edgeface serve` ends within 2 s of SIGTERM


@dataclass(frozen=True)
class Recognition:
    """The faces to draw and when they were last updated."""

    detections: list[Detection] = field(default_factory=list)
    frame_number: int = 0
    at: float = 0.0  # epoch seconds the analysed frame was captured
    seconds: float = 0.0  # time the worker took


class FrameClaims:
    """Which inference thread takes which frame, and when each kind of work may start next."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._lock = threading.Lock()
        self._claimed = 0  # number of the newest frame an updating thread has taken
        self._next_turn: dict[str, float] = {}  # monotonic time the next update / scan may start

    @property
    def claimed(self) -> int:
        return self._claimed

    def claim(self, number: int) -> bool:
        """Take frame `number` for an update; False if another thread took it (or a newer one)."""
        with self._lock:
            if number <= self._claimed:
                return False
            self._claimed = number
            return True

    def wait_for_turn(self, kind: str, interval: float) -> None:
        """Space the starts of all threads' `kind` of work `interval` seconds apart (never bunched)."""
        with self._lock:
            now = time.monotonic()
            turn = max(self._next_turn.get(kind, 0.0), now)
            self._next_turn[kind] = turn + interval
        self._stopping.wait(turn - now)


class WorkerSlot:
    """The life cycle of one inference worker process: started, died, restarted, and what
    /healthz says about it meanwhile."""

    def __init__(
        self, index: int, worker: InferenceWorker, metrics: PipelineMetrics, stopping: threading.Event
    ):
        self.index, self.worker, self.metrics = index, worker, metrics
        self._stopping = stopping
        self._lock = threading.Lock()
        self.ready = False
        self.down: str | None = None  # why the worker is restarting

    @property
    def name(self) -> str:
        return f"inference-{self.index}"

    def ensure_running(self, heartbeat: Heartbeat) -> bool:
        """Start the worker if it is not running (a dead one is reported first); False when it
        could not be (the caller waits and tries again)."""
        if self.ready and (code := self.worker.exit_status()) is not None:
            self.died(f"worker process exited ({_exit_reason(code)})")
        if self.ready:
            return True
        heartbeat.beat(self.worker.start_timeout)
        try:
            self.worker.start()
        except (OSError, EOFError, ValueError, InferenceError) as error:
            self.worker.stop(timeout=1.0)
            if not self._stopping.is_set():
                log.error("cannot start inference worker %d: %s", self.index, error)
                with self._lock:
                    self.down = f"cannot start the worker process: {error}"
            heartbeat.beat(2.0)
            self._stopping.wait(2.0)
            return False
        with self._lock:
            self.ready, self.down = True, None
        return True

    def infer(self, image: np.ndarray, job: Job = None) -> InferenceResult | None:
        """The worker's result, or None when it failed (it is then restarted) or is down."""
        if not self.ready:  # died during this step: its loop restarts it
            return None
        try:
            return self.worker.infer(image, job)
        except InferenceError as error:
            if not self._stopping.is_set():  # at shutdown the workers' input is closed
                self.died(str(error))
            return None

    def died(self, reason: str) -> None:
        """The worker is gone: /healthz says so until its replacement has said hello."""
        self.worker.stop(timeout=1.0)
        code = self.worker.returncode
        if code is not None and f"({_exit_reason(code)})" not in reason:
            reason = f"{reason}; worker process exited ({_exit_reason(code)})"
        log.error("inference worker %d: %s; restarting it", self.index, reason)
        with self._lock:
            self.down, self.ready = reason, False
        self.metrics.restarted_worker()

    def problem(self) -> str | None:
        with self._lock:
            ready, down = self.ready, self.down
        code = self.worker.exit_status() if ready else None
        if code is not None:
            return f"{self.name}: worker process exited ({_exit_reason(code)})"
        if down is not None:
            return f"{self.name}: {down}; restarting"
        return None


class InferenceLoop:
    """The loop of one inference thread: keeps its worker running and repeats `step()`."""

    def __init__(self, pipeline: Pipeline, slot: WorkerSlot) -> None:
        self.pipeline, self.slot = pipeline, slot
        self.heartbeat = pipeline.liveness.heartbeat(slot.name)
        self.interval = 1.0 / pipeline.config.video_processing_fps

    def run(self) -> None:
        stopping = self.pipeline.stopping
        while not stopping.is_set():
            if not self.slot.ensure_running(self.heartbeat):
                continue
            if self.slot.worker.model.tolerance is not None:  # the model's own, unless FACE_TOLERANCE
                self.pipeline.tracks.named = self.slot.worker.model.tolerance
            # The turn's wait plus the wait for a frame; an idle stream is progress too.
            self.heartbeat.beat(len(self.pipeline.slots) * self.interval + 1.0)
            self.step()

    def step(self) -> None:
        raise NotImplementedError

    def newer_frame(self, than: int) -> Frame | None:
        frame = self.pipeline.source.wait_newer(than, timeout=0.5)
        if frame is not None:
            self.pipeline.enter_scene(frame)
        elif self.pipeline.source.status().state != LIVE:
            self.pipeline.show(Recognition())  # boxes of a vanished stream mean nothing
            self.pipeline.tracks.cut()
            self.pipeline.scan_whole_next()
        return frame

    def infer(self, frame: Frame, job: Job) -> InferenceResult | None:
        self.heartbeat.beat(INFER_SECONDS)
        return self.slot.infer(frame.image, job)

    def follow(self, frame: Frame) -> float | None:
        """Re-detect the faces on screen on `frame` around where they were; the worker's seconds
        (0 with nobody on screen), None when it failed."""
        tracks = self.pipeline.tracks
        regions = tracks.follow_regions(frame.number, frame.image.shape[:2])
        if not regions:
            return 0.0
        job = FollowJob(regions)
        result = self.infer(frame, job)
        if result is None:
            return None
        tracks.followed(frame.number, result.followed)
        self.pipeline.metrics.work(result.seconds)
        return result.seconds

    def scan_scene_part(self, frame: Frame) -> bool:
        """Scan a part of a new scene nobody took yet on `frame`, finding its faces only: their
        first attempts go to whichever worker is free then, two at once with two workers. False
        when there was no part to take."""
        pipeline = self.pipeline
        taken = pipeline.scene_part(frame.image)
        if taken is None:
            return False
        part, region = taken
        try:
            self.report(frame, self.infer(frame, ScanJob([region], encode_found=False)), whole=True)
        finally:
            pipeline.scene.done(part)
        return True

    def attempt(self, frame: Frame, faces: list[tuple[int, Box]]) -> float | None:
        """Recognition attempts only, on `frame`, of `faces` (track id, box; from to_encode):
        the worker's seconds, None when it failed."""
        return self.report(frame, self.infer(frame, ScanJob([], faces)), whole=False)

    def report(self, frame: Frame, result: InferenceResult | None, whole: bool) -> float | None:
        """Hand a scan of `frame` to the tracks and show the names it gave; its seconds, or None
        when the worker failed (the next scan is then whole)."""
        pipeline = self.pipeline
        if result is None:
            pipeline.scan_whole_next()
            return None
        attempts = [(item.track, item.box, item.candidates) for item in result.attempts]
        pipeline.tracks.scanned(frame.number, result.found, attempts)
        pipeline.metrics.work(result.seconds, result.encoded, scan=True, full_frame=whole)
        if result.attempts:  # new names show now, not at the next update
            self.show_names(frame)
        return result.seconds

    def show_names(self, scanned: Frame) -> None:
        """Show the names of a scan of `scanned` now. When the stream has moved on since (a long
        scan), its new faces are found again on the newest frame first (as the follower would,
        a few ms): they may have moved (edgeface.tracks shows no box that old)."""
        pipeline = self.pipeline
        newest = pipeline.source.latest()
        if newest is not None and newest.number > scanned.number + FRESH_FRAMES:
            seconds = self.follow(newest)
            if seconds is not None:
                shown = pipeline.tracks.shown(newest.number)
                pipeline.show(Recognition(shown, newest.number, newest.captured, seconds), update=False)
            return
        recognition = pipeline.recognition
        shown = pipeline.tracks.shown(recognition.frame_number)
        pipeline.show(replace(recognition, detections=shown), update=False)


class AutoLoop(InferenceLoop):
    """Takes its turn with the frames; its worker detects, tracks and names faces on its own."""

    def step(self) -> None:
        self.pipeline.claims.wait_for_turn("update", self.interval)
        frame = self.newer_frame(self.pipeline.claims.claimed)
        if frame is None or not self.pipeline.claims.claim(frame.number):
            return
        result = self.infer(frame, None)
        if result is not None:
            self.pipeline.metrics.work(result.seconds, result.encoded, full_frame=result.full_frame)
            self.pipeline.show(Recognition(result.detections, frame.number, frame.captured, result.seconds))


class FollowLoop(InferenceLoop):
    """Every update (up to VIDEO_PROCESSING_FPS): re-detects the faces on screen around where they
    were (edgeface.tracks) and shows them with their voted names. While a new scene's first scan
    has a half nobody took yet (nobody to follow then), it scans that half first: the scanner
    takes the other one as soon as it is free, or this loop does on its next update. A face never
    tried yet it tries once after the update, beside the scanner: the faces of a cut are named
    two at a time."""

    def step(self) -> None:
        pipeline = self.pipeline
        pipeline.claims.wait_for_turn("update", self.interval)
        frame = self.newer_frame(pipeline.claims.claimed)
        if frame is None or not pipeline.claims.claim(frame.number):
            return
        self.scan_scene_part(frame)
        seconds = self.follow(frame)
        if seconds is not None:
            shown = pipeline.tracks.shown(frame.number)
            pipeline.show(Recognition(shown, frame.number, frame.captured, seconds))
            if first := pipeline.tracks.to_encode(limit=1, untried=True):
                self.attempt(frame, first)


class ScanLoop(InferenceLoop):
    """Looks at every frame: scans where new faces may be (edgeface.scanning) as soon as the
    picture changed there, and makes the recognition attempts the faces on screen are due
    (SCAN_ENCODINGS a scan; a face never tried goes first, on its own); while nothing changes,
    one tile every IDLE_SECONDS. It rests only when its ScanBudget says (a pan rescanned whole
    costs at most half a core), and not after a cut. Of a new scene it scans a half nobody took
    yet (edgeface.pipeline.Pipeline.scene_part), then waits for the other half's faces."""

    def __init__(self, pipeline: Pipeline, slot: WorkerSlot) -> None:
        super().__init__(pipeline, slot)
        self.interval = IDLE_SECONDS
        self.scanned = 0  # number of the last frame this loop looked at
        self.budget = ScanBudget()
        self.patrol_at = 0.0  # monotonic time the next idle tile is due

    def step(self) -> None:
        pipeline = self.pipeline
        frame = self.newer_frame(self.scanned)
        if frame is None:
            return
        self.scanned = frame.number
        if self.scan_scene_part(frame):
            return
        if pipeline.scene.busy():  # the rest of the new scene is being scanned: its faces come next
            pipeline.scene.wait(SCENE_WAIT)
            return
        if first := pipeline.tracks.to_encode(limit=1, untried=True):
            seconds = self.attempt(frame, first)  # a new face's name before anything else
        else:
            followed = pipeline.tracks.boxes()
            due = pipeline.tracks.to_encode(limit=SCAN_ENCODINGS)
            plan = pipeline.planner(frame.image, followed, patrol=time.monotonic() >= self.patrol_at)
            if not plan.regions and not due:
                return  # nothing changed, nobody due: the next frame is looked at
            seconds = self.report(
                frame, self.infer(frame, ScanJob(plan.regions, due, followed)), whole=plan.whole
            )
            if seconds is not None and plan.idle:
                self.patrol_at = time.monotonic() + IDLE_SECONDS
        if seconds is None:
            return
        rest = self.budget.spend(seconds)
        if pipeline.scene_cut.wait(rest):
            pipeline.scene_cut.clear()
            self.budget.forgive()


class Pipeline:
    def __init__(self, config: AppConfig, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.liveness = Liveness()
        self.stopping = threading.Event()
        self.source = VideoSource(
            config.video_stream_url,
            device=config.video_device_id,
            size=(config.frame_width, config.frame_height),
            stall_seconds=config.stall_seconds,
            heartbeat=self.liveness.heartbeat("capture"),
            cuts=SceneWatch().cut,
        )
        self.workers = [InferenceWorker(config) for _ in range(config.inference_workers)]
        self.broadcaster = Broadcaster(heartbeat=self.liveness.heartbeat("mjpeg-writer"))
        self.registry = registry or CollectorRegistry()
        self.metrics = PipelineMetrics(self.registry, per_person=config.metrics_per_person)
        self.faces = self.metrics.faces
        self.registry.register(PipelineCollector(self))
        self.slots = [
            WorkerSlot(index, worker, self.metrics, self.stopping)
            for index, worker in enumerate(self.workers)
        ]
        self.claims = FrameClaims(self.stopping)
        tolerance = config.face_tolerance if config.face_tolerance is not None else DEFAULT_TOLERANCE
        self.tracks = FaceTracks(tolerance, config.face_unknown_distance, config.face_min_size)
        self._planner = ScanPlanner()
        self._planner_lock = threading.Lock()
        self.scene = SceneShare()  # a new scene's first scan, shared out (scene_part)
        self._scene_started = 0  # Frame.scene of the newest scene begun (enter_scene)
        self._scene_lock = threading.Lock()
        self.scene_cut = threading.Event()  # set on a cut and at stop: the scanner's rest ends
        self.recognition = Recognition()
        self._show_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Pipeline:
        if self._threads:
            return self
        self.source.start()
        loops = {AUTO: AutoLoop, FOLLOW: FollowLoop, SCAN: ScanLoop}
        for slot in self.slots:
            loop = loops[self.mode_of(slot.index)](self, slot)
            thread = threading.Thread(target=loop.run, name=slot.name, daemon=True)
            self.liveness.heartbeat(slot.name).attach(thread, slot.worker.start_timeout)
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

        self.stopping.set()
        self.scene_cut.set()
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
        every update (a few ms) and the others scan where new faces may be and make the
        recognition attempts (edgeface.scanning, edgeface.tracks). Otherwise (one worker,
        tracking off, or updates no more frequent than FACE_TRACK_SECONDS, as at the seed's 1/s)
        each worker detects and names on its own (AUTO), taking turns with the frames."""
        config = self.config
        if len(self.workers) < 2 or config.video_processing_fps * config.face_track_seconds <= 1.0:
            return AUTO
        return FOLLOW if index == 0 else SCAN

    def planner(self, image: np.ndarray, followed: list[Box], patrol: bool = True) -> ScanPlan:
        """The next scan's plan (shared by the scanning threads: each plans on a newer frame)."""
        with self._planner_lock:
            return self._planner.plan(image, followed, patrol)

    def scan_whole_next(self) -> None:
        """The next scan is of the whole frame (the stream is back, a new scene): see scene_part."""
        with self._planner_lock:
            self._planner.reset()
            self.scene.restart()

    def scene_part(self, image: np.ndarray) -> tuple[int, Box] | None:
        """(id, region) of a part of a new scene's first scan that nobody took yet, to scan on
        `image` (HxWx3), or None; `scene.done(id)` once reported. The first caller after
        scan_whole_next() cuts `image` in two halves (edgeface.scanning.halves; whole with one
        worker) and makes it the reference of the next plans; each half goes to the first worker
        free to scan it, so that neither waits for a scan the other is busy with."""
        with self._planner_lock:
            return self.scene.take(
                lambda: self._planner.plan(image, []).regions[0], split=self.mode_of(0) == FOLLOW
            )

    def enter_scene(self, frame: Frame) -> None:
        """Begin the scene `frame` is of, unless begun: by the first thread to see one of its
        frames (the display or an inference loop), so that no scan of a cut starts unshared."""
        with self._scene_lock:
            if frame.scene <= self._scene_started:
                return
            self._scene_started = frame.scene
        self.new_scene(frame.scene)

    def new_scene(self, frame_number: int) -> None:
        """The scene cut on frame `frame_number`: its faces are not the ones followed so far. None
        is drawn from this frame on until found again, and the frame is scanned whole."""
        self.tracks.cut(frame_number)
        self.show(Recognition(frame_number=frame_number), update=False)
        self.scan_whole_next()
        self.scene_cut.set()

    def show(self, recognition: Recognition, update: bool = True) -> None:
        """Draw `recognition`'s faces from now on (unless a newer frame's are shown); an `update`
        is counted as one."""
        with self._show_lock:
            if recognition.frame_number >= self.recognition.frame_number or not recognition.frame_number:
                self.recognition = recognition
        if update and recognition.frame_number:
            self.metrics.update(recognition.detections)

    def _run_display(self) -> None:
        heartbeat = self.liveness.heartbeat("display")
        seen = 0
        last_no_signal = 0.0
        while not self.stopping.is_set():
            heartbeat.beat(NO_SIGNAL_INTERVAL + 1.0)  # the wait, then drawing and encoding a frame
            frame = self.source.wait_newer(seen, timeout=NO_SIGNAL_INTERVAL)
            if frame is not None:
                seen = frame.number
                self.enter_scene(frame)
                detections = self.recognition.detections
                blur = self.config.face_blur_unknown
                self.broadcaster.publish(annotate(frame.image, detections, blur), frame.captured)
                self.metrics.displayed_frame()
                if self.on_display is not None:
                    self.on_display(frame, detections)
                continue
            status = self.source.status()
            if status.state != LIVE and time.monotonic() - last_no_signal >= NO_SIGNAL_INTERVAL:
                size = (self.config.frame_width, self.config.frame_height)
                self.broadcaster.publish(no_signal_frame(size, status.error))
                last_no_signal = time.monotonic()

    on_display: Callable[[Frame, list[Detection]], None] | None = None
    """Called with each displayed frame and the faces drawn on it (for measurements)."""

    # -- read-outs --------------------------------------------------------------------------------
    @property
    def model(self) -> ModelInfo:
        return self.workers[0].model

    @property
    def backend(self) -> DetectorBackend | None:
        """What the detector runs on, as the first worker probed it; None until its hello."""
        return self.workers[0].backend

    @property
    def recognised(self) -> int:
        return self.metrics.updates

    def health(self) -> list[str]:
        """Why the app is not alive, one line per loop naming it: a loop stuck or dead, a worker
        process that died (until its replacement is up); empty when all is well. A missing
        stream is no reason: the capture loop is then busy reconnecting."""
        problems = self.liveness.problems()
        if self.stopping.is_set():
            return problems
        return problems + [problem for slot in self.slots if (problem := slot.problem()) is not None]

    def readiness(self) -> list[str]:
        """Why the app is not ready to serve recognitions; empty when it is.

        A missing stream is not among the reasons: the app then serves its "no signal" page,
        which must stay reachable through the Service, and a rollout must not wait for a
        camera. The stream's state is in status() instead. A detector on the CPU is one only
        with FACE_REQUIRE_CUDA=on: a rollout to a device whose pod got no GPU then fails.
        """
        if not all(slot.ready for slot in self.slots):
            return ["inference worker starting"]
        reasons = []
        if self.model.error:
            reasons.append(f"model not loaded: {self.model.error}")
        backend = self.backend  # set: every worker has said hello
        if (
            self.config.face_require_cuda
            and backend is not None
            and (cpu_only := backend.problem(required=True))
        ):
            reasons.append(cpu_only)
        return reasons

    def status(self) -> dict[str, Any]:
        """JSON-ready snapshot for /api/status and the page (edgeface.status)."""
        return pipeline_status(self)


def _exit_reason(code: int) -> str:
    """`Popen.returncode` in words: "code 1", "SIGKILL"."""
    if code >= 0:
        return f"code {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"
