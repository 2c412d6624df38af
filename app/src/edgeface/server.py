"""HTTP serving: the Flask app under waitress, with `GET /video_feed` handed to the broadcaster.

waitress would give each MJPEG viewer a worker thread for as long as it watches, and push every
part through that thread's chunked response and the connection's output buffer: measured with 50
viewers of a 15 fps 720p stream, 1.27x the CPU of one viewer. So once waitress has read a request
for the stream, its connection leaves waitress (`_StreamChannel.service`) and the broadcaster's
single writer thread feeds the socket. Every other route is served by waitress as usual.

The hand-over asks the app's authoriser first, with the request's WSGI keys (path, method,
headers, peer, scheme): only a request it allows leaves waitress. A refused one stays with
waitress and reaches Flask, whose `before_request` hook asks the same authoriser and answers 401,
so no part of the stream is sent without a credential and there is one check and one refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server

from edgeface.auth import Authoriser
from edgeface.broadcaster import Broadcaster
from edgeface.web import authoriser_of, config_of, stream_path

WAITRESS_OPTIONS: dict[str, Any] = {
    "asyncore_use_poll": True,  # select() fails past 1024 descriptors
    "channel_timeout": 30,
    "ident": "edgeface",
}
PROXY_HEADERS = {"x-forwarded-proto", "x-forwarded-for"}
"""Headers taken from WEB_TRUSTED_PROXY: the scheme (a Secure cookie) and the client's address
(the failed-login limit), one hop: the proxy's own entry."""


class _StreamChannel(HTTPChannel):  # type: ignore[misc]  # waitress has no type hints
    """A waitress connection that gives itself to the broadcaster when it asks for the stream."""

    broadcasters: Callable[[str | None], Broadcaster | None]
    authoriser: Authoriser
    requests: list[Any]
    addr: Any

    def service(self) -> None:
        request = self.requests[0]
        stream, camera = stream_path(request.path)
        wanted = stream and not request.error and request.command == "GET"
        broadcaster = self.broadcasters(camera) if wanted else None
        if broadcaster is None or not self.authoriser.check(self._environ(request)).allowed:
            # Flask serves it: a refused stream request (its hook answers 401), an unknown camera (404)
            super().service()
            return
        # Leave waitress's poll loop first: with a request pending it neither reads nor writes
        # this socket, so nothing else touches it from here on.
        self.del_channel()
        with self.requests_lock:
            self.requests = []
        broadcaster.attach(self.socket, request.version)

    def _environ(self, request: Any) -> dict[str, Any]:
        """The WSGI keys of `request` the authoriser reads (waitress keeps header names upper
        case with `_` for `-`, as WSGI's HTTP_* keys do)."""
        environ: dict[str, Any] = {f"HTTP_{name}": value for name, value in request.headers.items()}
        environ.update(
            REQUEST_METHOD=request.command,
            PATH_INFO=request.path,
            REMOTE_ADDR=self.addr[0] if isinstance(self.addr, tuple) else "",
        )
        environ["wsgi.url_scheme"] = request.url_scheme
        return environ


def serve_app(
    app: Any, broadcasters: Callable[[str | None], Broadcaster | None], host: str, port: int, threads: int
) -> Any:
    """A waitress server for `app` (from edgeface.web.create_app) on host:port whose stream
    viewers the broadcaster of their camera feeds (`broadcasters(name)`: None for the first
    camera, None back for no such camera), once app's authoriser allows them; call `.run()` on it
    (blocks) and `.close()` to stop it."""
    proxy = config_of(app).web_trusted_proxy
    if proxy:  # waitress's own proxy support: scheme and client address from that peer's headers
        options = {**WAITRESS_OPTIONS, "trusted_proxy": proxy, "trusted_proxy_headers": PROXY_HEADERS}
    else:  # waitress removes every X-Forwarded-* header before the app sees it
        options = WAITRESS_OPTIONS
    server = create_server(
        app, host=host, port=port, threads=threads, connection_limit=max(100, threads * 2), **options
    )
    attributes = {"broadcasters": staticmethod(broadcasters), "authoriser": authoriser_of(app)}
    channel = type("StreamChannel", (_StreamChannel,), attributes)
    # One listener, or (a host name with several addresses) several in the server's map.
    listeners = [server] if isinstance(server, BaseWSGIServer) else list(server.map.values())
    for listener in listeners:
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = channel
    return server
