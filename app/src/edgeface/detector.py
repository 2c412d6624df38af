"""Detection stage: where the faces are in an RGB frame (dlib HOG or CNN via face_recognition).

The frame is scaled by `ratio` before detection (cheaper), then dlib upsamples it `upsample`
times (finds smaller faces); boxes come back in pixels of the full-size frame. dlib's smallest
HOG face is ~80 px at the scale it scans, so ratio x 2**upsample must be about 1 for faces of
60-90 px: the default (0.5, 1) finds them; the seed's (0.25, 1) does not (see edgeface.config).
"""

from __future__ import annotations

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
