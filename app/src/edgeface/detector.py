"""Detection stage: where the faces are in an RGB frame (dlib HOG or CNN via face_recognition).

The frame is scaled by `ratio` before detection (cheaper), then dlib upsamples it `upsample`
times (finds smaller faces); boxes come back in pixels of the full-size frame. dlib's smallest
HOG face is ~80 px at the scale it scans, so ratio x 2**upsample must be about 1 for faces of
60-90 px: the default (0.5, 1) finds them; the seed's (0.25, 1) does not (see edgeface.config).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeface.values import Box

MODELS = ("hog", "cnn")


class Detector:
    """Finds faces; `detect(rgb)` returns their boxes in full-frame pixels."""

    def __init__(self, model: str = "hog", ratio: float = 0.5, upsample: int = 1) -> None:
        if model not in MODELS:
            raise ValueError(f"detection model must be one of {', '.join(MODELS)}, got {model!r}")
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        if not 0 <= upsample <= 3:
            raise ValueError(f"upsample must be 0..3, got {upsample}")
        self.model = model
        self.ratio = ratio
        self.upsample = upsample

    def detect(self, rgb: np.ndarray) -> list[Box]:
        """Boxes of the faces in `rgb` (HxWx3 uint8, RGB order), top-to-bottom, left-to-right."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        import cv2  # noqa: PLC0415 (heavy imports stay out of module import)
        import face_recognition  # noqa: PLC0415

        small = rgb
        if self.ratio != 1.0:
            small = cv2.resize(rgb, (0, 0), fx=self.ratio, fy=self.ratio, interpolation=cv2.INTER_AREA)
        locations = face_recognition.face_locations(
            np.ascontiguousarray(small), number_of_times_to_upsample=self.upsample, model=self.model
        )
        height, width = rgb.shape[:2]
        boxes = [
            Box(
                top=max(0, round(top / self.ratio)),
                right=min(width, round(right / self.ratio)),
                bottom=min(height, round(bottom / self.ratio)),
                left=max(0, round(left / self.ratio)),
            )
            for top, right, bottom, left in locations
        ]
        return sorted(boxes, key=lambda box: (box.top, box.left))

    def detect_near(self, rgb: np.ndarray, around: Sequence[Box], margin: float = 0.6) -> list[Box]:
        """Faces found only in the regions around `around` (boxes from an earlier frame).

        Each region is the box grown by `margin` x its size on every side (room for the face to
        move and for HOG's context), clipped to the frame. Scanning two 150 px regions costs a few
        ms where the whole 1280x720 frame costs ~90: the cheap step between full detections.
        Returns full-frame boxes, one per face (overlapping finds of one face are merged).
        """
        height, width = rgb.shape[:2]
        found: list[Box] = []
        for box in around:
            grow_y, grow_x = round(box.height * margin), round(box.width * margin)
            top, left = max(0, box.top - grow_y), max(0, box.left - grow_x)
            bottom, right = min(height, box.bottom + grow_y), min(width, box.right + grow_x)
            if bottom - top < 16 or right - left < 16:
                continue
            for hit in self.detect(rgb[top:bottom, left:right]):
                moved = Box(hit.top + top, hit.right + left, hit.bottom + top, hit.left + left)
                if all(overlap(moved, other) < 0.5 for other in found):
                    found.append(moved)
        return sorted(found, key=lambda box: (box.top, box.left))


def overlap(first: Box, second: Box) -> float:
    """Intersection over union of two boxes, 0..1."""
    height = min(first.bottom, second.bottom) - max(first.top, second.top)
    width = min(first.right, second.right) - max(first.left, second.left)
    if height <= 0 or width <= 0:
        return 0.0
    shared = height * width
    return shared / (first.height * first.width + second.height * second.width - shared)
