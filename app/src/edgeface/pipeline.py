"""The device's pipeline: every camera (edgeface.camera) and the inference workers they share
(edgeface.workers); the composition root the web app and the CLI hold.

Per camera: source → scene watch → follow and scan loops (their jobs go to the shared workers,
the most urgent first) → view → display → broadcaster. The device's loops record their progress
(edgeface.liveness); `health()` names a loop that is stuck or dead, and a worker process that
died (it is restarted, and healthy again once it has said hello). `stop()` ends everything within
one deadline: the workers are asked to exit together. Status and metrics read `snapshot()`.

With one camera, `source`, `broadcaster`, `metrics`, `view`, `tracks` and `scene` are that
camera's (what single-camera callers and tests use).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from edgeface.broadcaster import Broadcaster
from edgeface.camera import Camera, View
from edgeface.config import AppConfig
from edgeface.detector import DetectorBackend
from edgeface.events import EventSink, EventSinks, EventWatch
from edgeface.events_mqtt import MqttSink
from edgeface.events_webhook import WebhookSink
from edgeface.inference import InferenceWorker, ModelInfo
from edgeface.liveness import Liveness
from edgeface.metrics import CameraMetrics, EventMetrics, MetricFamilies, PipelineCollector
from edgeface.picture import Recognised, recognise_picture
from edgeface.recogniser import choose_tolerance
from edgeface.scene import Scene
from edgeface.snapshot import DeviceSnapshot
from edgeface.source import VideoSource
from edgeface.status import pipeline_status
from edgeface.tracks import FaceTracks, TrackedFace
from edgeface.workers import WorkerPool

log = logging.getLogger(__name__)

STOP_SECONDS = 1.2  # the whole pipeline's shutdown deadline: `edgeface serve` ends within 2 s of SIGTERM
SINK_STOP_SECONDS = 0.3  # then the sinks say goodbye (the last `left`s, MQTT's `offline`)


def event_sinks(config: AppConfig, cameras: Sequence[str], metrics: EventMetrics) -> EventSinks:
    """The sinks the configuration asks for (none by default); ConfigError naming the variable
    when a credential or CA file is unusable."""
    sinks: list[EventSink] = []
    if config.events_mqtt_url is not None:
        sinks.append(
            MqttSink(
                config,
                cameras,
                dropped=metrics.dropped.labels("mqtt").inc,
                failed=metrics.failures.labels("mqtt").inc,
                up=lambda connected: metrics.up.labels("mqtt").set(int(connected)),
            )
        )
    if config.events_webhook_url is not None:
        sinks.append(
            WebhookSink(
                config,
                dropped=metrics.dropped.labels("webhook").inc,
                failed=metrics.failures.labels("webhook").inc,
            )
        )
    return EventSinks(sinks, counted=lambda event: metrics.counted(event.camera, event.type))


@dataclass(frozen=True)
class TrackedPicture:
    """A tracked face and the frame it is on."""

    camera: str
    face: TrackedFace
    image: Any  # BGR


class Pipeline:
    def __init__(self, config: AppConfig, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.liveness = Liveness()
        self.stopping = threading.Event()
        self.pool = WorkerPool(config, self.liveness, self.stopping)
        self.registry = registry or CollectorRegistry()
        families = MetricFamilies(self.registry, per_person=config.metrics_per_person)
        several = len(config.cameras) > 1
        track_ids = itertools.count(1)  # a track id names one face on the device, whichever camera
        self.cameras = [
            Camera(
                spec,
                config,
                families,
                liveness=self.liveness,
                stopping=self.stopping,
                several=several,
                track_ids=track_ids,
            )
            for spec in config.cameras
        ]
        self.events = event_sinks(
            config, [camera.name for camera in self.cameras], EventMetrics(self.registry)
        )
        self._event_threads: list[threading.Thread] = []
        self.registry.register(PipelineCollector(self.snapshot))
        self._started = False

    def camera(self, name: str | None = None) -> Camera | None:
        """The camera named `name` (None: the first), or None when there is none of that name."""
        if name is None:
            return self.cameras[0]
        return next((camera for camera in self.cameras if camera.name == name), None)

    def broadcaster_of(self, name: str | None) -> Broadcaster | None:
        """The broadcaster of camera `name` (None: the first), None for no such camera."""
        camera = self.camera(name)
        return None if camera is None else camera.broadcaster

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Pipeline:
        if self._started:
            return self
        self._started = True
        self.pool.start()
        for camera in self.cameras:
            camera.start(self.pool)
            log.info("camera %s started on %s", camera.name, camera.source.description)
        if self.events:
            self.events.start()
            for camera in self.cameras:
                self._watch_events(camera)
        return self

    def _watch_events(self, camera: Camera) -> None:
        def newest_picture() -> Any:
            frame = camera.source.latest()
            return None if frame is None else frame.image

        watch = EventWatch(
            camera.name,
            camera.tracks,
            self.events,
            model=lambda: self.pool.model.version,
            frame=newest_picture if self.config.events_snapshots else None,
            heartbeat=self.liveness.heartbeat(camera.loop_name("events")),
            stopping=self.stopping,
        )
        thread = threading.Thread(target=watch.run, name=watch.heartbeat.name, daemon=True)
        watch.heartbeat.attach(thread, 5.0)
        thread.start()
        self._event_threads.append(thread)

    def stop(self, timeout: float = STOP_SECONDS) -> bool:
        """Stop every thread and worker process within `timeout` seconds in all; True when each
        worker exited by itself (False: one had to be killed at the deadline). A capture stuck in
        OpenCV's open() or read() is left to its daemon thread: it holds no child process."""
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        self.stopping.set()
        for camera in self.cameras:
            camera.scene.cut_event.set()
        self.liveness.end()
        self.pool.close_input()
        for camera in self.cameras:
            camera.broadcaster.close(remaining())
            camera.source.stop(timeout=0.0)
        for camera in self.cameras:
            camera.join(remaining)
        self.pool.join(remaining())
        for thread in self._event_threads:
            thread.join(remaining())
        # The last `left`s and `offline` get their own time, beyond the deadline (serve's 2 s hold).
        self.events.stop(SINK_STOP_SECONDS)
        exited = self.pool.stop(remaining)
        for camera in self.cameras:
            camera.source.stop(remaining())
        return exited

    # -- read-outs --------------------------------------------------------------------------------
    @property
    def workers(self) -> list[InferenceWorker]:
        return self.pool.workers

    @property
    def model(self) -> ModelInfo:
        return self.pool.model

    @property
    def backend(self) -> DetectorBackend | None:
        """What the detector runs on, as the first worker probed it; None until its hello."""
        return self.pool.backend

    @property
    def first(self) -> Camera:
        return self.cameras[0]

    @property
    def source(self) -> VideoSource:
        return self.first.source

    @property
    def broadcaster(self) -> Broadcaster:
        return self.first.broadcaster

    @property
    def metrics(self) -> CameraMetrics:
        return self.first.metrics

    @property
    def view(self) -> View:
        return self.first.view

    @property
    def tracks(self) -> FaceTracks:
        return self.first.tracks

    @property
    def scene(self) -> Scene:
        return self.first.scene

    @property
    def recognised(self) -> int:
        """Recognition updates of every camera."""
        return sum(camera.metrics.updates for camera in self.cameras)

    def health(self) -> list[str]:
        """Why the app is not alive, one line per loop naming it: a loop stuck or dead, a worker
        process that died (until its replacement is up); empty when all is well. A missing
        stream is no reason: the capture loop is then busy reconnecting."""
        problems = self.liveness.problems()
        if self.stopping.is_set():
            return problems
        return problems + self.pool.problems()

    def readiness(self) -> list[str]:
        """Why the app is not ready to serve recognitions; empty when it is.

        A missing stream is not among the reasons: the app then serves its "no signal" page,
        which must stay reachable through the Service, and a rollout must not wait for a
        camera. The stream's state is in status() instead. A detector on the CPU is one only
        with FACE_REQUIRE_CUDA=on: a rollout to a device whose pod got no GPU then fails.
        """
        if not self.pool.ready:
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

    def recognise(self, image: Any) -> Recognised | None:
        """Every face of an uploaded picture (BGR) and who it is, with the tolerance the cameras
        name faces with; None when no worker answered (edgeface.picture)."""
        named = self.model.tolerance
        if named is None:  # no model loaded yet: as a camera starts
            named = choose_tolerance(self.config.face_tolerance, None)[0]
        return recognise_picture(self.pool, image, named, self.config.face_unknown_distance)

    def tracked_face(self, track: int) -> TrackedPicture | None:
        """The face of track `track` on any camera, with the newest frame of that camera (what an
        operator sees when naming it); None when no camera holds that face now."""
        for camera in self.cameras:
            face = next((face for face in camera.tracks.on_screen() if face.id == track), None)
            if face is not None:
                frame = camera.source.latest()
                return None if frame is None else TrackedPicture(camera.name, face, frame.image)
        return None

    def snapshot(self) -> DeviceSnapshot:
        return DeviceSnapshot(
            config=self.config,
            model=self.model,
            backend=self.backend,
            worker_restarts=self.pool.restarts,
            cameras=[camera.snapshot() for camera in self.cameras],
        )

    def status(self) -> dict[str, Any]:
        """JSON-ready snapshot for /api/status and the page (edgeface.status)."""
        return pipeline_status(self.snapshot())
