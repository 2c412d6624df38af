"""The picture of an upload: the body of a POST, or the one file of its form."""

from __future__ import annotations

from flask import request

from edgeface.picture import MAX_BYTES, PictureError


def uploaded_picture() -> bytes:
    """The picture of a POST: the one file of a multipart form, else the body (at most MAX_BYTES
    + 1 bytes are read, so that a larger one is told apart)."""
    if request.content_length is not None and request.content_length > MAX_BYTES + 64 * 1024:
        raise PictureError(
            413, f"the request is {request.content_length} bytes: a picture may have {MAX_BYTES}"
        )
    if request.mimetype == "multipart/form-data":
        files = list(request.files.values())
        if len(files) != 1:
            raise PictureError(400, f"the form has {len(files)} files: send one picture")
        return files[0].stream.read(MAX_BYTES + 1)
    return request.stream.read(MAX_BYTES + 1)
