"""The device's inference workers, shared by every camera and scheduled by need.

dlib runs on one core per worker process (edgeface.inference), so a device has as many workers as
it has cores to give (`INFERENCE_WORKERS`), whatever its number of cameras. Each camera's loops
(edgeface.camera) hand their jobs to the pool and wait for the results; one thread per worker
takes the most urgent job waiting. Within a priority, the job that would be done first if each
ran alone goes first (submitted + its expected seconds, `job_seconds`): a small region where a
face just appeared on one camera overtakes the large pieces of another camera's pan submitted
a moment before, and a large piece waits at most its own length for smaller ones.

- URGENT: a part of a new scene's first scan, a face never tried: a cut or a new face on any
  camera is looked at before anything else;
- FOLLOW: re-detecting the faces on screen around where they were (a few ms each);
- SCAN: where the picture changed, the attempts the faces on screen are due, an idle tile.

A worker process that dies is restarted by its thread (`WorkerSlot`); the job it had fails (None)
and the camera that asked rescans its frame whole.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgeface.config import AppConfig
from edgeface.detector import DetectorBackend
from edgeface.inference import InferenceError, InferenceResult, InferenceWorker, Job, ModelInfo, job_seconds
from edgeface.liveness import Heartbeat, Liveness

log = logging.getLogger(__name__)

URGENT, FOLLOW, SCAN = 0, 1, 2
"""Job priorities, most urgent first (see the module's docstring)."""
INFER_SECONDS = 30.0  # longest a worker may take over one frame before its loop counts as stuck
WAIT_SECONDS = 0.5  # a worker thread's longest wait for a job (it beats in between)


class WorkerSlot:
    """The life cycle of one inference worker process: started, died, restarted, and what
    /healthz says about it meanwhile."""

    def __init__(self, index: int, worker: InferenceWorker, stopping: threading.Event) -> None:
        self.index, self.worker = index, worker
        self._stopping = stopping
        self._lock = threading.Lock()
        self.ready = False
        self.down: str | None = None  # why the worker is restarting
        self.restarts = 0

    @property
    def name(self) -> str:
        return f"inference-{self.index}"

    def ensure_running(self, heartbeat: Heartbeat) -> bool:
        """Start the worker if it is not running (a dead one is reported first); False when it
        could not be (the caller waits and tries again)."""
        if self.ready and (code := self.worker.exit_status()) is not None:
            self.died(f"worker process exited ({exit_reason(code)})")
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

    def infer(self, image: np.ndarray, job: Job) -> InferenceResult | None:
        """The worker's result, or None when it failed (it is then restarted) or is down."""
        if not self.ready:
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
        if code is not None and f"({exit_reason(code)})" not in reason:
            reason = f"{reason}; worker process exited ({exit_reason(code)})"
        log.error("inference worker %d: %s; restarting it", self.index, reason)
        with self._lock:
            self.down, self.ready = reason, False
            self.restarts += 1

    def problem(self) -> str | None:
        with self._lock:
            ready, down = self.ready, self.down
        code = self.worker.exit_status() if ready else None
        if code is not None:
            return f"{self.name}: worker process exited ({exit_reason(code)})"
        if down is not None:
            return f"{self.name}: {down}; restarting"
        return None


@dataclass(order=True)
class _Request:
    priority: int
    due: float  # monotonic time it would be done if it ran alone from its submission
    order: int
    image: np.ndarray = field(compare=False)
    job: Job = field(compare=False)
    index: int = field(compare=False)  # its place among the jobs submitted with it
    finished: queue.SimpleQueue[int] = field(compare=False)  # where its index goes once done
    result: InferenceResult | None = field(default=None, compare=False)

    def finish(self, result: InferenceResult | None) -> None:
        self.result = result
        self.finished.put(self.index)


class WorkerPool:
    """`count` worker processes for every camera of the device; `infer()` from any thread."""

    def __init__(self, config: AppConfig, liveness: Liveness, stopping: threading.Event) -> None:
        self.workers = [InferenceWorker(config) for _index in range(config.inference_workers)]
        self.slots = [WorkerSlot(index, worker, stopping) for index, worker in enumerate(self.workers)]
        self._liveness = liveness
        self._stopping = stopping
        self._waiting: list[_Request] = []
        self._changed = threading.Condition()
        self._order = itertools.count()
        self._threads: list[threading.Thread] = []

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        for slot in self.slots:
            thread = threading.Thread(target=self._serve, args=(slot,), name=slot.name, daemon=True)
            self._liveness.heartbeat(slot.name).attach(thread, slot.worker.start_timeout)
            thread.start()
            self._threads.append(thread)

    def close_input(self) -> None:
        """Ask every worker to end (all at once: each finishes its frame and exits, in parallel);
        the jobs still waiting fail."""
        with self._changed:
            waiting, self._waiting = self._waiting, []
            self._changed.notify_all()
        for request in waiting:
            request.finish(None)
        for worker in self.workers:
            worker.close_input()

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout)

    # -- work -------------------------------------------------------------------------------
    def infer(self, image: np.ndarray, job: Job, priority: int = SCAN) -> InferenceResult | None:
        """Run `job` on `image` (HxWx3 uint8 BGR) on the first worker free, the most urgent job
        first; None when the worker failed or the pool is stopping."""
        for _index, result in self.infer_each(image, [job], priority):
            return result
        return None

    def infer_each(
        self, image: np.ndarray, jobs: Sequence[Job], priority: int = SCAN
    ) -> Iterator[tuple[int, InferenceResult | None]]:
        """Run `jobs` on `image` at once, each on the first worker free: (index in `jobs`, result)
        as each is done (None when its worker failed); it stops early when the pool stops."""
        finished: queue.SimpleQueue[int] = queue.SimpleQueue()
        now = time.monotonic()
        requests = [
            _Request(
                priority, now + job_seconds(job, image.shape), next(self._order), image, job, index, finished
            )
            for index, job in enumerate(jobs)
        ]
        with self._changed:
            if self._stopping.is_set():
                return
            for request in requests:
                heapq.heappush(self._waiting, request)
            self._changed.notify(len(requests))
        for _request in requests:
            while True:
                try:
                    index = finished.get(timeout=WAIT_SECONDS)
                    break
                except queue.Empty:
                    if self._stopping.is_set():
                        return
            yield index, requests[index].result

    def _take(self) -> _Request | None:
        with self._changed:
            self._changed.wait_for(lambda: self._waiting or self._stopping.is_set(), WAIT_SECONDS)
            return heapq.heappop(self._waiting) if self._waiting and not self._stopping.is_set() else None

    def _serve(self, slot: WorkerSlot) -> None:
        heartbeat = self._liveness.heartbeat(slot.name)
        while not self._stopping.is_set():
            if not slot.ensure_running(heartbeat):
                continue
            heartbeat.beat(WAIT_SECONDS + 1.0)
            request = self._take()
            if request is None:
                continue
            heartbeat.beat(INFER_SECONDS)
            request.finish(slot.infer(request.image, request.job))

    # -- read-outs --------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Every worker has said hello."""
        return all(slot.ready for slot in self.slots)

    @property
    def serving(self) -> bool:
        """A worker takes jobs."""
        return any(slot.ready for slot in self.slots)

    @property
    def model(self) -> ModelInfo:
        return self.workers[0].model

    @property
    def backend(self) -> DetectorBackend | None:
        """What the detector runs on, as the first worker probed it; None until its hello."""
        return self.workers[0].backend

    @property
    def restarts(self) -> int:
        return sum(slot.restarts for slot in self.slots)

    def pids(self) -> list[int]:
        return [pid for worker in self.workers if (pid := worker.pid) is not None]

    def problems(self) -> list[str]:
        return [problem for slot in self.slots if (problem := slot.problem()) is not None]

    def stop(self, remaining: Callable[[], float]) -> bool:
        """Wait for the workers to exit, each up to `remaining()` s (the shutdown's deadline);
        True when each exited by itself."""
        exited = [worker.stop(remaining()) for worker in self.workers]  # every one, not up to a failure
        return all(exited)


def exit_reason(code: int) -> str:
    """`Popen.returncode` in words: "code 1", "SIGKILL"."""
    if code >= 0:
        return f"code {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"
