"""HTTP serving: the Flask app under waitress, with `GET /video_feed` handed to the broadcaster.

waitress would give each MJPEG viewer a worker thread for as long as it watches, and push every
part through that thread's chunked response and the connection's output buffer: measured with 50
viewers of a 15 fps 720p stream, 1.27x the CPU of one viewer. So once waitress has read a request
for the stream, its connection leaves waitress (`_StreamChannel.service`) and the broadcaster's
single writer thread feeds the socket. Every other route is served by waitress as usual.
"""

from __future__ import annotations

from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server

from edgeface.broadcaster import Broadcaster
from edgeface.web import VIDEO_FEED

WAITRESS_OPTIONS: dict[str, Any] = {
    "asyncore_use_poll": True,  # select() fails past 1024 descriptors
    "channel_timeout": 30,
    "ident": "edgeface",
}


class _StreamChannel(HTTPChannel):  # type: ignore[misc]  # waitress has no type hints
    """A waitress connection that gives itself to the broadcaster when it asks for the stream."""

    broadcaster: Broadcaster
    requests: list[Any]

    def service(self) -> None:
        request = self.requests[0]
        if request.error or request.command != "GET" or request.path != VIDEO_FEED:
            super().service()
            return
        # Leave waitress's poll loop first: with a request pending it neither reads nor writes
        # this socket, so nothing else touches it from here on.
        self.del_channel()
        with self.requests_lock:
            self.requests = []
        self.broadcaster.attach(self.socket, request.version)


def serve_app(app: Any, broadcaster: Broadcaster, host: str, port: int, threads: int) -> Any:
    """A waitress server for `app` on host:port whose stream viewers `broadcaster` feeds; call
    `.run()` on it (blocks) and `.close()` to stop it."""
    server = create_server(
        app, host=host, port=port, threads=threads, connection_limit=max(100, threads * 2), **WAITRESS_OPTIONS
    )
    channel = type("StreamChannel", (_StreamChannel,), {"broadcaster": broadcaster})
    # One listener, or (a host name with several addresses) several in the server's map.
    listeners = [server] if isinstance(server, BaseWSGIServer) else list(server.map.values())
    for listener in listeners:
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = channel
    return server
