"""The device's workers, shared by every camera: the most urgent job waiting goes first."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from edgeface.config import AppConfig
from edgeface.detector import overlap
from edgeface.inference import ScanJob
from edgeface.liveness import Liveness
from edgeface.values import Box
from edgeface.workers import SCAN, URGENT, WorkerPool
from servers import face_frame, wait_until

pytestmark = pytest.mark.slow


def test_an_urgent_job_overtakes_the_jobs_waiting_before_it(obama_model: Path, sample_photos: Path) -> None:
    stopping = threading.Event()
    pool = WorkerPool(AppConfig(model_filename=obama_model, inference_workers=1), Liveness(), stopping)
    pool.start()
    frame = face_frame(sample_photos)
    whole = ScanJob([Box(0, 1280, 720, 0)])  # ~0.3 s on one core: the worker is busy meanwhile
    finished: list[str] = []

    def submit(name: str, priority: int) -> None:
        result = pool.infer(frame, whole, priority)
        assert result is not None and len(result.found) == 2
        finished.append(name)

    try:
        wait_until(lambda: pool.ready, 120, "the worker's hello")
        threads = [threading.Thread(target=submit, args=("busy", SCAN))]
        threads[0].start()
        time.sleep(0.1)  # the worker took it
        for name, priority in (("scan", SCAN), ("urgent", URGENT)):
            threads.append(threading.Thread(target=submit, args=(name, priority)))
            threads[-1].start()
            time.sleep(0.05)
        for thread in threads:
            thread.join(30)
    finally:
        stopping.set()
        pool.close_input()
        pool.stop(lambda: 2.0)

    assert finished == ["busy", "urgent", "scan"]


def test_of_equal_priority_a_small_job_overtakes_a_large_one_submitted_just_before(
    obama_model: Path, sample_photos: Path
) -> None:
    """A face that appeared in a small region on one camera is not kept waiting behind the large
    pieces of another camera's pan; jobs submitted together come back as each is done."""
    stopping = threading.Event()
    pool = WorkerPool(AppConfig(model_filename=obama_model, inference_workers=1), Liveness(), stopping)
    pool.start()
    frame = face_frame(sample_photos)
    whole, small = ScanJob([Box(0, 1280, 720, 0)]), ScanJob([Box(0, 200, 200, 0)])
    finished: list[str] = []

    def submit(name: str, job: ScanJob) -> None:
        assert pool.infer(frame, job, SCAN) is not None
        finished.append(name)

    try:
        wait_until(lambda: pool.ready, 120, "the worker's hello")
        threads = [threading.Thread(target=submit, args=("busy", whole))]
        threads[0].start()
        time.sleep(0.1)  # the worker took it
        for name, job in (("large", whole), ("small", small)):
            threads.append(threading.Thread(target=submit, args=(name, job)))
            threads[-1].start()
            time.sleep(0.02)
        for thread in threads:
            thread.join(30)
        together = list(pool.infer_each(frame, [whole, small], SCAN))
    finally:
        stopping.set()
        pool.close_input()
        pool.stop(lambda: 2.0)

    assert finished == ["busy", "small", "large"]
    assert [index for index, _ in together] == [1, 0]  # the small one first, each with its result
    assert len(together[1][1].found) == 2 and together[0][1].found == []


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
