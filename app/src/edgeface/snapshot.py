"""What a camera and the device show at one moment: the values /api/status, the page and /metrics
read, so that neither reaches into the pipeline's loops (edgeface.status, edgeface.metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeface.config import AppConfig
from edgeface.detector import DetectorBackend
from edgeface.inference import ModelInfo
from edgeface.source import SourceStatus
from edgeface.values import Detection


@dataclass(frozen=True)
class Recognition:
    """The faces to draw and when they were last updated."""

    detections: list[Detection] = field(default_factory=list)
    frame_number: int = 0
    at: float = 0.0  # epoch seconds the analysed frame was captured
    seconds: float = 0.0  # time the worker took


@dataclass(frozen=True)
class CameraSnapshot:
    name: str
    source: SourceStatus
    recognition: Recognition
    display_rate: float  # frames/s encoded for viewers over the last seconds (0: nobody watches)
    update_rate: float  # recognition updates/s
    updates: int
    scans: int
    full_frames: int
    encoded: int
    viewers: int


@dataclass(frozen=True)
class DeviceSnapshot:
    config: AppConfig
    model: ModelInfo
    backend: DetectorBackend | None
    worker_restarts: int
    cameras: list[CameraSnapshot]
