"""The users and tokens files, their CLI helpers, the failed-login limiter and the start-up checks
of `edgeface serve` (a real process)."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from edgeface.auth import (
    Authoriser,
    LoginLimiter,
    User,
    hash_password,
    load_authoriser,
    read_tokens,
    read_users,
    verify_password,
)
from edgeface.config import AppConfig, ConfigError, load_config
from servers import free_port, stop_process, wait_for_port

EDGEFACE = [sys.executable, "-m", "edgeface"]


def run_cli(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGEFACE, *args], check=False, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_hash_password_prints_a_users_line_that_verifies() -> None:
    result = run_cli("hash-password", "--user", "alice", stdin="correct horse battery\n")

    assert result.returncode == 0, result.stderr
    name, role, hashed = result.stdout.strip().split(":")
    assert (name, role) == ("alice", "viewer")
    scheme, n, r, p, salt, key = hashed.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    expected = hashlib.scrypt(
        b"correct horse battery", salt=base64.b64decode(salt), n=16384, r=8, p=1, dklen=32
    )
    assert base64.b64decode(key) == expected  # the documented format, reproducible without edgeface
    assert verify_password("correct horse battery", hashed)
    assert not verify_password("correct horse batterY", hashed)


def test_hash_token_prints_the_sha256_of_the_token() -> None:
    result = run_cli("hash-token", "--name", "prometheus", stdin="0123456789abcdef0123\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "prometheus:" + hashlib.sha256(b"0123456789abcdef0123").hexdigest()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("hash-password", "--user", "alice"), "short\n", "at least 8"),
        (("hash-password", "--user", "a:b"), "long enough\n", "user name"),
        (("hash-password", "--user", "alice", "--role", "admin"), "long enough\n", "role"),
        (("hash-token", "--name", "prometheus"), "short\n", "at least 16"),
    ],
)
def test_the_helpers_refuse_bad_input(args: tuple[str, ...], stdin: str, message: str) -> None:
    result = run_cli(*args, stdin=stdin)
    assert result.returncode == 2 and message in result.stderr and not result.stdout


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("alice:viewer", "not name:role:hash"),
        ("al ice:viewer:x", "user name"),
        ("alice:admin:" + "scrypt$16384$8$1$AAAAAAAAAAA=$" + "A" * 44, "role"),
        ("alice:viewer:bcrypt$xyz", "hash"),
        ("alice:viewer:scrypt$1048577$8$1$AAAAAAAAAAA=$" + "A" * 44, "out of range"),
    ],
)
def test_a_bad_users_line_names_the_variable_and_the_line(tmp_path: Path, line: str, problem: str) -> None:
    users = tmp_path / "users"
    users.write_text(f"# comment\n\n{line}\n")
    with pytest.raises(ConfigError, match=rf"WEB_USERS_FILE={users}: line 3.*{problem}"):
        read_users(users)


def test_a_bad_tokens_line_names_the_variable(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("prometheus:not-a-sha256\n")
    with pytest.raises(ConfigError, match=r"WEB_TOKENS_FILE=.*line 1"):
        read_tokens(tokens)


def test_a_users_file_reads_back_what_was_written(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(
        f"alice:viewer:{hash_password('pw-alice-123')}\nbob:viewer:{hash_password('pw-bob-456')}\n"
    )
    read = read_users(users)
    assert sorted(read) == ["alice", "bob"] and verify_password("pw-bob-456", read["bob"].password_hash)


def test_the_new_settings_are_read() -> None:
    config = load_config(
        {"WEB_AUTH": "off", "FACE_BLUR_UNKNOWN": "on", "MODEL_SHA256": "AB" * 32, "WEB_TRUSTED_PROXY": "::1"}
    )
    assert (config.web_auth, config.face_blur_unknown, config.web_trusted_proxy) == (False, True, "::1")
    assert config.model_sha256 == "ab" * 32
    defaults = load_config({})
    assert defaults.web_auth and not defaults.face_blur_unknown and defaults.model_sha256 is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limiter_counts_per_address_and_lets_go_after_the_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(failures=5, window=60, clock=clock)
    for _ in range(5):
        limiter.failed("198.51.100.1", None)

    assert limiter.retry_after("198.51.100.1", "alice") == 60
    assert limiter.retry_after("198.51.100.2", "alice") == 0  # another address is not limited
    clock.now += 60
    assert limiter.retry_after("198.51.100.1", "alice") == 0


def test_failures_against_a_name_do_not_keep_the_user_out_at_a_known_address() -> None:
    clock = Clock()
    limiter = LoginLimiter(failures=5, window=60, clock=clock)
    limiter.succeeded("198.51.100.1", "alice")  # alice's usual address
    for index in range(20):  # an attacker on many addresses
        limiter.failed(f"203.0.113.{index}", "alice")

    assert limiter.retry_after("203.0.113.99", "alice") > 0  # the name is limited elsewhere
    assert limiter.retry_after("198.51.100.1", "alice") == 0  # but not where alice logs in


def serve(environ: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("WEB_", "MODEL_"))}
    with log.open("w") as output:
        return subprocess.Popen(
            [*EDGEFACE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**clean, **environ},
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def test_serve_refuses_to_start_with_auth_on_and_no_users(tmp_path: Path) -> None:
    process = serve({"VIDEO_STREAM_URL": str(tmp_path / "none.mp4")}, free_port(), tmp_path / "log")
    assert process.wait(60) == 2
    assert "WEB_USERS_FILE is not set" in (tmp_path / "log").read_text()


def test_serve_refuses_an_empty_users_file(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("# nobody yet\n")
    process = serve({"WEB_USERS_FILE": str(users)}, free_port(), tmp_path / "log")
    assert process.wait(60) == 2
    assert f"WEB_USERS_FILE={users}: no user in it" in (tmp_path / "log").read_text()


def test_serve_with_auth_off_warns_and_the_page_shows_a_banner(
    video: Path, obama_model: Path, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "log"
    environ = {"WEB_AUTH": "off", "VIDEO_STREAM_URL": str(video), "MODEL_FILENAME": str(obama_model)}
    process = serve({**environ, "INFERENCE_WORKERS": "1"}, port, log)
    try:
        wait_for_port(port, 60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            page = response.read().decode()
    finally:
        stop_process(process)
        time.sleep(0.1)

    assert 'id="auth-off"' in page and "Authentication is off" in page
    assert "WARNING edgeface.auth: WEB_AUTH=off" in log.read_text()


def cookie_environ(value: str, path: str = "/video_feed") -> dict[str, str]:
    return {"PATH_INFO": path, "REQUEST_METHOD": "GET", "HTTP_COOKIE": f"edgeface_session={value}"}


def test_a_tampered_expired_or_rekeyed_session_cookie_is_refused() -> None:
    clock = Clock()
    users = {"alice": User("alice", "viewer", hash_password("pw-alice-123"))}
    authoriser = Authoriser(users, secret=b"k" * 32, session_seconds=3600, clock=clock)
    cookie = authoriser.new_session("alice")
    body, _, mac = cookie.partition(".")
    forged = base64.urlsafe_b64encode(b'{"u":"alice","i":1000,"s":"x"}').rstrip(b"=").decode()

    assert authoriser.check(cookie_environ(cookie)).user == "alice"
    assert not authoriser.check(cookie_environ(f"{forged}.{mac}")).allowed
    altered = ("B" if mac[0] == "A" else "A") + mac[1:]
    assert not authoriser.check(cookie_environ(f"{body}.{altered}")).allowed
    assert not Authoriser(users, secret=b"j" * 32, clock=clock).check(cookie_environ(cookie)).allowed
    changed = {"alice": User("alice", "viewer", hash_password("pw-alice-456"))}  # a new password
    assert not Authoriser(changed, secret=b"k" * 32, clock=clock).check(cookie_environ(cookie)).allowed
    clock.now += 3600
    assert not authoriser.check(cookie_environ(cookie)).allowed


def test_auth_off_allows_everything_and_auth_on_redirects_only_the_page() -> None:
    assert Authoriser({}, enabled=False).check(cookie_environ("", "/video_feed")).allowed
    authoriser = Authoriser({"alice": User("alice", "viewer", hash_password("pw-alice-123"))})
    page, stream = (authoriser.check(cookie_environ("", path)) for path in ("/", "/video_feed"))
    assert (page.allowed, page.redirect) == (False, True)
    assert (stream.allowed, stream.redirect, stream.bearer) == (False, False, False)


@pytest.mark.parametrize(
    ("setting", "content", "message"),
    [
        ("web_session_secret_file", "too short\n", "WEB_SESSION_SECRET_FILE=.*at least 32"),
        ("web_tokens_file", None, "WEB_TOKENS_FILE=.*cannot read it"),
        ("web_users_file", None, "WEB_USERS_FILE=.*cannot read it"),
    ],
)
def test_an_unusable_file_stops_start_up_naming_its_variable(
    tmp_path: Path, setting: str, content: str | None, message: str
) -> None:
    users = tmp_path / "users"
    users.write_text(f"alice:viewer:{hash_password('pw-alice-123')}\n")
    target = tmp_path / "file"
    if content is not None:
        target.write_text(content)
    config = replace(AppConfig(web_users_file=users), **{setting: target})
    with pytest.raises(ConfigError, match=message):
        load_authoriser(config)
