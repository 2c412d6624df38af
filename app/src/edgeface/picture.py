"""Recognising one uploaded picture (POST /api/recognize), with the device's own workers.

The picture is decoded here (JPEG, PNG, BMP, WebP: what OpenCV reads) and scaled down to at most
MAX_SIDE px on its longer side, a 720p frame's (a phone's 12 MP photo scanned whole at the video's
scale would take seconds; faces under ~40 px of the scaled copy are not found). A worker scans it
whole at the scanner's priority (the live video's following goes first), and every face is named
as a tracked face is named from its attempts (edgeface.naming): an attempt in the ambiguous band
has its second opinion in the same job.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import cv2
import numpy as np

from edgeface.inference import ScanJob
from edgeface.naming import NameVote
from edgeface.values import Box, Detection
from edgeface.workers import SCAN, WorkerPool

MAX_BYTES = 8 * 1024 * 1024
MAX_SIDE = 1280


class PictureError(ValueError):
    """The upload cannot be recognised; `status` is the HTTP answer (400 or 413)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Recognised:
    faces: list[Detection]  # boxes in the uploaded picture's pixels
    seconds: float  # the worker's time
    size: tuple[int, int]  # the picture's (width, height)


def decode_picture(body: bytes) -> np.ndarray:
    """The uploaded bytes as a BGR image; PictureError naming what is wrong."""
    if not body:
        raise PictureError(400, "the body is empty: send the picture's bytes (JPEG, PNG, BMP or WebP)")
    if len(body) > MAX_BYTES:
        raise PictureError(413, f"the picture is {len(body)} bytes: at most {MAX_BYTES} are accepted")
    image = cv2.imdecode(np.frombuffer(body, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise PictureError(400, "the body is not a picture OpenCV can read (JPEG, PNG, BMP or WebP)")
    return image


def scale_of(image: np.ndarray) -> float:
    """The factor that brings `image`'s longer side to at most MAX_SIDE px (1.0: it is that small)."""
    height, width = image.shape[:2]
    return min(1.0, MAX_SIDE / float(max(height, width)))


def scaled_down(image: np.ndarray) -> np.ndarray:
    """`image` with its longer side at most MAX_SIDE px (what recognition looks at)."""
    scale = scale_of(image)
    if scale == 1.0:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def recognise_picture(
    pool: WorkerPool, image: np.ndarray, named: float, unknown: float | None
) -> Recognised | None:
    """Every face of `image` (BGR) and who it is, named with the tolerance `named` (a face
    stays Unknown from `unknown`); None when no worker answered."""
    height, width = image.shape[:2]
    scale, scanned = scale_of(image), scaled_down(image)
    rows, columns = scanned.shape[:2]
    result = pool.infer(scanned, ScanJob([Box(0, columns, rows, 0)]), SCAN)
    if result is None:
        return None
    votes: dict[Box, NameVote] = collections.defaultdict(lambda: NameVote(named, unknown))
    for attempt in result.attempts:
        votes[attempt.box].add(attempt.candidates, attempt.box.height)
    faces = [Detection(_scaled(box, 1.0 / scale), vote.match()) for box, vote in votes.items()]
    faces.sort(key=lambda face: (face.box.left, face.box.top))
    return Recognised(faces, result.seconds, (width, height))


def _scaled(box: Box, factor: float) -> Box:
    return Box(*(round(value * factor) for value in box.as_css()))
