"""Access to the app over real HTTP: waitress on loopback (`AppServer`, as `edgeface serve` runs
it, the stream handed to the broadcaster's writer), a users file and a tokens file made by the
CLI helpers' functions, frames published to the stream while the tests read it."""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.cookies import SimpleCookie
from pathlib import Path

import numpy as np
import pytest

from edgeface.auth import SESSION_COOKIE, Authoriser, LoginLimiter, token_line, user_line
from edgeface.config import AppConfig
from edgeface.pipeline import Pipeline
from edgeface.web import authoriser_of, create_app
from servers import AppServer, face_frame

USER, PASSWORD = "alice", "correct horse battery"
STREAM_SIZE = """() => {
  const img = document.getElementById("stream");
  return img && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null;
}"""
"""The stream image's size once it has shown a frame (null before)."""
TOKEN = "prometheus-0123456789abcdef"


@dataclass
class Site:
    url: str
    host: str
    port: int
    pipeline: Pipeline
    authoriser: Authoriser

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: str | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes, list[str]]:
        """(status, headers, body, Set-Cookie values) of one request; redirects are not followed."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            cookies = response.headers.get_all("Set-Cookie") or []
            return response.status, response.headers, response.read(), cookies
        finally:
            connection.close()

    def login(self, user: str, password: str, headers: dict[str, str] | None = None) -> tuple[int, list[str]]:
        form = urllib.parse.urlencode({"user": user, "password": password})
        status, _, _, cookies = self.request(
            "POST",
            "/login",
            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
            form,
        )
        return status, cookies


def write_files(directory: Path) -> tuple[Path, Path]:
    users = directory / "users"
    users.write_text(f"# people\n{user_line(USER, PASSWORD)}\n")
    tokens = directory / "tokens"
    tokens.write_text(f"{token_line('prometheus', TOKEN)}\n")
    return users, tokens


class Feeder:
    """Publishes a real frame (the sample faces) to the stream 10 times a second."""

    def __init__(self, pipeline: Pipeline, frame: np.ndarray) -> None:
        self.pipeline, self.frame = pipeline, frame
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            self.pipeline.broadcaster.publish(self.frame, time.time())


@contextlib.contextmanager
def running_site(config: AppConfig, frame: np.ndarray | None = None) -> Iterator[Site]:
    """The app of `config` on loopback, its pipeline not started: a Feeder of `frame`, if given,
    stands in for the display loop."""
    pipeline = Pipeline(config)
    feeder = Feeder(pipeline, frame) if frame is not None else None
    if feeder:
        feeder.thread.start()
    app = create_app(config, pipeline)
    try:
        with AppServer(app) as server:
            yield Site(server.url, "127.0.0.1", server.port, pipeline, authoriser_of(app))
    finally:
        if feeder:
            feeder.stopping.set()
        pipeline.broadcaster.close()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> AppConfig:
    users, tokens = write_files(tmp_path_factory.mktemp("auth"))
    return AppConfig(web_users_file=users, web_tokens_file=tokens, inference_workers=1)


@pytest.fixture(scope="module")
def site(config: AppConfig, sample_photos: Path) -> Iterator[Site]:
    with running_site(config, face_frame(sample_photos)) as running:
        yield running


def session_cookie(cookies: list[str]) -> str:
    jar = SimpleCookie()
    for cookie in cookies:
        jar.load(cookie)
    return f"{SESSION_COOKIE}={jar[SESSION_COOKIE].value}"


def read_stream(site: Site, headers: str = "", seconds: float = 1.5, path: str = "/video_feed") -> bytes:
    """Everything the server sends for `GET path` (a stream) within `seconds` (or until it closes)."""
    received = b""
    with socket.create_connection((site.host, site.port), timeout=seconds) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: edge\r\n{headers}\r\n".encode())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
    return received


def test_without_a_credential_the_stream_answers_401_and_sends_no_frame(site: Site) -> None:
    received = read_stream(site)

    assert received.startswith(b"HTTP/1.1 401 ")
    assert b"--frame" not in received and b"\xff\xd8" not in received  # no part, no JPEG


def test_with_a_session_the_stream_sends_frames(site: Site) -> None:
    _, cookies = site.login(USER, PASSWORD)

    received = read_stream(site, f"Cookie: {session_cookie(cookies)}\r\n")

    assert received.startswith(b"HTTP/1.1 200 ")
    assert b"--frame" in received and b"\xff\xd8" in received


def test_a_cameras_own_stream_is_checked_like_the_first(site: Site) -> None:
    _, cookies = site.login(USER, PASSWORD)
    session = f"Cookie: {session_cookie(cookies)}\r\n"

    refused = read_stream(site, path="/video_feed/test")  # the one camera of rtmp://.../live/test
    served = read_stream(site, session, path="/video_feed/test")
    unknown = read_stream(site, session, path="/video_feed/garage")

    assert refused.startswith(b"HTTP/1.1 401 ") and b"\xff\xd8" not in refused
    assert served.startswith(b"HTTP/1.1 200 ") and b"--frame" in served
    assert unknown.startswith(b"HTTP/1.1 404 ")


def test_a_bearer_token_does_not_open_the_stream(site: Site) -> None:
    received = read_stream(site, f"Authorization: Bearer {TOKEN}\r\n")

    assert received.startswith(b"HTTP/1.1 401 ") and b"\xff\xd8" not in received


@pytest.mark.parametrize("path", ["/api/status", "/metrics", "/static/status.js", "/video_feed"])
def test_routes_answer_401_without_a_credential(site: Site, path: str) -> None:
    method = "HEAD" if path == "/video_feed" else "GET"  # HEAD: the stream's head, from Flask
    status, _, _, _ = site.request(method, path)
    assert status == 401


def test_the_api_and_metrics_accept_a_bearer_token_and_refuse_a_wrong_one(site: Site) -> None:
    for path in ("/api/status", "/metrics"):
        good, _, body, _ = site.request("GET", path, {"Authorization": f"Bearer {TOKEN}"})
        wrong, headers, _, _ = site.request("GET", path, {"Authorization": f"Bearer {TOKEN}x"})
        assert good == 200 and body
        assert wrong == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    status, _, body, _ = site.request("GET", "/api/status", {"Authorization": "Bearer wrong"})
    assert status == 401 and b"authentication required" in body


def test_health_readiness_and_the_login_page_are_open(site: Site) -> None:
    assert site.request("GET", "/healthz")[0] == 200
    status, _, body, _ = site.request("GET", "/readyz")  # 503: no worker started here, but no 401
    assert status in (200, 503) and b'"reasons"' in body
    assert site.request("GET", "/login")[0] == 200
    assert site.request("GET", "/static/style.css")[0] == 200


def test_the_page_redirects_to_the_login_page_without_a_session(site: Site) -> None:
    status, headers, _, _ = site.request("GET", "/")
    assert status == 302 and headers["Location"].endswith("/login")


def test_the_session_cookie_is_httponly_samesite_and_not_secure_over_plain_http(site: Site) -> None:
    status, cookies = site.login(USER, PASSWORD)

    assert status == 303
    (cookie,) = [item for item in cookies if item.startswith(f"{SESSION_COOKIE}=")]
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes and "samesite=lax" in attributes
    assert "secure" not in attributes
    assert site.request("GET", "/", {"Cookie": session_cookie(cookies)})[0] == 200


def test_the_cookie_is_secure_over_tls_at_the_trusted_proxy_or_when_forced(config: AppConfig) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9"}
    with running_site(config) as untrusted:  # no WEB_TRUSTED_PROXY: the headers are ignored
        _, plain = untrusted.login(USER, PASSWORD, forwarded)
    with running_site(replace(config, web_trusted_proxy="127.0.0.1")) as proxied:
        _, behind_tls = proxied.login(USER, PASSWORD, forwarded)
        failures = [proxied.login("mallory", "guess", forwarded)[0] for _ in range(6)]
        other_client = proxied.login("mallory", "guess", {**forwarded, "X-Forwarded-For": "198.51.100.10"})[0]
    with running_site(replace(config, web_cookie_secure=True)) as forced:
        _, always = forced.login(USER, PASSWORD)

    assert not re.search(r";\s*Secure", plain[0])
    assert re.search(r";\s*Secure", behind_tls[0]) and re.search(r";\s*Secure", always[0])
    # the limit counts the client's address the proxy forwarded, not the proxy's
    assert failures == [401] * 5 + [429] and other_client == 401


def test_a_session_ends_with_logout(site: Site) -> None:
    _, cookies = site.login(USER, PASSWORD)
    cookie = {"Cookie": session_cookie(cookies)}
    assert site.request("GET", "/api/status", cookie)[0] == 200

    status, headers, _, cleared = site.request("POST", "/logout", cookie)

    assert status == 303 and headers["Location"].endswith("/login")
    assert any(item.startswith(f"{SESSION_COOKIE}=;") for item in cleared)
    assert site.request("GET", "/api/status", cookie)[0] == 401  # the old cookie is revoked
    assert read_stream(site, f"Cookie: {session_cookie(cookies)}\r\n").startswith(b"HTTP/1.1 401 ")


def test_failed_logins_past_the_limit_answer_429_with_retry_after(site: Site) -> None:
    address = {"X-Forwarded-For": "192.0.2.7"}  # ignored: the proxy is not trusted
    try:
        statuses = [site.login("mallory", "guess")[0] for _ in range(5)]
        status, headers, body, _ = site.request(
            "POST",
            "/login",
            {"Content-Type": "application/x-www-form-urlencoded", **address},
            urllib.parse.urlencode({"user": USER, "password": PASSWORD}),
        )
    finally:
        site.authoriser.limiter = LoginLimiter()  # the other tests log in from this address too

    assert statuses == [401] * 5
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60
    assert b"Too many failed logins" in body


def test_headless_chromium_logs_in_sees_the_stream_and_logs_out(site: Site, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from servers import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            page = browser.new_page()
            page.goto(f"{site.url}/", wait_until="domcontentloaded")
            first_url, has_form = page.url, page.locator("form#login").is_visible()

            page.fill("#user", USER)
            page.fill("#password", "not the password")
            page.click("button[type=submit]")
            page.wait_for_selector("#login-message", timeout=10_000)
            refused = page.locator("#login-message").text_content()

            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            size = page.wait_for_function(STREAM_SIZE, timeout=30_000).json_value()  # frames decoded
            signed_in = page.locator("#user-name").text_content()

            page.click("#logout button")
            page.wait_for_url(f"{site.url}/login", timeout=10_000)
            back_to_login = page.locator("form#login").is_visible()
            stream = page.request.get(f"{site.url}/video_feed", timeout=10_000)
            stream_status = stream.status
        finally:
            browser.close()

    assert first_url == f"{site.url}/login" and has_form
    assert refused is not None and "Wrong user name or password" in refused
    assert size == [1280, 720] and signed_in == USER
    assert back_to_login and stream_status == 401
