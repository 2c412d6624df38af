"""Annotation stage: boxes and names drawn onto a frame (green = known, red = Unknown), and the
"no signal" frame shown while the stream is away.

Colours are BGR, as OpenCV draws them. The label sits in a filled bar under the box, as in the seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeface.values import Detection

KNOWN_COLOUR = (0, 200, 0)  # BGR green
UNKNOWN_COLOUR = (0, 0, 255)  # BGR red
TEXT_COLOUR = (255, 255, 255)
LINE_WIDTH = 2
LABEL_HEIGHT = 20


def colour_of(detection: Detection) -> tuple[int, int, int]:
    return KNOWN_COLOUR if detection.match.known else UNKNOWN_COLOUR


def annotate(image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
    """A copy of `image` (HxWx3 uint8 BGR) with each detection's box and name drawn on it."""
    import cv2  # noqa: PLC0415

    out = image.copy()
    height = out.shape[0]
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
