"""Events as signed HTTP POSTs (EVENTS_WEBHOOK_URL), one JSON event per request.

Each body is edgeface.events.event_payload's JSON; `X-Edgeface-Signature: sha256=<hex>` is the
HMAC-SHA256 of the exact body bytes with the key in EVENTS_WEBHOOK_SECRET_FILE (a receiver checks
it with a constant-time compare before trusting the body); `X-Edgeface-Event` is the event's type.

A 2xx answer delivers the event. A timeout, a connection error, a 5xx, 408 or 429 is tried again
after 1, 2 and 4 s, then dropped and counted; another 4xx is dropped at once (the receiver will not
change its mind). One sender thread works through a bounded Outbox (oldest dropped when full), so
a receiver that hangs costs TIMEOUT seconds of that thread, never a frame.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from edgeface import __version__
from edgeface.config import AppConfig, ConfigError
from edgeface.events import Event, Outbox, Throttled, event_payload

log = logging.getLogger(__name__)

TIMEOUT = 5.0  # seconds a receiver has to answer one POST
RETRY_DELAYS = (1.0, 2.0, 4.0)  # seconds before each new try of an event that failed
RETRIED_STATUSES = frozenset({408, 429})
SIGNATURE_HEADER = "X-Edgeface-Signature"
MIN_SECRET_BYTES = 16


def signature(secret: bytes, body: bytes) -> str:
    """The X-Edgeface-Signature value of `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def read_secret(path: str | None, variable: str) -> bytes:
    """The HMAC key: the file's bytes without the trailing newline; ConfigError naming `variable`
    when unreadable or shorter than MIN_SECRET_BYTES."""
    try:
        secret = open(str(path), "rb").read().rstrip(b"\r\n")  # noqa: SIM115 - read at once
    except OSError as error:
        raise ConfigError(f"{variable}={path!r} cannot be read: {error}") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{variable}={path!r} holds {len(secret)} bytes: a key needs {MIN_SECRET_BYTES} at least"
        )
    return secret


class WebhookSink:
    """The webhook sink (edgeface.events.EventSink)."""

    name = "webhook"

    def __init__(self, config: AppConfig, *, dropped: Callable[[], None], failed: Callable[[], None]) -> None:
        assert config.events_webhook_url is not None
        self.url = config.events_webhook_url
        self.secret = read_secret(
            None if config.events_webhook_secret_file is None else str(config.events_webhook_secret_file),
            "EVENTS_WEBHOOK_SECRET_FILE",
        )
        self.context: ssl.SSLContext | None = None
        if urllib.parse.urlsplit(self.url).scheme == "https":
            ca = config.events_webhook_ca_file
            try:
                self.context = ssl.create_default_context(cafile=None if ca is None else str(ca))
            except (OSError, ValueError) as error:
                raise ConfigError(
                    f"EVENTS_WEBHOOK_CA_FILE={str(ca)!r} is not a readable PEM CA: {error}"
                ) from None
        elif config.events_webhook_ca_file is not None:
            raise ConfigError("EVENTS_WEBHOOK_CA_FILE is set but EVENTS_WEBHOOK_URL is http://: use https://")
        else:
            log.warning("events: EVENTS_WEBHOOK_URL is plain http://: events cross the network unencrypted")
        self.outbox = Outbox(dropped)
        self._failed = failed
        self._warn = Throttled(log)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, event: Event) -> None:
        self.outbox.put(event)

    def people(self, camera: str, names: list[str]) -> None:
        """The webhook carries events only (a receiver keeps who is where from them)."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._send_loop, name="events-webhook", daemon=True)
        self._thread.start()
        log.info("events: webhook to %s", urllib.parse.urlsplit(self.url)._replace(query="").geturl())

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        self.outbox.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def deliver(self, event: Event) -> bool:
        """POST one event, trying again as the module says; True when the receiver took it."""
        body = json.dumps(event_payload(event)).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"edgeface/{__version__}",
                "X-Edgeface-Event": event.type,
                SIGNATURE_HEADER: signature(self.secret, body),
            },
        )
        for delay in (0.0, *RETRY_DELAYS):
            if delay and self._stopping.wait(delay):
                return False
            problem = self._post(request)
            if problem is None:
                return True
            retry, reason = problem
            self._failed()
            self._warn.warning("events: the webhook %s did not take an event: %s", self.url, reason)
            if not retry:
                return False
        return False

    def _post(self, request: urllib.request.Request) -> tuple[bool, str] | None:
        """None when delivered, else (worth another try, why not)."""
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self.context) as response:
                response.read()
            return None
        except urllib.error.HTTPError as error:
            error.close()
            return error.code >= 500 or error.code in RETRIED_STATUSES, f"HTTP {error.code}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            return True, str(getattr(error, "reason", error))

    def _send_loop(self) -> None:
        while not self._stopping.is_set():
            event = self.outbox.get(0.5)
            if event is not None:
                self.deliver(event)
