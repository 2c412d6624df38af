"""Who may see what: the one check every request passes through, the MJPEG stream included.

`Authoriser.check(environ)` takes a WSGI environ and answers with a `Decision`. The Flask app asks
it before every route (`web.create_app`'s `before_request`), and `edgeface.server` asks it with
the same environ keys before it takes a `GET /video_feed` connection away from waitress: a request
it refuses is left to Flask, whose hook answers it (401), so the stream is never handed over
without a credential and the refusal is written in one place.

Routes fall into three classes (`ACCESS`, `ACCESS_PREFIXES`; a path not listed needs a person's
session):

    open      /healthz, /readyz, /login and its stylesheet: no credential
    machine   /api/status, /api/recognize, /metrics, /api/people..., /api/tracks/...: a bearer token
              (`Authorization: Bearer ...`) or a session
    person    everything else (/, /people, /video_feed, /static/..., /logout): a session

Every user and token has a role. A `viewer` watches; an `operator` may also change who the
model knows: the writes under /api/people and /api/tracks (`needs_operator`) are refused to
anyone else with 403. A write sent with a session cookie must also carry the header
`X-Edgeface-Request: 1` (a page of another site cannot add it without the CORS preflight this app
never answers), so a cookie alone cannot be made to enrol or forget someone.

People log in with a name and password from the users file (`name:role:hash` lines, scrypt
hashes: `hash_password`); machines send a token whose sha256 is in the tokens file
(`name:sha256hex` lines: `token_line`). Every comparison with a secret is constant-time
(`hmac.compare_digest`). A tokens line may name its role, `name:role:sha256hex`; without one
(`name:sha256hex`) the token is a viewer's.

A session is a signed cookie (`SESSION_COOKIE`): the user name, when it was issued and a random
id, with an HMAC-SHA256 by the session secret over them and over the user's password hash, so a
password change or a removed user ends that user's sessions. Logout adds the id to a revocation
list kept in memory until the session would have expired anyway.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from werkzeug.http import parse_cookie

from edgeface.config import AppConfig, ConfigError

log = logging.getLogger(__name__)

OPEN, MACHINE, PERSON = "open", "machine", "person"
ACCESS = {
    "/healthz": OPEN,
    "/readyz": OPEN,
    "/login": OPEN,
    "/static/style.css": OPEN,
    "/api/status": MACHINE,
    "/api/recognize": MACHINE,
    "/metrics": MACHINE,
}
"""Access class per path; any other path needs a session (PERSON)."""
PEOPLE_API = ("/api/people", "/api/tracks/")
"""The people API: read by viewers and machines; its writes change who the model knows."""
ACCESS_PREFIXES = tuple((prefix, MACHINE) for prefix in PEOPLE_API)
"""Access class of the paths under these prefixes."""
PAGES = frozenset({"/", "/people"})
"""Paths a browser opens as a page: without a session they redirect to the login page (others: 401)."""
LOGIN = "/login"
SESSION_COOKIE = "edgeface_session"
VIEWER, OPERATOR = "viewer", "operator"
ROLES = (VIEWER, OPERATOR)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPERATOR_PREFIXES = PEOPLE_API
"""Writes under these paths are an operator's only."""
REQUEST_HEADER = "X-Edgeface-Request"
"""The header a write with a session cookie must carry (value 1)."""

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB, ~50 ms per check on a Jetson-class core
SCRYPT_LENGTH = 32
SALT_BYTES = 16
MIN_PASSWORD = 8
MIN_TOKEN = 16
MIN_SECRET_BYTES = 32
USER_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

LOGIN_FAILURES = 5
"""Failed logins allowed per client address, and per user name, within LOGIN_WINDOW seconds."""
LOGIN_WINDOW = 60.0
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600.0
"""How long an address a user logged in from stays exempt from that user's name limit."""


