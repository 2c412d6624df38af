"""Annotation stage: boxes and names drawn onto a frame (green = known, red = Unknown), and the
"no signal" frame shown while the stream is away.

Colours are BGR, as OpenCV draws them. The label sits in a filled bar under the box, as in the seed.

With `blur_unknown` (FACE_BLUR_UNKNOWN=on) each Unknown face's box, widened by BLUR_MARGIN of its
size on every side (a detector's box leaves out the hair, ears and chin), is blurred before the
boxes and labels are drawn; known faces are left sharp. The boxes are those of the latest
recognition: a face the detector has not found yet (or missed) is not blurred.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeface.values import Box, Detection

KNOWN_COLOUR = (0, 200, 0)  # BGR green
UNKNOWN_COLOUR = (0, 0, 255)  # BGR red
TEXT_COLOUR = (255, 255, 255)
LINE_WIDTH = 2
LABEL_HEIGHT = 20
BLUR_MARGIN = 0.2
"""How far an Unknown face's blur reaches past its box, as a fraction of the box's size."""


def colour_of(detection: Detection) -> tuple[int, int, int]:
    return KNOWN_COLOUR if detection.match.known else UNKNOWN_COLOUR


def blur_region(image: np.ndarray, box: Box, margin: float = BLUR_MARGIN) -> None:
    """Blur, in place, `box` widened by `margin` x its size on each side (clipped to `image`):
    a Gaussian whose sigma is a quarter of the box's larger side, so no feature survives."""
    import cv2  # noqa: PLC0415

    height, width = image.shape[:2]
    grow_y, grow_x = int(box.height * margin), int(box.width * margin)
    top, bottom = max(box.top - grow_y, 0), min(box.bottom + grow_y, height)
    left, right = max(box.left - grow_x, 0), min(box.right + grow_x, width)
    if bottom <= top or right <= left:
        return
    sigma = max(bottom - top, right - left) / 4
    image[top:bottom, left:right] = cv2.GaussianBlur(image[top:bottom, left:right], (0, 0), sigma)


def annotate(image: np.ndarray, detections: Sequence[Detection], blur_unknown: bool = False) -> np.ndarray:
    """A copy of `image` (HxWx3 uint8 BGR) with each detection's box and name drawn on it, and
    with `blur_unknown` every Unknown face blurred under its box."""
    import cv2  # noqa: PLC0415

    out = image.copy()
    height = out.shape[0]
    if blur_unknown:
        for detection in detections:
            if not detection.match.known:
                blur_region(out, detection.box)
    for detection in detections:
        box, colour = detection.box, colour_of(detection)
        cv2.rectangle(out, (box.left, box.top), (box.right, box.bottom), colour, LINE_WIDTH)
        # The label bar goes under the box, or inside its bottom when the box touches the frame's edge.
        label_top = min(box.bottom, height - LABEL_HEIGHT)
        right = max(box.right, box.left + 8 * len(detection.match.name) + 12)
        cv2.rectangle(out, (box.left, label_top), (right, label_top + LABEL_HEIGHT), colour, cv2.FILLED)
        cv2.putText(
            out,
            detection.match.name,
            (box.left + 4, label_top + LABEL_HEIGHT - 5),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            TEXT_COLOUR,
            1,
            cv2.LINE_AA,
        )
    return out


def no_signal_frame(size: tuple[int, int], reason: str | None = None) -> np.ndarray:
    """A dark (height, width, 3) BGR frame saying "no signal" and, below, why (when known)."""
    import cv2  # noqa: PLC0415

    width, height = size
    frame = np.full((height, width, 3), 32, dtype=np.uint8)
    scale = width / 1280
    cv2.putText(
        frame,
        "no signal",
        (int(width * 0.36), height // 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        2.0 * scale,
        (200, 200, 200),
        max(1, int(3 * scale)),
        cv2.LINE_AA,
    )
    if reason:
        cv2.putText(
            frame,
            reason[:100],
            (int(width * 0.05), height // 2 + int(60 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6 * scale,
            (160, 160, 160),
            1,
            cv2.LINE_AA,
        )
    return frame
