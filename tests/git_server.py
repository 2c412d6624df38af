"""Real Git servers on loopback for the GitOps tests: `git daemon` (git://, pushes allowed, no
authentication) and git's own smart-HTTP CGI, `git http-backend`, behind a small HTTPS server that
asks for HTTP basic authentication as a forge does.

    with GitDaemon(base) as daemon:          # every bare repository under `base`
        url = daemon.url("devices.git")      # git://127.0.0.1:PORT/devices.git
"""

from __future__ import annotations

import base64
import secrets
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from servers import SiteCredentials, free_port, stop_process, wait_for_port


def bare_repository(path: Path) -> Path:
    """An empty bare repository whose HEAD names main (what a forge makes for a new project)."""
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
    return path


def git(*args: str, cwd: Path | None = None) -> str:
    """A git command of the test's own (not the module's); its output."""
    done = subprocess.run(
        ["git", "-c", "user.name=Someone Else", "-c", "user.email=else@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


class GitDaemon:
    """`git daemon` serving the bare repositories under `base` on 127.0.0.1, pushes allowed."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def __enter__(self) -> GitDaemon:
        self.process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--export-all",
                "--enable=receive-pack",
                "--reuseaddr",
                "--informative-errors",
                f"--base-path={self.base}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.process:
            stop_process(self.process)


class GitHttpsServer:
    """`git http-backend` (git's smart HTTP) for the repositories under `base`, over HTTPS with a
    certificate of `site`'s CA, answering 401 to any request without the user and token below."""

    USER = "edge-bot"

    def __init__(self, base: Path, site: SiteCredentials, scratch: Path) -> None:
        self.base = base
        self.token = secrets.token_urlsafe(24)
        self.site = site
        self.scratch = scratch
        self.authorizations: list[str] = []  # the Authorization header of every request, as received
        self.server: ThreadingHTTPServer | None = None

    def url(self, name: str) -> str:
        assert self.server
        return f"https://127.0.0.1:{self.server.server_address[1]}/{name}"

    def __enter__(self) -> GitHttpsServer:
        expected = "Basic " + base64.b64encode(f"{self.USER}:{self.token}".encode()).decode()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.serve()

            def do_POST(self) -> None:
                self.serve()

            def log_message(self, *args: object) -> None:
                pass

            def serve(self) -> None:
                given = self.headers.get("Authorization", "")
                outer.authorizations.append(given)
                if given != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                environment = {
                    "GIT_PROJECT_ROOT": str(outer.base),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REMOTE_USER": outer.USER,  # http-backend lets an authenticated user push
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                    "PATH": "/usr/bin:/bin",
                }
                done = subprocess.run(
                    ["git", "http-backend"], input=body, env=environment, capture_output=True, check=False
                )
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        certificate, key = self.site.server_certificate(self.scratch)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
