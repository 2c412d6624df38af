"""A labelled 1280x720 15 fps clip made from the real test photos, with its ground truth per frame.

Four scenes separated by cuts: faces 40-200 px that pan, zoom, turn (other photos of the same
person, and in-plane tilts HOG still finds), enter and leave; two at once; Obama (known) and
Biden (the stranger). In the third scene the camera pans: the textured background and the
people slide right by PAN px/s (on top of their own moves), so the whole picture changes between
two scans (not between two frames: no cut).
Each frame's number is written in its bottom rows as 12 black/white blocks, so a displayed frame
can be matched with its truth after the stream's round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeface.values import Box

SIZE = (1280, 720)
FPS = 15
BITS, BIT_WIDTH, CODE_TOP = 12, 32, 704
NAMES = {"obama": "Barack Obama", "biden": "Unknown"}


@dataclass(frozen=True)
class Face:
    """Where a face is on one frame: who (as the app must label it), its box, and whether the
    whole face is in the picture (a face half out of frame is drawn but not counted)."""

    label: str
    box: Box
    whole: bool = True

    @property
    def counted(self) -> bool:
        """Whether recall and time to name count this face: whole in the frame and >= 40 px."""
        return self.whole and self.box.height >= 40


# (photo, label key, first second, last second, (x, y, height) at start, (x, y, height) at end, tilt degrees)
Path_ = tuple[str, str, float, float, tuple[float, float, float], tuple[float, float, float], float]
SCENES: list[tuple[float, float, int, list[Path_]]] = [
    # start, end, background grey, faces
    (
        0,
        8,
        90,
        [
            ("obama.jpg", "obama", 0.5, 8, (-60, 300, 60), (700, 250, 140), 0),  # enters, pans, zooms in
            ("biden.jpg", "biden", 2, 8, (1000, 200, 90), (1000, 200, 90), 0),  # walks in at 2 s
        ],
    ),
    (
        8,
        16,
        130,
        [
            ("obama2.jpg", "obama", 8, 12, (200, 400, 45), (600, 380, 50), 8),  # small, turning
            ("obama3.jpg", "obama", 12, 16, (600, 380, 50), (900, 420, 42), -8),
            ("biden.jpg", "biden", 8, 16, (1000, 150, 134), (500, 150, 134), 0),
        ],
    ),
    (
        16,
        24,
        70,
        [
            ("obama.jpg", "obama", 16, 24, (500, 200, 200), (600, 300, 45), 0),  # zooms out
            ("biden.jpg", "biden", 16, 20, (150, 300, 62), (150, 300, 62), 0),  # leaves at 20 s
        ],
    ),
    (
        24,
        30,
        110,
        [
            ("obama2.jpg", "obama", 25, 30, (300, 250, 70), (500, 250, 70), 5),
            ("biden.jpg", "biden", 25.5, 30, (900, 300, 45), (800, 300, 48), 0),
        ],
    ),
]
SECONDS = 30
PANNED = 2  # index of the scene whose background pans
PAN = 60.0  # px/s
CUTS = frozenset(int(start * FPS) for start, *_ in SCENES)
"""Frame numbers that start a scene (frame 0 follows the last scene's end when the clip loops)."""


class ClipBuilder:
    def __init__(self, photos: Path) -> None:
        import cv2
        import face_recognition

        # Smooth blobs ~70 px across, +-40 grey levels: a wall the camera pans along.
        noise = np.random.default_rng(15).normal(size=(10, 50)).astype(np.float32)
        blobs = cv2.resize(noise, (SIZE[0] + int(PAN * SECONDS), SIZE[1]), interpolation=cv2.INTER_CUBIC)
        self.texture = np.clip(blobs * 25, -40, 40)
        self.photos: dict[str, tuple[np.ndarray, Box]] = {}
        for name in {face[0] for _, _, _, faces in SCENES for face in faces}:
            bgr = cv2.imread(str(photos / name))
            top, right, bottom, left = face_recognition.face_locations(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))[
                0
            ]
            self.photos[name] = (bgr, Box(top, right, bottom, left))

    def frame(self, number: int) -> tuple[np.ndarray, list[Face]]:
        """BGR frame `number` and its faces."""
        import cv2

        width, height = SIZE
        second = number / FPS
        scene = next(scene for scene in SCENES if scene[0] <= second < scene[1])
        _, _, grey, faces = scene
        ramp = np.linspace(-20, 20, width, dtype=np.float32)[None, :, None]
        background = np.full((height, width, 3), grey, np.float32) + ramp
        panned = SCENES.index(scene) == PANNED
        pan = PAN * (second - scene[0]) if panned else 0.0
        if panned:
            start = self.texture.shape[1] - width - int(pan)
            background += self.texture[:, start : start + width, None]
        image = np.clip(background, 0, 255).astype(np.uint8)
        truth = []
        for photo, key, first, last, begin, end, tilt in faces:
            if not first <= second < last:
                continue
            share = (second - first) / (last - first)
            x, y, size = (a + (b - a) * share for a, b in zip(begin, end, strict=True))
            x += pan
            bgr, box = self.photos[photo]
            scale = size / box.height
            half = int(box.height * 1.4)
            cy, cx = (box.top + box.bottom) // 2, (box.left + box.right) // 2
            patch = bgr[max(0, cy - half) : cy + half, max(0, cx - half) : cx + half]
            patch = cv2.resize(patch, (0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            angle = tilt * math.sin(second * 1.5)
            if angle:
                centre = (patch.shape[1] / 2, patch.shape[0] / 2)
                patch = cv2.warpAffine(
                    patch,
                    cv2.getRotationMatrix2D(centre, angle, 1.0),
                    patch.shape[1::-1],
                    borderMode=cv2.BORDER_REPLICATE,
                )
            top, left = int(y - patch.shape[0] / 2), int(x - patch.shape[1] / 2)
            t0, l0 = max(0, top), max(0, left)
            b0, r0 = min(height - 20, top + patch.shape[0]), min(width, left + patch.shape[1])
            if b0 <= t0 or r0 <= l0:
                continue
            image[t0:b0, l0:r0] = patch[t0 - top : b0 - top, l0 - left : r0 - left]
            face = Box(int(y - size / 2), int(x + size / 2), int(y + size / 2), int(x - size / 2))
            whole = face.left >= 0 and face.right <= width and face.top >= 0 and face.bottom <= height - 20
            truth.append(Face(NAMES[key], face, whole))
        write_number(image, number)
        return image, truth

    def truth(self) -> list[list[Face]]:
        return [self.frame(number)[1] for number in range(SECONDS * FPS)]

    def video(self, target: Path) -> Path:
        """The clip as H.264 MP4 (keyframe every second), cached at `target`."""
        if target.is_file():
            return target
        from servers import encode_video  # tests/ is on the path of every benchmark that plays the clip

        return encode_video((self.frame(number)[0] for number in range(SECONDS * FPS)), target, FPS)


def write_number(image: np.ndarray, number: int) -> None:
    for bit in range(BITS):
        value = 255 if number >> bit & 1 else 0
        image[CODE_TOP : CODE_TOP + 16, bit * BIT_WIDTH : (bit + 1) * BIT_WIDTH] = value


def read_number(image: np.ndarray) -> int:
    number = 0
    for bit in range(BITS):
        block = image[CODE_TOP + 4 : CODE_TOP + 12, bit * BIT_WIDTH + 8 : (bit + 1) * BIT_WIDTH - 8]
        number |= int(block.mean() > 128) << bit
    return number
