"""The device's workers, shared by every camera: the most urgent job waiting goes first."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgeface.config import AppConfig
from edgeface.detector import overlap
from edgeface.inference import ScanJob
from edgeface.liveness import Liveness
from edgeface.values import Box
from edgeface.workers import SCAN, URGENT, WorkerPool
from servers import face_frame, wait_until

pytestmark = pytest.mark.slow


WHOLE = ScanJob([Box(0, 1280, 720, 0)])  # ~0.3 s on one core: the worker is busy meanwhile


@pytest.fixture
def one_worker(obama_model: Path) -> Iterator[WorkerPool]:
    stopping = threading.Event()
    pool = WorkerPool(AppConfig(model_filename=obama_model, inference_workers=1), Liveness(), stopping)
    pool.start()
    try:
        wait_until(lambda: pool.ready, 120, "the worker's hello")
        yield pool
    finally:
        stopping.set()
        pool.close_input()
        pool.stop(lambda: 2.0)


def finishing_order(pool: WorkerPool, frame: np.ndarray, jobs: list[tuple[str, ScanJob, int]]) -> list[str]:
    """The names of `jobs` (name, job, priority) as they finish, submitted in turn: the first while
    the worker is idle, the others while it is busy with it."""
    finished: list[str] = []

    def submit(name: str, job: ScanJob, priority: int) -> None:
        assert pool.infer(frame, job, priority) is not None
        finished.append(name)

    threads = []
    for index, item in enumerate(jobs):
        threads.append(threading.Thread(target=submit, args=item))
        threads[-1].start()
        time.sleep(0.1 if index == 0 else 0.03)  # the first one taken, the next ones waiting
    for thread in threads:
        thread.join(30)
    return finished


def test_an_urgent_job_overtakes_the_jobs_waiting_before_it(
    one_worker: WorkerPool, sample_photos: Path
) -> None:
    frame = face_frame(sample_photos)
    jobs = [("busy", WHOLE, SCAN), ("scan", WHOLE, SCAN), ("urgent", WHOLE, URGENT)]

    assert finishing_order(one_worker, frame, jobs) == ["busy", "urgent", "scan"]


def test_of_equal_priority_a_small_job_overtakes_a_large_one_submitted_just_before(
    one_worker: WorkerPool, sample_photos: Path
) -> None:
    """A face that appeared in a small region on one camera is not kept waiting behind the large
    pieces of another camera's pan; jobs submitted together come back as each is done."""
    frame = face_frame(sample_photos)
    small = ScanJob([Box(0, 200, 200, 0)])
    jobs = [("busy", WHOLE, SCAN), ("large", WHOLE, SCAN), ("small", small, SCAN)]

    assert finishing_order(one_worker, frame, jobs) == ["busy", "small", "large"]
    together = list(one_worker.infer_each(frame, [WHOLE, small], SCAN))
    assert [index for index, _ in together] == [1, 0]  # the small one first, each with its result
    assert [len(result.found) for _, result in together if result is not None] == [0, 2]


def test_a_job_sends_the_worker_only_the_part_it_looks_at(obama_model: Path, sample_photos: Path) -> None:
    from edgeface.inference import InferenceWorker, job_extent

    frame = face_frame(sample_photos)
    worker = InferenceWorker(AppConfig(model_filename=obama_model)).start()
    try:
        whole = worker.infer(frame, ScanJob([Box(0, 1280, 720, 0)]))
        right = Box(0, 1280, 720, 640)
        part = worker.infer(frame, ScanJob([right], encode=[(7, whole.found[0])], known=whole.found))
    finally:
        worker.stop()

    assert job_extent(ScanJob([right]), frame.shape) == right
    # The boxes come back in the whole frame's pixels, where a scan of the whole frame finds them.
    (stranger,) = [box for box in whole.found if box.left >= 640]
    (found,) = part.found
    assert overlap(found, stranger) > 0.8
    (attempt,) = part.attempts  # the face to encode (outside the region) was sent with it
    assert attempt.track == 7 and attempt.box == whole.found[0]
    name = "Barack Obama"
    assert attempt.candidates[name] == pytest.approx(whole.attempts[0].candidates[name], abs=0.02)


def test_an_attempt_in_the_ambiguous_band_is_made_again_at_once(
    obama_model: Path, sample_photos: Path
) -> None:
    from edgeface.inference import InferenceWorker

    frame = face_frame(sample_photos)
    whole = ScanJob([Box(0, 1280, 720, 0)])
    sure = InferenceWorker(AppConfig(model_filename=obama_model)).start()
    try:
        first = sure.infer(frame, whole)
    finally:
        sure.stop()
    distance = min(first.attempts, key=lambda a: a.candidates["Barack Obama"]).candidates["Barack Obama"]
    # A tolerance just above Obama's distance puts his attempt in the band: named, not surely.
    unsure = InferenceWorker(AppConfig(model_filename=obama_model, face_tolerance=distance + 0.05)).start()
    try:
        again = unsure.infer(frame, whole)
    finally:
        unsure.stop()

    assert len(first.attempts) == 2  # Obama well inside 0.6, the stranger far outside 0.7: one each
    obama = [a for a in again.attempts if a.candidates["Barack Obama"] < distance + 0.05 + 0.1]
    assert len(again.attempts) == 3 and len(obama) == 2
    assert obama[0].box == obama[1].box and obama[0].candidates != obama[1].candidates  # another view
    assert abs(obama[1].candidates["Barack Obama"] - distance) < 0.1
