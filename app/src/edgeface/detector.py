"""Detection stage: where the faces are in an RGB frame (dlib HOG or CNN via face_recognition).

The frame is scaled by `ratio` before detection (cheaper), then dlib upsamples it `upsample`
times (finds smaller faces); boxes come back in pixels of the full-size frame. HOG looks at a grey
copy: on colour dlib computes the gradients of each channel to keep the strongest, which costs
~30% more time for the same faces (measured on a 768x720 crop at 2x: 0.175 s vs 0.122 s). dlib's smallest
HOG face is ~80 px at the scale it scans, so ratio x 2**upsample = 2 finds faces from 40 px: the
default (1, 1) does, the seed's (0.25, 1) finds none under ~160 px (see edgeface.config).

What the detector runs on is `probe_backend`'s answer (a `DetectorBackend`): dlib runs its CNN on
CUDA when it was built with CUDA and sees a device, on the CPU when built without CUDA, and not
at all when built with CUDA but without a device (HOG then stands in); HOG always on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from edgeface.values import Box

MODELS = ("hog", "cnn")


@dataclass(frozen=True)
class DetectorBackend:
    """What the face detector runs on, as probed in the process that runs it."""

    model: str  # the model that detects: hog | cnn
    cuda: bool  # it runs on CUDA: cnn, dlib built with CUDA and at least one device
    devices: int  # CUDA devices dlib sees (0 when dlib has no CUDA)
    dlib_cuda: bool = False  # dlib was built with CUDA (DLIB_USE_CUDA)
    cuda_error: str | None = None  # why dlib could not count its devices (no driver, no GPU mounted)
    instead_of: str | None = None  # "cnn" when hog detects in its place (see `runnable`)

    def describe(self) -> str:
        """In words: "cnn on CUDA (1 device)", "cnn on the CPU (dlib built without CUDA)", "hog on
        the CPU"."""
        if self.cuda:
            return f"{self.model} on CUDA ({self.devices} device{'s' if self.devices != 1 else ''})"
        if self.instead_of:
            return f"hog on the CPU, in place of {self.instead_of} ({self._no_cuda()})"
        if self.model == "hog":
            return "hog on the CPU"
        return f"cnn on the CPU ({self._no_cuda()})"

    def problem(self, required: bool) -> str | None:
        """What is wrong with this backend when CUDA is `required` (FACE_REQUIRE_CUDA) or not;
        None when nothing is. HOG on the CPU is fine unless CUDA is required."""
        if self.cuda:
            return None
        configured = self.instead_of or self.model
        if required:
            why = "dlib's HOG is CPU-only" if configured == "hog" else self._no_cuda()
            stand_in = "; hog detects in its place" if self.instead_of else ""
            return (
                "FACE_REQUIRE_CUDA=on but the detector runs on the CPU:"
                f" FACE_LOC_MODEL={configured}, {why}{stand_in}"
            )
        if self.instead_of:
            return (
                f"FACE_LOC_MODEL={self.instead_of} cannot run here ({self._no_cuda()}):"
                " hog detects in its place, on the CPU"
            )
        # Served anyway; measured on a 1280x720 frame at (1, 1): 19-23 s against hog's 0.25.
        if self.model == "cnn":
            return (
                f"FACE_LOC_MODEL=cnn runs on the CPU ({self._no_cuda()}): ~80 times slower than hog,"
                " seconds to tens of seconds a frame, too slow for live video; use FACE_LOC_MODEL=hog"
                " or a CUDA device"
            )
        return None

    def _no_cuda(self) -> str:
        """Why a CNN does not run on CUDA here."""
        if not self.dlib_cuda:
            return "dlib built without CUDA"
        return "dlib built with CUDA but sees no device" + (f": {self.cuda_error}" if self.cuda_error else "")


def runnable(backend: DetectorBackend) -> DetectorBackend:
    """`backend`, or hog in its place where its CNN cannot run at all: a CUDA build of dlib runs
    its CNN only on CUDA, so without a device (a Jetson's pod without its GPU) every detection
    would fail and the worker with it; hog on the CPU serves instead, and `problem` says so."""
    if backend.model == "cnn" and backend.dlib_cuda and not backend.cuda:
        return replace(backend, model="hog", instead_of="cnn")
    return backend


def probe_backend(model: str) -> DetectorBackend:
    """What the detector for `model` (FACE_LOC_MODEL) runs on in this process, from dlib's public
    API; its `model` is the one to detect with (`runnable`). Call it only in the process that
    detects (the inference worker, `edgeface doctor`): counting the devices opens CUDA, and the
    web process must hold no CUDA context (CUDA does not survive a fork)."""
    if model not in MODELS:
        raise ValueError(f"detection model must be one of {', '.join(MODELS)}, got {model!r}")
    import dlib  # noqa: PLC0415

    dlib_cuda = bool(dlib.DLIB_USE_CUDA)
    devices, error = 0, None
    if dlib_cuda:
        try:
            devices = int(dlib.cuda.get_num_devices())
        except RuntimeError as failure:  # dlib's CUDA check throws without a driver or a device
            error = str(failure).strip() or type(failure).__name__
    return runnable(DetectorBackend(model, model == "cnn" and devices > 0, devices, dlib_cuda, error))


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

    def detect_in(self, rgb: np.ndarray, regions: Sequence[Box], scale: float | None = None) -> list[Box]:
        """Faces found in the `regions` of `rgb` (full-frame boxes) at this detector's scale, or
        at `scale` (`detect_at`): a region costs its share of a whole-frame scan at that scale.
        Overlapping finds are merged."""
        found: list[Box] = []
        for region in regions:
            crop = rgb[region.top : region.bottom, region.left : region.right]
            if crop.shape[0] < 16 or crop.shape[1] < 16:
                continue
            if scale is None:
                hits = [_moved(hit, region) for hit in self.detect(crop)]
            else:
                hits = self.detect_at(rgb, region, scale)
            _merge(found, hits)
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
