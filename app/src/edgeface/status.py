"""The public JSON of /api/status and the page: its own format, apart from the workers' wire format
(edgeface.inference), so that either can change without the other."""

from __future__ import annotations

from typing import Any

from edgeface import __version__
from edgeface.config import AppConfig
from edgeface.detector import DetectorBackend
from edgeface.snapshot import CameraSnapshot, DeviceSnapshot
from edgeface.values import Detection

NOT_PROBED = "inference worker not started: where the detector runs is not known yet"


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def detection_status(detection: Detection) -> dict[str, Any]:
    """One face: its name, whether known, the (vote-weighted) distance, the score (1 - distance),
    the attempts the name rests on, its box in frame pixels and its track id (what
    POST /api/tracks/<track>/enroll names; null for an uploaded picture's face)."""
    match = detection.match
    return {
        "name": match.name,
        "known": match.known,
        "distance": _rounded(match.distance),
        "score": _rounded(match.score, 3),
        "attempts": match.attempts,
        "box": dict(zip(("top", "right", "bottom", "left"), detection.box.as_css(), strict=True)),
        "track": detection.track,
    }


def detector_status(
    backend: DetectorBackend | None, config: AppConfig, unknown: str = NOT_PROBED
) -> dict[str, Any]:
    """Where the face detector runs, for /api/status, /readyz and `edgeface doctor`: the model
    (hog | cnn), whether it runs on CUDA, the CUDA devices dlib sees, whether FACE_REQUIRE_CUDA
    asks for CUDA, and what is wrong (None: nothing). `backend` None: not probed yet (`unknown`
    says why); the model is then the configured one."""
    required = config.face_require_cuda
    if backend is None:
        return {
            "model": config.face_loc_model,
            "cuda": False,
            "devices": 0,
            "required": required,
            "problem": unknown,
        }
    return {
        "model": backend.model,
        "cuda": backend.cuda,
        "devices": backend.devices,
        "required": required,
        "problem": backend.problem(required),
    }


def camera_status(camera: CameraSnapshot, config: AppConfig, worker_restarts: int) -> dict[str, Any]:
    """One camera's part of /api/status: its name, source, display rate, recognition and faces."""
    source, recognition = camera.source, camera.recognition
    return {
        "name": camera.name,
        "source": {
            "state": source.state,
            "input_fps": round(source.fps, 2),
            "frames": source.frames,
            "reconnects": source.reconnects,
            "late_frames": source.late_frames,
            "stall_limit": round(source.stall_limit, 3),
            "frame_age": _rounded(source.frame_age, 3),
            "error": source.error,
        },
        "display_fps": round(camera.display_rate, 2),
        "recognition": {
            "rate": round(camera.update_rate, 2),
            "target_fps": config.video_processing_fps,
            "frames": camera.updates,
            "scans": camera.scans,
            "full_frame_detections": camera.full_frames,
            "faces_encoded": camera.encoded,
            "last_seconds": round(recognition.seconds, 4),
            "worker_restarts": worker_restarts,
        },
        "viewers": camera.viewers,
        "detections": [detection_status(item) for item in recognition.detections],
        "detections_at": recognition.at or None,
        "names": sorted({item.match.name for item in recognition.detections}),
    }


def pipeline_status(device: DeviceSnapshot) -> dict[str, Any]:
    """JSON-ready /api/status of the device: the model, the tolerance, the detector, `cameras`
    (one object per camera), and at the top level the first camera's fields, as with one camera."""
    model = device.model
    cameras = [camera_status(camera, device.config, device.worker_restarts) for camera in device.cameras]
    first = {key: value for key, value in cameras[0].items() if key != "name"}
    return {
        "version": __version__,
        "model": {
            "version": model.version,
            "people": list(model.people),
            "file": model.path,
            "error": model.error,
        },
        "tolerance": {"value": model.tolerance, "source": model.tolerance_source},
        "detector": detector_status(device.backend, device.config),
        **first,
        "cameras": cameras,
    }
