"""Training photos made on the device: a tracked face cut from the frame the app holds, or an
uploaded picture; each checked with the device's own workers as training checks a photo (readable,
exactly one face) and stored as a JPEG without the upload's metadata (a phone's location)."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from edgeface.detector import grown
from edgeface.people import PeopleError
from edgeface.picture import Recognised
from edgeface.values import Box

CROP_MARGIN = 0.6
"""A tracked face's photo: its box grown by this x its size on every side (hair, chin, ears: what
a portrait shows and what the trainer's detector expects around a face)."""
PHOTO_FACE = 150
"""A smaller face is scaled up to this height in its photo: the trainer's detector finds it surely."""
JPEG_QUALITY = 92


def face_crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The face at `box` in `image` (BGR) with its surroundings, scaled up when small."""
    height, width = image.shape[:2]
    area = grown(box, CROP_MARGIN, (height, width))
    crop = image[area.top : area.bottom, area.left : area.right]
    if crop.size == 0:
        raise PeopleError(409, "the face is no longer in the picture: try again while it is on screen")
    scale = PHOTO_FACE / max(1, box.height)
    if scale > 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(crop)


def training_photo(image: np.ndarray, recognise: Callable[[np.ndarray], Recognised | None]) -> bytes:
    """`image` (BGR) as the JPEG to store, once the workers found exactly one face in it;
    PeopleError saying why not (422 no face or several, 503 no worker answered)."""
    found = recognise(image)
    if found is None:
        raise PeopleError(503, "no inference worker answered: try again in a few seconds")
    if not found.faces:
        raise PeopleError(422, "no face found in the photo: a training photo shows one face, sharp")
    if len(found.faces) > 1:
        raise PeopleError(422, f"{len(found.faces)} faces in the photo: a training photo shows one person")
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise PeopleError(422, "the photo could not be encoded as a JPEG")
    return encoded.tobytes()
