"""One camera: the composition root of its source, scene, faces, view and loops.

Threads of a camera, whatever the number of viewers:
- `capture` (edgeface.source): reads the stream, keeps only the newest frame, and asks the scene
  whether each frame cuts;
- `follow`: every update (up to VIDEO_PROCESSING_FPS) re-detects the faces on screen around where
  they were (edgeface.tracks) and shows them with their voted names;
- `scan`: looks at every frame for where new faces may be (edgeface.scanning) and makes the
  recognition attempts the faces on screen are due;
- `display`: for every new frame, draws the latest faces on it and JPEG-encodes it once for all
  viewers, while someone watches (edgeface.broadcaster); "no signal" twice a second meanwhile.

The two inference loops hand their jobs to the device's shared workers (edgeface.workers), the
most urgent first: a new scene's halves (both at once, by whichever loop sees the cut first) and a
face never tried before following, following before the rest of the scanning. With several
cameras, each loop's name carries its camera's (`capture door`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from edgeface.annotator import annotate, no_signal_frame
from edgeface.broadcaster import Broadcaster
from edgeface.config import AppConfig, CameraSpec
from edgeface.detector import Detector
from edgeface.inference import FollowJob, InferenceResult, Job, ScanJob
from edgeface.liveness import Liveness
from edgeface.metrics import CameraMetrics, MetricFamilies
from edgeface.recogniser import choose_tolerance
from edgeface.scanning import FINE_SCALE, FineLook, ScanBudget, StillFaces, pieces
from edgeface.scene import Scene
from edgeface.snapshot import CameraSnapshot, Recognition
from edgeface.source import LIVE, Frame, VideoSource
from edgeface.tracks import FRESH_FRAMES, FaceTracks
from edgeface.values import Box, Detection
from edgeface.workers import FOLLOW, SCAN, URGENT, WorkerPool

NO_SIGNAL_INTERVAL = 0.5  # seconds between "no signal" frames
IDLE_SECONDS = 0.3  # the scanner's pause between tiles while nothing changes
SCENE_WAIT = 0.25  # longest the scanner waits at a time for the follower's part of a new scene
SCAN_ENCODINGS = 1  # attempts per scan (each ~75 ms): a scan busy when the scene cuts ends soon
PIECES = 6  # a scan's regions go to the workers in pieces of at most 1/PIECES of the frame (~0.1 s each)
FRAME_WAIT = 0.5  # an inference loop's longest wait for a new frame (it beats in between)
JOB_SECONDS = 30.0  # longest a loop may wait for the workers over one job before it counts as stuck


class View:
    """What a camera shows: the newest recognition, set by its inference loops, read by its
    display and its status."""

    def __init__(self, metrics: CameraMetrics) -> None:
        self._metrics = metrics
        self.lock = threading.Lock()
        self._recognition = Recognition()

    @property
    def recognition(self) -> Recognition:
        with self.lock:
            return self._recognition

    def show(self, recognition: Recognition, update: bool = True) -> None:
        """Draw `recognition`'s faces from now on (unless a newer frame's are shown); an `update`
        is counted as one."""
        with self.lock:
            if recognition.frame_number >= self._recognition.frame_number or not recognition.frame_number:
                self._recognition = recognition
        if update and recognition.frame_number:
            self._metrics.update(recognition.detections)

    def clear(self, frame_number: int) -> None:
        """No face is drawn from frame `frame_number` on (0: from now on)."""
        self.show(Recognition(frame_number=frame_number), update=False)


class CameraLoop:
    """What both inference loops of a camera do: wait for a frame, ask the workers, report."""

    name = "loop"
    priority = SCAN
    interval = 1.0

    def __init__(self, camera: Camera, pool: WorkerPool) -> None:
        self.camera, self.pool = camera, pool
        self.source, self.scene, self.tracks = camera.source, camera.scene, camera.tracks
        self.view, self.metrics = camera.view, camera.metrics
        self.stopping = camera.stopping
        self.heartbeat = camera.liveness.heartbeat(camera.loop_name(self.name))

    def run(self) -> None:
        while not self.stopping.is_set():
            # The turn's wait plus the wait for a frame; an idle stream is progress too.
            self.heartbeat.beat(self.interval + FRAME_WAIT + 1.0)
            if not self.pool.serving:  # the workers are starting (dlib and the model load)
                self.stopping.wait(FRAME_WAIT)
                continue
            if (tolerance := self.pool.model.tolerance) is not None:  # the model's, unless FACE_TOLERANCE
                self.tracks.named = tolerance
            self.step()

    def step(self) -> None:
        raise NotImplementedError

    def newer_frame(self, than: int) -> Frame | None:
        frame = self.source.wait_newer(than, timeout=FRAME_WAIT)
        if frame is not None:
            self.scene.enter(frame)
        elif self.source.status().state != LIVE:
            self.scene.lost()  # boxes of a vanished stream mean nothing
        return frame

    def infer(self, frame: Frame, job: Job, priority: int | None = None) -> InferenceResult | None:
        for _index, result in self.infer_each(frame, [job], priority):
            return result
        return None

    def infer_each(
        self, frame: Frame, jobs: Sequence[Job], priority: int | None = None
    ) -> Iterator[tuple[int, InferenceResult | None]]:
        """`jobs` on `frame` at once (edgeface.workers.WorkerPool.infer_each)."""
        self.heartbeat.beat(JOB_SECONDS)
        return self.pool.infer_each(frame.image, jobs, self.priority if priority is None else priority)

    def follow(self, frame: Frame) -> float | None:
        """Re-detect the faces on screen on `frame` around where they were; the worker's seconds
        (0 with nobody on screen), None when it failed."""
        regions = self.tracks.follow_regions(frame.number, frame.image.shape[:2])
        if not regions:
            return 0.0
        result = self.infer(frame, FollowJob(regions), FOLLOW)
        if result is None:
            return None
        self.tracks.followed(frame.number, result.followed)
        self.metrics.work(result.seconds)
        return result.seconds

    def scan_scene_part(self, frame: Frame) -> bool:
        """Scan the parts of a new scene nobody took yet on `frame`, all at once on the workers
        free (the first of a camera's loops to see the cut takes them all: the other may be busy
        for a while). The parts only find faces; as each is reported, the first attempts of the
        faces it found go to the workers at once, one job each (`attempt_all`): two faces in one
        half are named in parallel, not one after the other. False when there was no part."""
        taken = []
        while (part := self.scene.part(frame.image, frame.grey)) is not None:
            taken.append(part)
        if not taken:
            return False
        try:
            jobs = [ScanJob([region], encode_found=False) for _part, region in taken]
            for index, result in self.infer_each(frame, jobs, URGENT):
                self.report(frame, result, whole=True)
                self.scene.share.done(taken[index][0])
                self.attempt_all(frame)
        finally:
            for part_id, _region in taken:
                self.scene.share.done(part_id)  # a part not reported (the pool stopped) holds nobody up
        return True

    def attempt_all(self, frame: Frame) -> None:
        """The first attempts of the faces never tried, on `frame`, one job each and all at once
        (as many as there are workers; the others wait for a loop's next turn)."""
        faces = self.tracks.to_encode(limit=len(self.pool.workers), untried=True)
        jobs = [ScanJob([], [face]) for face in faces]
        for _index, result in self.infer_each(frame, jobs, URGENT):
            self.report(frame, result, whole=False)

    def attempt(self, frame: Frame, faces: list[tuple[int, Box]]) -> float | None:
        """Recognition attempts only, on `frame`, of `faces` (track id, box; from to_encode), as
        urgent as a new face is: the worker's seconds, None when it failed."""
        return self.report(frame, self.infer(frame, ScanJob([], faces), URGENT), whole=False)

    def report(self, frame: Frame, result: InferenceResult | None, whole: bool) -> float | None:
        """Hand a scan of `frame` to the tracks and show the names it gave; its seconds, or None
        when the worker failed (the next scan is then whole)."""
        if result is None:
            self.scene.restart()
            return None
        attempts = [(item.track, item.box, item.candidates) for item in result.attempts]
        self.tracks.scanned(frame.number, result.found, attempts)
        self.metrics.work(result.seconds, result.encoded, scan=True, full_frame=whole)
        if result.attempts:  # new names show now, not at the next update
            self.show_names(frame)
        return result.seconds

    def show_names(self, scanned: Frame) -> None:
        """Show the names of a scan of `scanned` now. When the stream has moved on since (a long
        scan), its new faces are found again on the newest frame first (as the follower would,
        a few ms): they may have moved (edgeface.tracks shows no box that old)."""
        newest = self.source.latest()
        if newest is not None and newest.number > scanned.number + FRESH_FRAMES:
            seconds = self.follow(newest)
            if seconds is not None:
                shown = self.tracks.shown(newest.number)
                self.view.show(Recognition(shown, newest.number, newest.captured, seconds), update=False)
            return
        recognition = self.view.recognition
        shown = self.tracks.shown(recognition.frame_number)
        self.view.show(replace(recognition, detections=shown), update=False)


class FollowLoop(CameraLoop):
    """Every update (up to VIDEO_PROCESSING_FPS): re-detects the faces on screen around where they
    were and shows them with their voted names. When it sees a new scene first (nobody to follow
    then), it hands both halves of its first scan to the workers at once.
    A face never tried yet it tries once after the update, beside the scanner: the faces of a cut
    are named two at a time."""

    name = "follow"
    priority = FOLLOW

    def __init__(self, camera: Camera, pool: WorkerPool) -> None:
        super().__init__(camera, pool)
        self.interval = 1.0 / camera.config.video_processing_fps
        self._next_turn = 0.0  # monotonic time the next update may start
        self._seen = 0  # number of the last frame updated
        self._still = StillFaces()

    def follow(self, frame: Frame) -> float | None:
        """As CameraLoop.follow, but faces in a picture unchanged around them are kept where they
        are without a worker (edgeface.scanning.StillFaces): 0 seconds then."""
        faces = self.tracks.faces()
        if self._still.unchanged(frame.image, faces, frame.grey) and self.tracks.held(frame.number):
            return 0.0
        seconds = super().follow(frame)
        if seconds is not None:
            self._still.followed(faces)
        return seconds

    def step(self) -> None:
        now = time.monotonic()
        self.stopping.wait(max(0.0, self._next_turn - now))
        self._next_turn = max(self._next_turn + self.interval, now)
        frame = self.newer_frame(self._seen)
        if frame is None:
            return
        self._seen = frame.number
        self.scan_scene_part(frame)
        seconds = self.follow(frame)
        if seconds is not None:
            shown = self.tracks.shown(frame.number)
            self.view.show(Recognition(shown, frame.number, frame.captured, seconds))
            if first := self.tracks.to_encode(limit=1, untried=True):
                self.attempt(frame, first)


class ScanLoop(CameraLoop):
    """Looks at every frame: scans where new faces may be (edgeface.scanning) as soon as the
    picture changed there, and makes the recognition attempts the faces on screen are due
    (SCAN_ENCODINGS a scan; a face never tried goes first, on its own); while nothing changes,
    one tile every IDLE_SECONDS. It rests only when its ScanBudget says (a pan rescanned whole
    costs at most half a core), and not after a cut. When it sees a new scene first, it hands
    both halves of its first scan to the workers at once; else it waits for their faces. Where
    the picture changed but no face was found, it looks again at a finer scale when the
    configured one cannot find a 25 px face (edgeface.scanning.FineLook)."""

    name = "scan"
    interval = IDLE_SECONDS

    def __init__(self, camera: Camera, pool: WorkerPool) -> None:
        super().__init__(camera, pool)
        self.scanned = 0  # number of the last frame this loop looked at
        self.budget = ScanBudget()
        self.patrol_at = 0.0  # monotonic time the next idle tile is due
        config = camera.config
        scale = Detector(config.face_loc_model, config.face_ratio, config.face_loc_ntu).scale
        self.fine = FineLook() if 1.2 * scale < FINE_SCALE else None

    def step(self) -> None:
        frame = self.newer_frame(self.scanned)
        if frame is None:
            return
        self.scanned = frame.number
        if self.scan_scene_part(frame):
            return
        if self.scene.share.busy():  # the rest of the new scene is being scanned: its faces come next
            self.scene.share.wait(SCENE_WAIT)
            return
        if first := self.tracks.to_encode(limit=1, untried=True):
            seconds = self.attempt(frame, first)  # a new face's name before anything else
        else:
            followed = self.tracks.boxes()
            due = self.tracks.to_encode(limit=SCAN_ENCODINGS)
            patrol = time.monotonic() >= self.patrol_at
            plan = self.scene.plan(frame.image, followed, patrol, frame.grey)
            if not plan.regions and not due:
                return  # nothing changed, nobody due: the next frame is looked at
            most = frame.image.shape[0] * frame.image.shape[1] // PIECES
            scanned = self.scan(frame, pieces(plan.regions, most), due, followed, plan.whole)
            if scanned is not None and plan.idle:
                self.patrol_at = time.monotonic() + IDLE_SECONDS
            if scanned is not None and not (plan.whole or plan.idle):
                scanned = self.look_finely(frame, plan.regions, scanned)
            seconds = None if scanned is None else scanned[0]
        if seconds is None:
            return
        if self.scene.rest(self.budget.spend(seconds)):
            self.budget.forgive()

    def scan(
        self, frame: Frame, regions: list[Box], due: list[tuple[int, Box]], followed: list[Box], whole: bool
    ) -> tuple[float, list[Box]] | None:
        """Scan `regions` of `frame`, one job each, the smallest first (the attempts `due` with
        the first; the faces `followed` not encoded again), stopping when the scene cuts
        meanwhile; the workers' seconds and the faces found, None when one failed. One job at a
        time: each camera has at most one scan waiting for the workers, so that no camera's pan
        holds up the others' (edgeface.workers)."""
        ordered = sorted(regions, key=lambda box: box.width * box.height)
        jobs = [
            ScanJob([] if region is None else [region], due if not index else (), followed)
            for index, region in enumerate(ordered or [None])
        ]
        return self.run_each(frame, jobs, whole)

    def look_finely(
        self, frame: Frame, changed: list[Box], scanned: tuple[float, list[Box]]
    ) -> tuple[float, list[Box]] | None:
        """After a scan of the `changed` regions of `frame` (its seconds and the faces it found):
        those where it found no face scanned again at FINE_SCALE (FineLook says which, when the
        configured scale cannot find a 25 px face); the seconds and faces in all."""
        spent, found = scanned
        if self.fine is None:
            return scanned
        fine = self.fine.regions(changed, found, frame.image.shape[:2])
        jobs = [ScanJob([region], known=self.tracks.boxes(), scale=FINE_SCALE) for region in fine]
        again = self.run_each(frame, jobs, whole=False)
        return None if again is None else (spent + again[0], found + again[1])

    def run_each(self, frame: Frame, jobs: list[ScanJob], whole: bool) -> tuple[float, list[Box]] | None:
        """`jobs` on `frame` one after the other, stopping when the scene cuts meanwhile (the
        first counts as the whole frame's when `whole`): the workers' seconds and the faces
        found, None when one failed."""
        spent, found = 0.0, []
        for index, job in enumerate(jobs):
            if index and not self.scene.current(frame):
                break  # the rest is of a scene that is gone
            result = self.infer(frame, job)
            seconds = self.report(frame, result, whole and not index)
            if result is None or seconds is None:
                return None
            found += result.found
            spent += seconds
        return spent, found


class DisplayLoop:
    """Draws the latest faces on each new frame and encodes it once, while someone watches."""

    def __init__(self, camera: Camera) -> None:
        self.camera = camera
        self.heartbeat = camera.liveness.heartbeat(camera.loop_name("display"))

    def run(self) -> None:
        camera = self.camera
        broadcaster, source = camera.broadcaster, camera.source
        blur = camera.config.face_blur_unknown
        seen = 0
        last_no_signal = 0.0
        while not camera.stopping.is_set():
            self.heartbeat.beat(NO_SIGNAL_INTERVAL + 1.0)  # the wait, then drawing and encoding a frame
            frame = source.wait_newer(seen, timeout=NO_SIGNAL_INTERVAL)
            if frame is not None:
                seen = frame.number
                camera.scene.enter(frame)
                detections = camera.view.recognition.detections
                if broadcaster.viewers:
                    broadcaster.publish(annotate(frame.image, detections, blur), frame.captured)
                    camera.metrics.displayed_frame()
                else:  # nobody watches: no frame is drawn or encoded, none is kept stale
                    broadcaster.forget()
                if camera.on_display is not None:
                    camera.on_display(frame, detections)
                continue
            status = source.status()
            if status.state != LIVE and time.monotonic() - last_no_signal >= NO_SIGNAL_INTERVAL:
                broadcaster.publish(no_signal_frame(camera.size, status.error))
                last_no_signal = time.monotonic()


class Camera:
    """One camera of the device: `start()` its threads, `snapshot()` what it shows."""

    def __init__(
        self,
        spec: CameraSpec,
        config: AppConfig,
        families: MetricFamilies,
        *,
        liveness: Liveness,
        stopping: threading.Event,
        several: bool,
        track_ids: Iterator[int] | None = None,
    ) -> None:
        """`several`: the device has more cameras (the loops' names then carry this one's);
        `track_ids`: the device's count of face tracks (edgeface.tracks.FaceTracks)."""
        self.name, self.config = spec.name, config
        self.liveness, self.stopping = liveness, stopping
        self._several = several
        self.size = (config.frame_width, config.frame_height)
        self.metrics = CameraMetrics(families, spec.name)
        self.view = View(self.metrics)
        tolerance = choose_tolerance(config.face_tolerance, None)[0]  # the model's, once loaded
        self.tracks = FaceTracks(
            tolerance,
            config.face_unknown_distance,
            config.face_min_size,
            recheck=config.face_track_seconds,
            ids=track_ids,
        )
        self.scene = Scene(self.tracks, self.view.clear, split=config.inference_workers > 1)
        self.source = VideoSource(
            spec.url,
            device=spec.device,
            size=self.size,
            stall_seconds=config.stall_seconds,
            heartbeat=liveness.heartbeat(self.loop_name("capture")),
            cuts=self.scene.watch,
        )
        self.broadcaster = Broadcaster(heartbeat=liveness.heartbeat(self.loop_name("mjpeg-writer")))
        self._threads: list[threading.Thread] = []

    on_display: Callable[[Frame, list[Detection]], None] | None = None
    """Called with each displayed frame and the faces drawn on it (for measurements)."""

    def loop_name(self, loop: str) -> str:
        return f"{loop} {self.name}" if self._several else loop

    def start(self, pool: WorkerPool) -> None:
        self.source.start()
        for loop in (FollowLoop(self, pool), ScanLoop(self, pool), DisplayLoop(self)):
            thread = threading.Thread(target=loop.run, name=loop.heartbeat.name, daemon=True)
            loop.heartbeat.attach(thread, JOB_SECONDS)
            thread.start()
            self._threads.append(thread)

    def join(self, timeout: Callable[[], float]) -> None:
        for thread in self._threads:
            thread.join(timeout())

    def snapshot(self) -> CameraSnapshot:
        metrics = self.metrics
        return CameraSnapshot(
            name=self.name,
            source=self.source.status(),
            recognition=self.view.recognition,
            display_rate=metrics.display_rate(),
            update_rate=metrics.update_rate(),
            updates=metrics.updates,
            scans=metrics.scans,
            full_frames=metrics.full_frames,
            encoded=metrics.encoded,
            viewers=self.broadcaster.viewers,
        )
