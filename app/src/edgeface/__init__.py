"""edgeface: face recognition on a video stream, served as MJPEG, and its model trainer."""

__version__ = "0.1.0"
