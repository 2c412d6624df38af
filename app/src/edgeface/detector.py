"""Detection stage: where the faces are in an RGB frame (dlib HOG or CNN via face_recognition).

The frame is scaled by `ratio` before detection (cheaper), then dlib upsamples it `upsample`
times (finds smaller faces); boxes come back in pixels of the full-size frame. HOG looks at a grey
copy: on colour dlib computes the gradients of each channel to keep the strongest, which costs
~30% more time for the same faces (measured on a 768x720 crop at 2x: 0.175 s vs 0.122 s). dlib's smallest
HOG face is ~80 px at the scale it scans, so ratio x 2**upsample = 2 finds faces from 40 px: the
default (1, 1) does, the seed's (0.25, 1) finds none under ~160 px (see edgeface.config).
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

        small = self._looked_at(rgb)
        if self.ratio != 1.0:
            small = cv2.resize(small, (0, 0), fx=self.ratio, fy=self.ratio, interpolation=cv2.INTER_AREA)
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

    def _looked_at(self, rgb: np.ndarray) -> np.ndarray:
        """What the detector scans of `rgb`: a grey copy for HOG, the colours for the CNN."""
        if self.model != "hog":
            return rgb
        import cv2  # noqa: PLC0415

        return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))

    @property
    def scale(self) -> float:
        """How much larger than in the frame faces are where HOG looks: ratio x 2**upsample."""
        return float(self.ratio * 2**self.upsample)

    def detect_in(self, rgb: np.ndarray, regions: Sequence[Box]) -> list[Box]:
        """Faces found in the `regions` of `rgb` (full-frame boxes) at this detector's scale:
        a region costs its share of a whole-frame scan. Overlapping finds are merged."""
        found: list[Box] = []
        for region in regions:
            crop = rgb[region.top : region.bottom, region.left : region.right]
            if crop.shape[0] < 16 or crop.shape[1] < 16:
                continue
            _merge(found, [_moved(hit, region) for hit in self.detect(crop)])
        return sorted(found, key=lambda box: (box.top, box.left))

    def detect_at(self, rgb: np.ndarray, region: Box, scale: float) -> list[Box]:
        """Faces in `region` of `rgb`, the crop resized by `scale` and scanned without upsampling:
        following a face of h px, scale ~ 90/h makes it the size HOG finds best, whatever its
        size in the frame (a 45 px face is scanned at 2x, a 200 px one at 0.45x)."""
        import cv2  # noqa: PLC0415
        import face_recognition  # noqa: PLC0415

        crop = rgb[region.top : region.bottom, region.left : region.right]
        if crop.shape[0] < 16 or crop.shape[1] < 16:
            return []
        crop = self._looked_at(crop)
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        resized = cv2.resize(crop, (0, 0), fx=scale, fy=scale, interpolation=interpolation)
        hits = [
            Box(round(top / scale), round(right / scale), round(bottom / scale), round(left / scale))
            for top, right, bottom, left in face_recognition.face_locations(
                np.ascontiguousarray(resized), number_of_times_to_upsample=0, model=self.model
            )
        ]
        return [_moved(hit, region) for hit in hits]

    def detect_near(self, rgb: np.ndarray, around: Sequence[Box], margin: float = 0.6) -> list[Box]:
        """Faces found only in the regions around `around` (boxes from an earlier frame).

        Each region is the box grown by `margin` x its size on every side (room for the face to
        move and for HOG's context), clipped to the frame. Scanning two 150 px regions costs a few
        ms where the whole 1280x720 frame costs ~90: the cheap step between full detections.
        Returns full-frame boxes, one per face (overlapping finds of one face are merged).
        """
        size = (rgb.shape[0], rgb.shape[1])
        return self.detect_in(rgb, [grown(box, margin, size) for box in around])


def grown(box: Box, margin: float, size: tuple[int, int]) -> Box:
    """`box` grown by `margin` x its size on every side, clipped to a (height, width) frame."""
    grow_y, grow_x = round(box.height * margin), round(box.width * margin)
    height, width = size
    return Box(
        max(0, box.top - grow_y),
        min(width, box.right + grow_x),
        min(height, box.bottom + grow_y),
        max(0, box.left - grow_x),
    )


def _moved(hit: Box, region: Box) -> Box:
    """A box found in a crop of `region`, in full-frame pixels."""
    return Box(hit.top + region.top, hit.right + region.left, hit.bottom + region.top, hit.left + region.left)


def _merge(found: list[Box], hits: Sequence[Box]) -> None:
    """Add the `hits` that are not the same face as one already `found` (IoU >= 0.5)."""
    for hit in hits:
        if all(overlap(hit, other) < 0.5 for other in found):
            found.append(hit)


def overlap(first: Box, second: Box) -> float:
    """Intersection over union of two boxes, 0..1."""
    height = min(first.bottom, second.bottom) - max(first.top, second.top)
    width = min(first.right, second.right) - max(first.left, second.left)
    if height <= 0 or width <= 0:
        return 0.0
    shared = height * width
    return shared / (first.height * first.width + second.height * second.width - shared)