# -- password and token hashes (the file formats) ------------------------------------------------
def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The users file's hash of `password`: `scrypt$N$r$p$SALT$KEY`, SALT and KEY in standard
    base64 (with padding); KEY is hashlib.scrypt(password UTF-8, salt, N, r, p, dklen=32)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = _scrypt(password, salt, (SCRYPT_N, SCRYPT_R, SCRYPT_P), SCRYPT_LENGTH)
    encoded = (base64.b64encode(part).decode() for part in (salt, key))
    return "$".join(("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), *encoded))


def verify_password(password: str, hashed: str) -> bool:
    """True when `password` matches `hashed` (from hash_password), compared in constant time."""
    salt, key, n, r, p = _parse_hash(hashed)
    return hmac.compare_digest(_scrypt(password, salt, (n, r, p), len(key)), key)


def _scrypt(password: str, salt: bytes, cost: tuple[int, int, int], length: int) -> bytes:
    n, r, p = cost
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=129 * n * r * p + 2**20
    )


def _parse_hash(hashed: str) -> tuple[bytes, bytes, int, int, int]:
    """(salt, key, N, r, p); ValueError for anything else, or parameters too costly to check."""
    parts = hashed.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("not an scrypt$N$r$p$SALT$KEY hash")
    n, r, p = (int(part) for part in parts[1:4])
    if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError("scrypt parameters out of range (N a power of 2 up to 2^20, r 1..32, p 1..16)")
    try:
        salt, key = (base64.b64decode(part, validate=True) for part in parts[4:6])
    except binascii.Error as error:
        raise ValueError(f"salt or key is not base64 ({error})") from None
    if len(salt) < 8 or len(key) < 16:
        raise ValueError("salt or key too short")
    return salt, key, n, r, p


def hash_token(token: str) -> str:
    """The tokens file's hash of a bearer token: sha256 of its UTF-8 bytes, lowercase hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def user_line(name: str, password: str, role: str = "viewer") -> str:
    """One users-file line, `name:role:hash`; ValueError for a bad name, role or short password."""
    if not USER_NAME.match(name):
        raise ValueError(f"user name {name!r}: 1-64 characters of A-Z a-z 0-9 . _ @ -")
    if role not in ROLES:
        raise ValueError(f"role {role!r}: one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")
    return f"{name}:{role}:{hash_password(password)}"


def token_line(name: str, token: str, role: str | None = None) -> str:
    """One tokens-file line, `name:sha256hex` (a viewer's) or `name:role:sha256hex`; ValueError
    for a bad name, role or short token."""
    if not USER_NAME.match(name):
        raise ValueError(f"token name {name!r}: 1-64 characters of A-Z a-z 0-9 . _ @ -")
    if role is not None and role not in ROLES:
        raise ValueError(f"role {role!r}: one of {', '.join(ROLES)}")
    if len(token) < MIN_TOKEN:
        raise ValueError(f"the token must have at least {MIN_TOKEN} characters")
    return f"{name}:{hash_token(token)}" if role is None else f"{name}:{role}:{hash_token(token)}"


def needs_operator(method: str, path: str) -> bool:
    """Whether a request changes who the model knows (an operator's only)."""
    return method.upper() in WRITES and path.startswith(OPERATOR_PREFIXES)


def access_of(path: str) -> str:
    """The access class of `path` (OPEN, MACHINE or PERSON)."""
    if path in ACCESS:
        return ACCESS[path]
    return next((access for prefix, access in ACCESS_PREFIXES if path.startswith(prefix)), PERSON)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str


@dataclass(frozen=True)
class Token:
    """A machine's bearer token, by its hash in the tokens file: its name and role."""

    name: str
    role: str = VIEWER


def read_users(path: Path, variable: str = "WEB_USERS_FILE") -> dict[str, User]:
    """The users file: `name:role:hash` lines; blank lines and `#` comments are skipped.
    ConfigError naming `variable` and the line for anything else."""
    users: dict[str, User] = {}
    for number, line in _lines(path, variable):
        fields = line.split(":")
        if len(fields) != 3:
            raise ConfigError(f"{variable}={path}: line {number} is not name:role:hash")
        name, role, hashed = fields
        problem = None
        if not USER_NAME.match(name):
            problem = f"user name {name!r} (1-64 characters of A-Z a-z 0-9 . _ @ -)"
        elif role not in ROLES:
            problem = f"role {role!r} (one of {', '.join(ROLES)})"
        elif name in users:
            problem = f"user {name!r} appears twice"
        else:
            try:
                _parse_hash(hashed)
            except ValueError as error:
                problem = f"hash: {error} (make lines with `edgeface hash-password`)"
        if problem:
            raise ConfigError(f"{variable}={path}: line {number}: {problem}")
        users[name] = User(name, role, hashed)
    return users


def read_tokens(path: Path, variable: str = "WEB_TOKENS_FILE") -> dict[str, Token]:
    """The tokens file: `name:sha256hex` (a viewer's) or `name:role:sha256hex` lines ->
    {hash: Token}; ConfigError naming `variable` and the line."""
    tokens: dict[str, Token] = {}
    for number, line in _lines(path, variable):
        fields = line.split(":")
        name, digest = fields[0], fields[-1]
        role = fields[1] if len(fields) == 3 else VIEWER
        if len(fields) not in (2, 3) or not USER_NAME.match(name) or not SHA256_HEX.match(digest):
            raise ConfigError(
                f"{variable}={path}: line {number} is not name:sha256hex or name:role:sha256hex"
                " (make it with `edgeface hash-token`)"
            )
        if role not in ROLES:
            raise ConfigError(f"{variable}={path}: line {number}: role {role!r} (one of {', '.join(ROLES)})")
        tokens[digest] = Token(name, role)
    return tokens


def read_secret(path: Path, variable: str = "WEB_SESSION_SECRET_FILE") -> bytes:
    secret = b"".join(line.encode() for _, line in _lines(path, variable))
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"{variable}={path}: the secret must have at least {MIN_SECRET_BYTES} characters")
    return secret


def _lines(path: Path, variable: str) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ConfigError(f"{variable}={path}: cannot read it ({reason})") from None
    lines = ((number, line.strip()) for number, line in enumerate(text.splitlines(), 1))
    return [(number, line) for number, line in lines if line and not line.startswith("#")]


# -- failed logins ---------------------------------------------------------------------------------
@dataclass
class _UserRecord:
    failures: collections.deque[float] = field(default_factory=collections.deque)
    known: dict[str, float] = field(default_factory=dict)  # address -> last successful login


class LoginLimiter:
    """At most `failures` failed logins per `window` seconds per client address and per user name.

    Past either limit a login is refused without checking the password (the caller answers 429
    with `retry_after`). The windows slide, so nothing is locked for longer than `window` after
    the failures stop. The name limit does not apply to an address the user logged in from in the
    last 30 days: an attacker failing against a real name from elsewhere cannot keep the user out
    at their usual address (the address limit still applies there)."""

    def __init__(
        self,
        failures: int = LOGIN_FAILURES,
        window: float = LOGIN_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        self.failures, self.window, self.clock = failures, window, clock
        self.max_addresses = max_addresses
        self._addresses: dict[str, collections.deque[float]] = {}
        self._users: dict[str, _UserRecord] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str, user: str) -> int:
        """Seconds until a login from `address` as `user` may be tried; 0: it may now."""
        now = self.clock()
        with self._lock:
            waits = [self._wait(self._addresses.get(address), now)]
            record = self._users.get(user)
            if record is not None:
                known_at = record.known.get(address)
                if known_at is None or now - known_at >= KNOWN_ADDRESS_SECONDS:
                    waits.append(self._wait(record.failures, now))
        return max(waits)

    def failed(self, address: str, user: str | None) -> None:
        """Count a failure from `address`; against `user` too when it is a real user's name."""
        now = self.clock()
        with self._lock:
            if address not in self._addresses and len(self._addresses) >= self.max_addresses:
                self._forget(now)
            self._addresses.setdefault(address, collections.deque()).append(now)
            if user is not None:
                self._users.setdefault(user, _UserRecord()).failures.append(now)

    def succeeded(self, address: str, user: str) -> None:
        with self._lock:
            self._users.setdefault(user, _UserRecord()).known[address] = self.clock()

    def _wait(self, stamps: collections.deque[float] | None, now: float) -> int:
        if stamps is None:
            return 0
        while stamps and now - stamps[0] >= self.window:
            stamps.popleft()
        if len(stamps) < self.failures:
            return 0
        return max(1, int(stamps[-self.failures] + self.window - now + 0.999))

    def _forget(self, now: float) -> None:
        """Drop addresses with no failure left in the window (or, failing that, the oldest half)."""
        stale = [
            key for key, stamps in self._addresses.items() if not stamps or now - stamps[-1] >= self.window
        ]
        for key in stale or list(self._addresses)[: len(self._addresses) // 2]:
            del self._addresses[key]


# -- the decision ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """allowed, and who (`user` for a session, `token` for a bearer token's name); when refused,
    `redirect` says the caller should send the browser to the login page instead of a 401."""

    allowed: bool
    user: str | None = None
    token: str | None = None
    redirect: bool = False
    bearer: bool = False  # the route takes bearer tokens (for the 401's WWW-Authenticate)
    role: str | None = None  # the user's or token's role
    forbidden: str | None = None  # refused although the credential is good (403): why

    @property
    def who(self) -> str | None:
        """Who asks, as the audit trail names them: the user, or `token:<name>`."""
        return self.user if self.user is not None else (f"token:{self.token}" if self.token else None)


@dataclass(frozen=True)
class Session:
    user: str
    issued: float
    sid: str


class Authoriser:
    """The one access check (see the module docstring); `enabled=False` (WEB_AUTH=off) allows all."""

    def __init__(
        self,
        users: Mapping[str, User],
        tokens: Mapping[str, str | Token] | None = None,
        secret: bytes | None = None,
        *,
        enabled: bool = True,
        session_seconds: float = 12 * 3600.0,
        cookie_secure: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.enabled = enabled
        self.users = dict(users)
        self.tokens = {
            digest: holder if isinstance(holder, Token) else Token(holder)
            for digest, holder in (tokens or {}).items()
        }
        self.secret = secret or secrets.token_bytes(MIN_SECRET_BYTES)
        self.session_seconds = session_seconds
        self.cookie_secure = cookie_secure
        self.clock = clock
        self.limiter = LoginLimiter()
        self._revoked: dict[str, float] = {}  # sid -> when its session would expire
        self._lock = threading.Lock()
        self._dummy_hash = hash_password(secrets.token_hex(8))  # equal work for unknown names

    # -- requests ---------------------------------------------------------------------------------
    def check(self, environ: Mapping[str, Any]) -> Decision:
        """The decision for a request, from its WSGI environ (PATH_INFO, HTTP_COOKIE,
        HTTP_AUTHORIZATION are read)."""
        path = str(environ.get("PATH_INFO") or "/")
        method = str(environ.get("REQUEST_METHOD") or "GET")
        access = access_of(path)
        if not self.enabled:
            return Decision(True, role=OPERATOR)
        if access == OPEN:
            return Decision(True)
        session = self.session_of(environ)
        if session is not None:
            decision = Decision(True, user=session.user, role=self.users[session.user].role)
            if needs_operator(method, path) and environ.get("HTTP_X_EDGEFACE_REQUEST") != "1":
                why = f"a write from the page needs the header {REQUEST_HEADER}: 1"
                return replace(decision, allowed=False, forbidden=why)
        elif access == MACHINE:
            token = self._token(str(environ.get("HTTP_AUTHORIZATION") or ""))
            if token is None:
                return Decision(False, bearer=True)
            decision = Decision(True, token=token.name, role=token.role)
        else:
            return Decision(False, redirect=path in PAGES and method in ("GET", "HEAD"))
        if needs_operator(method, path) and decision.role != OPERATOR:
            why = f"{decision.who} is a {decision.role}: enrolling and forgetting are an operator's"
            return replace(decision, allowed=False, forbidden=why)
        return decision

    @staticmethod
    def client_address(environ: Mapping[str, Any]) -> str:
        """The client's address (waitress puts the trusted proxy's X-Forwarded-For there)."""
        return str(environ.get("REMOTE_ADDR") or "")

    def secure_cookie(self, environ: Mapping[str, Any]) -> bool:
        """Mark the cookie Secure: forced, or the request came over TLS (waitress sets the
        scheme from a trusted proxy's X-Forwarded-Proto, WEB_TRUSTED_PROXY; no other's)."""
        return self.cookie_secure or environ.get("wsgi.url_scheme") == "https"

    def _token(self, authorization: str) -> Token | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        presented = hash_token(token.strip())
        found = None
        for digest, holder in self.tokens.items():  # every entry compared: no early exit
            if hmac.compare_digest(presented, digest):
                found = holder
        return found

    # -- logins -----------------------------------------------------------------------------------
    def login(self, name: str, password: str) -> bool:
        """Whether `name` and `password` match a user (the work is the same for unknown names)."""
        user = self.users.get(name)
        matched = verify_password(password, user.password_hash if user else self._dummy_hash)
        return matched and user is not None

    def known_user(self, name: str) -> bool:
        return name in self.users

    # -- sessions ---------------------------------------------------------------------------------
    def new_session(self, name: str) -> str:
        """A cookie value for a session of user `name` from now."""
        payload = {"u": name, "i": int(self.clock()), "s": secrets.token_urlsafe(16)}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body, name)}"

    def session_of(self, environ: Mapping[str, Any]) -> Session | None:
        """The valid, unexpired, not revoked session in the request's cookie, else None."""
        value = parse_cookie(str(environ.get("HTTP_COOKIE") or "")).get(SESSION_COOKIE, "")
        body, _, mac = value.partition(".")
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(str(payload["u"]), float(payload["i"]), str(payload["s"]))
        except (ValueError, TypeError, KeyError, binascii.Error):
            return None
        if session.user not in self.users or not hmac.compare_digest(mac, self._mac(body, session.user)):
            return None
        if not 0 <= self.clock() - session.issued < self.session_seconds:
            return None
        with self._lock:
            return None if session.sid in self._revoked else session

    def end_session(self, session: Session) -> None:
        """Revoke a session (logout): its cookie is refused from now on."""
        now = self.clock()
        with self._lock:
            self._revoked = {sid: end for sid, end in self._revoked.items() if end > now}
            self._revoked[session.sid] = session.issued + self.session_seconds

    def _mac(self, body: str, name: str) -> str:
        user = self.users.get(name)
        binding = user.password_hash if user else ""
        message = f"{body}|{binding}".encode()
        return _b64(hmac.new(self.secret, message, hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    """URL-safe base64 without padding: cookie-safe."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_authoriser(config: AppConfig) -> Authoriser:
    """The authoriser of `config`: the users, tokens and session secret read from their files.

    ConfigError naming the variable: auth on without WEB_USERS_FILE or with no user in it, or a
    file that cannot be read or has a bad line."""
    if not config.web_auth:
        log.warning(
            "WEB_AUTH=off: every page, the video stream, /api/status and /metrics are open to anyone"
            " who can reach this port; use it in a lab only"
        )
        return Authoriser({}, enabled=False)
    if config.web_users_file is None:
        raise ConfigError(
            "WEB_USERS_FILE is not set: with WEB_AUTH=on (the default) at least one user is needed"
            " (lines from `edgeface hash-password --user NAME`), or WEB_AUTH=off for a lab"
        )
    users = read_users(config.web_users_file)
    if not users:
        raise ConfigError(f"WEB_USERS_FILE={config.web_users_file}: no user in it")
    tokens = read_tokens(config.web_tokens_file) if config.web_tokens_file else {}
    if config.web_session_secret_file:
        secret = read_secret(config.web_session_secret_file)
    else:
        secret = secrets.token_bytes(MIN_SECRET_BYTES)
        log.info(
            "WEB_SESSION_SECRET_FILE is not set: a secret made at start signs sessions; they end at restart"
        )
    log.info("authentication on: %d user(s), %d token(s)", len(users), len(tokens))
    return Authoriser(
        users,
        tokens,
        secret,
        session_seconds=config.web_session_hours * 3600.0,
        cookie_secure=config.web_cookie_secure,
    )
