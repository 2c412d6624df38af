"""What each camera counts: updates, scans, encodings, displayed frames, and their Prometheus form
(every series labelled `camera`)."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edgeface.snapshot import DeviceSnapshot
from edgeface.source import LIVE
from edgeface.values import Detection

RATE_WINDOW = 10.0  # seconds over which rates are averaged
KNOWN = "known"  # the label of every named face unless METRICS_PER_PERSON is on


class MetricFamilies:
    """The Prometheus series every camera counts into, labelled by camera (one registry)."""

    def __init__(self, registry: CollectorRegistry, per_person: bool = False) -> None:
        self.registry = registry
        # Who was seen is biometric data: by name only when the operator asks (METRICS_PER_PERSON).
        self.per_person = per_person
        self.inference_seconds = Histogram(
            "edgeface_inference_seconds",
            "Time a worker took over one request (following faces, or scanning and encoding)",
            ["camera"],
            buckets=(0.0125, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2),
            registry=registry,
        )
        self.faces = Counter(
            "edgeface_faces",
            "Faces shown per update, by name with METRICS_PER_PERSON=on, else known or Unknown",
            ["camera", "name"],
            registry=registry,
        )
        self.faces_encoded = Counter(
            "edgeface_faces_encoded", "Faces encoded (recognition attempts)", ["camera"], registry=registry
        )


class EventMetrics:
    """What the events count (edgeface.events): events by camera and type; per sink, events
    dropped (its outbox full), failed deliveries or connections, and whether it is connected."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "edgeface_events", "Events sent to the sinks", ["camera", "type"], registry=registry
        )
        self.dropped = Counter(
            "edgeface_events_dropped",
            "Events a sink dropped (it could not send them in time)",
            ["sink"],
            registry=registry,
        )
        self.failures = Counter(
            "edgeface_event_failures",
            "Failed deliveries or connections of a sink",
            ["sink"],
            registry=registry,
        )
        self.up = Gauge(
            "edgeface_event_sink_up", "1 while a sink is connected to its broker", ["sink"], registry=registry
        )

    def counted(self, camera: str, kind: str) -> None:
        self.events.labels(camera, kind).inc()


class CameraMetrics:
    """One camera's counts, kept for /api/status and /metrics; every method may be called from any
    thread."""

    def __init__(self, families: MetricFamilies, camera: str) -> None:
        self.camera = camera
        self.per_person = families.per_person
        self._inference_seconds = families.inference_seconds.labels(camera)
        self._faces = families.faces
        self._faces_encoded = families.faces_encoded.labels(camera)
        self._lock = threading.Lock()
        self.updates = 0
        self.scans = 0
        self.full_frames = 0
        self.encoded = 0
        self.displayed = 0
        self._shown: collections.Counter[str] = collections.Counter()  # faces shown, by label
        self._updated_at: collections.deque[float] = collections.deque(maxlen=600)
        self._displayed_at: collections.deque[float] = collections.deque(maxlen=600)

    def work(self, seconds: float, encoded: int = 0, scan: bool = False, full_frame: bool = False) -> None:
        """A worker's request done: its time, the faces it encoded, whether it scanned (the whole frame)."""
        with self._lock:
            self.encoded += encoded
            self.scans += scan
            self.full_frames += full_frame
        self._inference_seconds.observe(seconds)
        self._faces_encoded.inc(encoded)

    def update(self, detections: Sequence[Detection]) -> None:
        """A recognition update: the faces shown from now on."""
        with self._lock:
            self.updates += 1
            self._updated_at.append(time.monotonic())
        for detection in detections:
            label = self.label(detection)
            self._faces.labels(self.camera, label).inc()
            with self._lock:
                self._shown[label] += 1

    def label(self, detection: Detection) -> str:
        """The `name` label a face is counted under: its name, or only whether it is known."""
        if self.per_person or not detection.match.known:
            return detection.match.name
        return KNOWN

    def face_count(self, label: str) -> float:
        """Faces shown so far under `label` (a name, KNOWN or Unknown), summed over updates."""
        with self._lock:
            return float(self._shown[label])

    def displayed_frame(self) -> None:
        with self._lock:
            self.displayed += 1
            self._displayed_at.append(time.monotonic())

    def update_rate(self) -> float:
        return _rate(self._updated_at)

    def display_rate(self) -> float:
        return _rate(self._displayed_at)


def _rate(stamps: collections.deque[float]) -> float:
    """Events per second over the last RATE_WINDOW seconds (0 when fewer than two)."""
    now = time.monotonic()
    recent = [stamp for stamp in list(stamps) if now - stamp <= RATE_WINDOW]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


class PipelineCollector(Collector):
    """What the cameras already count, read at scrape time from the device's snapshot."""

    def __init__(self, snapshot: Callable[[], DeviceSnapshot]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Any:
        device = self.snapshot()
        label = ["camera"]
        frames_in = CounterMetricFamily("edgeface_frames_in", "Frames read from the camera", labels=label)
        recognised = CounterMetricFamily(
            "edgeface_frames_recognised",
            "Recognition updates (frames whose faces were followed or detected and named)",
            labels=label,
        )
        reconnects = CounterMetricFamily(
            "edgeface_reconnects", "Times the video stream was lost and reopened", labels=label
        )
        viewers = GaugeMetricFamily("edgeface_viewers", "MJPEG viewers connected", labels=label)
        signal = GaugeMetricFamily("edgeface_signal", "1 when frames arrive, 0 on no signal", labels=label)
        for camera in device.cameras:
            name = [camera.name]
            frames_in.add_metric(name, camera.source.frames)
            recognised.add_metric(name, camera.updates)
            reconnects.add_metric(name, camera.source.reconnects)
            viewers.add_metric(name, camera.viewers)
            signal.add_metric(name, int(camera.source.state == LIVE))
        yield from (frames_in, recognised, reconnects, viewers, signal)
        yield GaugeMetricFamily(
            "edgeface_model_loaded", "1 when the model file loaded", value=int(device.model.loaded)
        )
        yield CounterMetricFamily(
            "edgeface_worker_restarts", "Inference worker processes restarted", value=device.worker_restarts
        )
