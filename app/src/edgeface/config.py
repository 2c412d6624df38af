"""The app's environment contract, parsed once at start into one frozen `AppConfig`.

The names and, where they work, the defaults are the original demo's. One default departs:

`FACE_RATIO` defaults to **1** (the seed's 0.25 finds no face under ~140 px in a 720p frame).
With HOG, dlib's smallest face is about 80 px at the scale it scans, and `FACE_LOC_NTU=1` doubles
the image, so ratio x 2^NTU = 2 finds every frontal face from 40 px. Measured on a 1280x720
frame of real photos (the test stream's, faces ~90 px and ~63 px tall; HOG on a grey copy, one
core, idle machine; on colour it took 1.3-1.5x as long):

    FACE_RATIO  FACE_LOC_NTU   time     smallest face found
    0.25        1              14 ms    ~160 px   (the seed's default: none of the two)
    0.5         1              53 ms    ~80 px
    1.0         1             200 ms    ~40 px    (our default; the scanner's sensitivity)
    1.0         2             781 ms    ~20 px    (the seed's deployed setting)

Smaller faces, 25-40 px, are looked for at 3.2x only where the picture changed and nothing was
found at 2x (edgeface.scanning.FineLook), so `FACE_MIN_SIZE` defaults to **20** (it was 40):
dlib's boxes of a 25 px face found at 3.2x are 22-27 px tall.

A whole frame at our default is scanned only on a new scene (shared by both workers);
otherwise the scanner looks where the picture changed (edgeface.scanning) and the follower
re-detects each face around its last box, scaled to ~90 px (edgeface.tracks). On the labelled
clip of `python -m benchmarks recognition` that costs 0.76-0.79 CPU s/s in all (two runs,
README).

`VIDEO_PROCESSING_FPS` defaults to **15** instead of the seed's 1. The seed needed a whole core for
1 recognition a second; here a follower re-detects the faces around where they were (a few ms) and
the scanner looks only where the picture changed, so 15 updates/s with every face named cost
little more than 1/s (`python -m benchmarks pipeline` prints both). It is an upper bound: a
slower stream gives as many updates as it has frames; set 1 to save power.

`VIDEO_STREAM_URLS` (new): several cameras, `name=url,name=url,...` (names 1-32 of a-z 0-9 -, URLs
without a comma); it wins over `VIDEO_STREAM_URL` / `VIDEO_DEVICE_ID`, whose one camera is named
after the last part of its URL's path (`test` for rtmp://nginx-rtmp:1935/live/test), else `camera`.
`VIDEO_STREAM_URLS_FILE` (new): the path of a file holding the same `name=url` entries, separated by
commas or line breaks (blank lines skipped), for URLs that carry a password or a token: a file of a
Secret, not the environment (the roles put them there). It is read once at start and wins like
`VIDEO_STREAM_URLS`; setting both is refused. An error about an entry that may carry a credential
names the entry by its name alone, and the log and `/api/status` show URLs with their password and
query values as `***` (edgeface.redaction).

`FACE_TRACK_SECONDS` (default **2**): a face on screen, once tried FIRST_ATTEMPTS times, is
encoded again this often to check its name (edgeface.tracks); 0 checks whenever a worker is free.
Before this design it was how long a worker that tracked on its own reused a name (default 1).

`INFERENCE_WORKERS` (new, default 2): inference worker processes, shared by every camera of the
device (dlib runs on one core per process; each loads dlib's models, ~100 MB). Each camera's
follower and scanner hand them jobs, the most urgent first (edgeface.workers), so the ~250 ms of
a scan never holds up the updates while another worker is free.

`FACE_TOLERANCE` is unset by default: faces are named with the tolerance recorded in the model,
the one the validation gate checked ("no two people within the tolerance"); set, it overrides
that (logged) and `/api/status` says which is in use.

`WEB_AUTH` (new, default on): every route but /healthz, /readyz and the login page needs a
credential, a person's session (`WEB_USERS_FILE`) or, for /api/status and /metrics, a bearer token
(`WEB_TOKENS_FILE`); see edgeface.auth. `FACE_BLUR_UNKNOWN` (new, default off) blurs the Unknown
faces of the served video. `MODEL_SHA256` (new, unset) is the model file's expected sha256.

`FACE_LOC_MODEL=cnn` runs on CUDA when dlib has it and sees a device, else on the CPU (served,
with a WARNING: far too slow for live video; edgeface.detector.probe_backend has the cases).
`FACE_REQUIRE_CUDA` (new, default off): on, /readyz answers 503 unless the detector runs on CUDA,
so that a rollout to a device without its GPU fails (the roles set it on a Jetson); /healthz is
not affected.

Events (new, all off by default; edgeface.events): `EVENTS_MQTT_URL` (`mqtt://host:1883` or
`mqtts://host:8883`) with `EVENTS_MQTT_USERNAME` and `EVENTS_MQTT_PASSWORD_FILE` (both required:
the broker must ask for a credential), `EVENTS_MQTT_CA_FILE` (the CA an mqtts broker's certificate
is checked against; default the system's), `EVENTS_MQTT_TOPIC` (prefix, default `edgeface`),
`EVENTS_MQTT_HA_DISCOVERY` (Home Assistant discovery, default off); `EVENTS_WEBHOOK_URL` (https://,
or http:// when the URL says so) with `EVENTS_WEBHOOK_SECRET_FILE` (required: the HMAC key) and
`EVENTS_WEBHOOK_CA_FILE`; `EVENTS_SNAPSHOTS` (a small face crop in each event, default off).

A bad value stops start-up with `ConfigError` naming the variable and what it accepts.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from edgeface.redaction import may_carry_secret

DEFAULT_STREAM_URL = "rtmp://nginx-rtmp:1935/live/test"
CAMERA_NAME = re.compile(r"[a-z0-9-]{1,32}")
DEFAULT_CAMERA = "camera"
"""The name of the one camera of VIDEO_STREAM_URL when its URL does not end in one (CameraSpec)."""
TOPIC = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")
DEFAULT_FACE_RATIO = 1.0
DEFAULT_FACE_LOC_NTU = 1
DEFAULT_FACE_MIN_SIZE = 20  # the fine look's smallest finds (edgeface.scanning.FineLook)
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
DETECTION_MODELS = ("hog", "cnn")
SWITCHES = {
    "on": True,
    "true": True,
    "yes": True,
    "1": True,
    "off": False,
    "false": False,
    "no": False,
    "0": False,
}
ON_OFF = "on or off"

T = TypeVar("T")


class ConfigError(ValueError):
    """An environment variable has a value the app cannot use; the message names it."""


@dataclass(frozen=True)
class CameraSpec:
    """One camera: its name (in /video_feed/<name>, the status and the metrics) and where it is
    read from: a stream URL or a file path, or a local camera index (`device`)."""

    name: str
    url: str
    device: int | None = None


def camera_name_of(url: str) -> str:
    """The one camera's name: the last part of its URL's path when that is a valid name (the
    stream key `test` of rtmp://nginx-rtmp:1935/live/test), else DEFAULT_CAMERA."""
    tail = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail if CAMERA_NAME.fullmatch(tail) else DEFAULT_CAMERA


def parse_cameras(text: str, *, lines: bool = False) -> tuple[CameraSpec, ...]:
    """VIDEO_STREAM_URLS: `name=url,name=url,...`; with `lines` (VIDEO_STREAM_URLS_FILE's text) the
    entries are separated by commas or line breaks and blank ones are skipped. ValueError naming the
    bad entry (by its name alone when it may carry a credential: `shown_entry`)."""
    entries = [entry.strip() for entry in (re.split(r"[,\n]", text) if lines else text.split(","))]
    if lines:
        entries = [entry for entry in entries if entry]
        if not entries:
            raise ValueError("there is no entry")
    cameras: list[CameraSpec] = []
    for number, entry in enumerate(entries, 1):
        name, equals, url = entry.partition("=")
        shown = shown_entry(entry, number)
        if not equals or not url.strip():
            raise ValueError(f"{shown} is not name=url")
        if not CAMERA_NAME.fullmatch(name.strip()):
            raise ValueError(f"{shown}: the name must be 1-32 of a-z 0-9 -")
        if any(camera.name == name.strip() for camera in cameras):
            raise ValueError(f"{shown}: the name {name.strip()!r} is taken twice")
        cameras.append(CameraSpec(name.strip(), url.strip()))
    return tuple(cameras)


def shown_entry(entry: str, number: int) -> str:
    """How an error names camera entry `number` (from 1): the entry itself, or, when it may carry a
    credential (a user part or a query), its name alone, or its number when it has no name."""
    if not may_carry_secret(entry):
        return f"entry {entry!r}"
    name = entry.partition("=")[0].strip()
    if name and not re.search(r"[:/@?#]", name):
        return f"entry {name!r} (its URL not shown)"
    return f"entry {number} (not shown: it may carry a credential)"


@dataclass(frozen=True)
class AppConfig:
    """Every setting the web app reads from its environment (units in the field comments)."""

    model_filename: Path = Path("model.data")
    video_stream_url: str = DEFAULT_STREAM_URL  # RTMP/HTTP URL or a file path
    video_device_id: int | None = None  # local camera index; wins over the URL when set
    video_stream_urls: tuple[CameraSpec, ...] = ()  # several cameras; wins over the two above
    frame_width: int = 1280  # capture size request (cameras), pixels
    frame_height: int = 720
    face_ratio: float = DEFAULT_FACE_RATIO  # scale applied before detection, (0, 1]
    face_loc_model: str = "hog"  # hog (CPU) | cnn (CUDA if dlib has it, else the CPU)
    face_require_cuda: bool = False  # /readyz 503 unless the detector runs on CUDA
    face_loc_ntu: int = DEFAULT_FACE_LOC_NTU  # times to upsample when detecting, 0..3
    face_min_size: int = DEFAULT_FACE_MIN_SIZE  # smallest face tracked and named, px tall
    face_unknown_distance: float | None = None  # surely a stranger from here; None: tolerance + 0.1
    video_processing_fps: float = 15.0  # most recognition updates per second, (0, 60]
    face_tolerance: float | None = None  # largest distance still named; None: the model's own
    inference_workers: int = 2  # worker processes: one follows faces, the other scans (one core each)
    face_track_seconds: float = 2.0  # a named face is encoded again this often; 0 = whenever a worker is free
    log_level: str = "INFO"
    model_training_yaml: Path | None = None
    stall_seconds: float = 1.0  # newest frame older than this = the publisher is gone (edgeface.source)
    web_host: str = "0.0.0.0"
    web_port: int = 5000
    web_auth: bool = True  # every route but /healthz, /readyz and the login page needs a credential
    web_users_file: Path | None = None  # name:role:scrypt-hash lines (edgeface.auth)
    web_tokens_file: Path | None = None  # name[:role]:sha256-of-token lines, for /api/... and /metrics
    web_session_secret_file: Path | None = None  # None: a secret made at start (sessions end at restart)
    web_session_hours: float = 12.0  # a login lasts this long
    web_trusted_proxy: str | None = None  # address (or *) of a TLS terminator whose X-Forwarded-* count
    web_cookie_secure: bool = False  # mark the session cookie Secure even on plain HTTP requests
    face_blur_unknown: bool = False  # blur Unknown faces in the served video
    metrics_per_person: bool = False  # /metrics counts faces by name (else only known / Unknown)
    model_sha256: str | None = None  # the model file's expected sha256 (hex); None: not checked
    events_mqtt_url: str | None = None  # mqtt://host[:1883] or mqtts://host[:8883]; None: no MQTT
    events_mqtt_username: str | None = None
    events_mqtt_password_file: Path | None = None
    events_mqtt_ca_file: Path | None = None  # None: the system's CAs
    events_mqtt_topic: str = "edgeface"  # topic prefix
    events_mqtt_ha_discovery: bool = False  # publish Home Assistant discovery configs
    events_webhook_url: str | None = None  # https://... (http:// only when written so); None: none
    events_webhook_secret_file: Path | None = None  # the HMAC-SHA256 key of X-Edgeface-Signature
    events_webhook_ca_file: Path | None = None  # None: the system's CAs
    events_snapshots: bool = False  # a small JPEG of the face in appeared/renamed events
    people_s3_url: str | None = None  # the model store's S3 endpoint; None: no people store
    people_s3_bucket: str = "models"
    people_s3_region: str = "us-east-1"
    people_s3_access_key_file: Path | None = None
    people_s3_secret_key_file: Path | None = None
    people_s3_ca_file: Path | None = None  # None: the system's CAs
    people_retrain_command: str = "ansible-playbook playbooks/retrain.yml -i inventories/<site>"

    @property
    def cameras(self) -> tuple[CameraSpec, ...]:
        """Every camera: VIDEO_STREAM_URLS's, else the one of VIDEO_DEVICE_ID or VIDEO_STREAM_URL."""
        if self.video_stream_urls:
            return self.video_stream_urls
        name = DEFAULT_CAMERA if self.video_device_id is not None else camera_name_of(self.video_stream_url)
        return (CameraSpec(name, self.video_stream_url, self.video_device_id),)

    @property
    def log_level_number(self) -> int:
        return int(logging.getLevelName(self.log_level))


def _parse(environ: Mapping[str, str], name: str, convert: Callable[[str], T], accepted: str) -> T | None:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return convert(raw.strip())
    except (ValueError, TypeError):
        raise ConfigError(f"{name}={raw!r} is invalid: expected {accepted}") from None


def _in_range(
    convert: Callable[[str], T], low: float, high: float, *, open_low: bool = False
) -> Callable[[str], T]:
    def check(text: str) -> T:
        value = convert(text)
        number = float(value)  # type: ignore[arg-type]
        if not (low < number <= high if open_low else low <= number <= high):
            raise ValueError(text)
        return value

    return check


def _choice(options: tuple[str, ...], fold: Callable[[str], str]) -> Callable[[str], str]:
    def check(text: str) -> str:
        if fold(text) not in options:
            raise ValueError(text)
        return fold(text)

    return check


def _switch(text: str) -> bool:
    folded = text.lower()
    if folded not in SWITCHES:
        raise ValueError(text)
    return SWITCHES[folded]


def _sha256(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise ValueError(text)
    return text.lower()


def _proxy(text: str) -> str:
    return text if text == "*" else str(ipaddress.ip_address(text))


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def check(text: str) -> str:
        parsed = urllib.parse.urlsplit(text)
        if parsed.scheme not in schemes or not parsed.hostname or parsed.password is not None:
            raise ValueError(text)
        if parsed.port == 0:  # reading the port raises ValueError for one out of range
            raise ValueError(text)
        return text

    return check


def _topic(text: str) -> str:
    if len(text) > 64 or not TOPIC.fullmatch(text):
        raise ValueError(text)
    return text


def read_credential(path: Path, variable: str) -> str:
    """The first line of a secret file (a password, a key); ConfigError naming `variable` when
    unusable."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{variable}={str(path)!r} cannot be read: {error}") from None
    if not text:
        raise ConfigError(f"{variable}={str(path)!r} is empty")
    return text.splitlines()[0]


def _with_url(
    url: tuple[str, str | None], what: str, settings: tuple[tuple[str, object], ...], required: int, why: str
) -> None:
    """Settings that only make sense with a URL (`url`: its variable and value; `what` it points
    at): ConfigError naming one set without the URL, or the URL without the first `required`."""
    url_name, value = url
    if value is None:
        for name, setting in settings:
            if setting is not None:
                raise ConfigError(f"{name} is set but {url_name} is not: set {what} too")
    elif any(pair[1] is None for pair in settings[:required]):
        needed = " and ".join(pair[0] for pair in settings[:required])
        raise ConfigError(f"{url_name} needs {needed}: {why}")


def _check_events(config: AppConfig) -> None:
    """The event settings that only make sense together."""
    _with_url(
        ("EVENTS_MQTT_URL", config.events_mqtt_url),
        "the broker's URL",
        (
            ("EVENTS_MQTT_USERNAME", config.events_mqtt_username),
            ("EVENTS_MQTT_PASSWORD_FILE", config.events_mqtt_password_file),
            ("EVENTS_MQTT_CA_FILE", config.events_mqtt_ca_file),
        ),
        2,
        "the broker must ask for a credential",
    )
    _with_url(
        ("EVENTS_WEBHOOK_URL", config.events_webhook_url),
        "the receiver's URL",
        (
            ("EVENTS_WEBHOOK_SECRET_FILE", config.events_webhook_secret_file),
            ("EVENTS_WEBHOOK_CA_FILE", config.events_webhook_ca_file),
        ),
        1,
        "the key its events are signed with",
    )


def _check_people(config: AppConfig) -> None:
    """The people store's settings: its keys go with its URL."""
    _with_url(
        ("PEOPLE_S3_URL", config.people_s3_url),
        "the store's URL",
        (
            ("PEOPLE_S3_ACCESS_KEY_FILE", config.people_s3_access_key_file),
            ("PEOPLE_S3_SECRET_KEY_FILE", config.people_s3_secret_key_file),
            ("PEOPLE_S3_CA_FILE", config.people_s3_ca_file),
        ),
        2,
        "the store's key pair",
    )


def _bucket(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", text):
        raise ValueError(text)
    return text


def _parse_cameras(environ: Mapping[str, str]) -> tuple[CameraSpec, ...] | None:
    """VIDEO_STREAM_URLS's cameras, or VIDEO_STREAM_URLS_FILE's (never both); None when neither is set."""
    raw, path = (environ.get(name, "").strip() for name in ("VIDEO_STREAM_URLS", "VIDEO_STREAM_URLS_FILE"))
    if raw and path:
        raise ConfigError(
            "VIDEO_STREAM_URLS and VIDEO_STREAM_URLS_FILE are both set: set one (the file for URLs that"
            " carry a password or a token)"
        )
    if path:
        variable, text = f"VIDEO_STREAM_URLS_FILE={path!r}", _read_cameras_file(Path(path))
        expected = "name=url entries, one a line or separated by commas"
    elif raw:
        variable, text, expected = "VIDEO_STREAM_URLS", environ["VIDEO_STREAM_URLS"], "name=url,name=url,..."
    else:
        return None
    try:
        return parse_cameras(text, lines=bool(path))
    except ValueError as error:
        raise ConfigError(f"{variable}: {error}; expected {expected} (names 1-32 of a-z 0-9 -)") from None


def _read_cameras_file(path: Path) -> str:
    """VIDEO_STREAM_URLS_FILE's text; ConfigError naming the variable and the path, never the content."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"VIDEO_STREAM_URLS_FILE={str(path)!r} is not UTF-8 text") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"VIDEO_STREAM_URLS_FILE={str(path)!r} cannot be read: {reason}") from None


def load_config(environ: Mapping[str, str] | None = None) -> AppConfig:
    """Read the env contract (default: `os.environ`); raise ConfigError on the first bad value."""
    env = os.environ if environ is None else environ
    values = {
        "model_filename": _parse(env, "MODEL_FILENAME", Path, "a file path"),
        "video_stream_url": _parse(env, "VIDEO_STREAM_URL", str, "a stream URL or a file path"),
        "video_stream_urls": _parse_cameras(env),
        "video_device_id": _parse(env, "VIDEO_DEVICE_ID", _in_range(int, 0, 63), "a camera index 0..63"),
        "frame_width": _parse(env, "CAP_PROP_FRAME_WIDTH", _in_range(int, 16, 7680), "an integer 16..7680"),
        "frame_height": _parse(env, "CAP_PROP_FRAME_HEIGHT", _in_range(int, 16, 4320), "an integer 16..4320"),
        "face_ratio": _parse(env, "FACE_RATIO", _in_range(float, 0, 1, open_low=True), "a number in (0, 1]"),
        "face_loc_model": _parse(env, "FACE_LOC_MODEL", _choice(DETECTION_MODELS, str.lower), "hog or cnn"),
        "face_require_cuda": _parse(env, "FACE_REQUIRE_CUDA", _switch, ON_OFF),
        "face_loc_ntu": _parse(env, "FACE_LOC_NTU", _in_range(int, 0, 3), "an integer 0..3"),
        "video_processing_fps": _parse(
            env, "VIDEO_PROCESSING_FPS", _in_range(float, 0, 60, open_low=True), "a number in (0, 60]"
        ),
        "face_tolerance": _parse(
            env, "FACE_TOLERANCE", _in_range(float, 0, 1.5, open_low=True), "a number in (0, 1.5]"
        ),
        "face_min_size": _parse(
            env, "FACE_MIN_SIZE", _in_range(int, 16, 1000), "a face height in px 16..1000"
        ),
        "face_unknown_distance": _parse(
            env, "FACE_UNKNOWN_DISTANCE", _in_range(float, 0, 1.5, open_low=True), "a number in (0, 1.5]"
        ),
        "inference_workers": _parse(env, "INFERENCE_WORKERS", _in_range(int, 1, 8), "an integer 1..8"),
        "face_track_seconds": _parse(
            env, "FACE_TRACK_SECONDS", _in_range(float, 0, 10), "a number of seconds in [0, 10]"
        ),
        "log_level": _parse(
            env, "WEB_LOGLEVEL", _choice(LOG_LEVELS, str.upper), "one of " + ", ".join(LOG_LEVELS)
        ),
        "model_training_yaml": _parse(env, "MODEL_TRAINING_YAML", Path, "a file path"),
        "stall_seconds": _parse(
            env, "VIDEO_STALL_SECONDS", _in_range(float, 0.2, 60), "a number of seconds in [0.2, 60]"
        ),
        "web_host": _parse(env, "WEB_HOST", str, "an address to listen on"),
        "web_port": _parse(env, "WEB_PORT", _in_range(int, 1, 65535), "a TCP port 1..65535"),
        "web_auth": _parse(env, "WEB_AUTH", _switch, ON_OFF),
        "web_users_file": _parse(env, "WEB_USERS_FILE", Path, "a file path"),
        "web_tokens_file": _parse(env, "WEB_TOKENS_FILE", Path, "a file path"),
        "web_session_secret_file": _parse(env, "WEB_SESSION_SECRET_FILE", Path, "a file path"),
        "web_session_hours": _parse(
            env, "WEB_SESSION_HOURS", _in_range(float, 0, 720, open_low=True), "a number of hours in (0, 720]"
        ),
        "web_trusted_proxy": _parse(
            env, "WEB_TRUSTED_PROXY", _proxy, "the IP address of the TLS terminator in front, or *"
        ),
        "web_cookie_secure": _parse(env, "WEB_COOKIE_SECURE", _switch, ON_OFF),
        "face_blur_unknown": _parse(env, "FACE_BLUR_UNKNOWN", _switch, ON_OFF),
        "metrics_per_person": _parse(env, "METRICS_PER_PERSON", _switch, ON_OFF),
        "model_sha256": _parse(
            env, "MODEL_SHA256", _sha256, "64 hexadecimal digits (sha256sum of the model file)"
        ),
        "events_mqtt_url": _parse(
            env,
            "EVENTS_MQTT_URL",
            _url(("mqtt", "mqtts")),
            "mqtt://host:port or mqtts://host:port, no password",
        ),
        "events_mqtt_username": _parse(env, "EVENTS_MQTT_USERNAME", str, "a user name"),
        "events_mqtt_password_file": _parse(env, "EVENTS_MQTT_PASSWORD_FILE", Path, "a file path"),
        "events_mqtt_ca_file": _parse(env, "EVENTS_MQTT_CA_FILE", Path, "a file path"),
        "events_mqtt_topic": _parse(
            env,
            "EVENTS_MQTT_TOPIC",
            _topic,
            "a topic prefix: 1-64 of A-Z a-z 0-9 _ - / (no wildcards, no / at an end)",
        ),
        "events_mqtt_ha_discovery": _parse(env, "EVENTS_MQTT_HA_DISCOVERY", _switch, ON_OFF),
        "events_webhook_url": _parse(
            env,
            "EVENTS_WEBHOOK_URL",
            _url(("https", "http")),
            "an https:// (or http://) URL without a password",
        ),
        "events_webhook_secret_file": _parse(env, "EVENTS_WEBHOOK_SECRET_FILE", Path, "a file path"),
        "events_webhook_ca_file": _parse(env, "EVENTS_WEBHOOK_CA_FILE", Path, "a file path"),
        "events_snapshots": _parse(env, "EVENTS_SNAPSHOTS", _switch, ON_OFF),
        "people_s3_url": _parse(
            env, "PEOPLE_S3_URL", _url(("https", "http")), "the store's http(s)://host:port, no password"
        ),
        "people_s3_bucket": _parse(
            env, "PEOPLE_S3_BUCKET", _bucket, "an S3 bucket name (3-63 of a-z 0-9 . -)"
        ),
        "people_s3_region": _parse(env, "PEOPLE_S3_REGION", str, "a region name"),
        "people_s3_access_key_file": _parse(env, "PEOPLE_S3_ACCESS_KEY_FILE", Path, "a file path"),
        "people_s3_secret_key_file": _parse(env, "PEOPLE_S3_SECRET_KEY_FILE", Path, "a file path"),
        "people_s3_ca_file": _parse(env, "PEOPLE_S3_CA_FILE", Path, "a file path"),
        "people_retrain_command": _parse(env, "PEOPLE_RETRAIN_COMMAND", str, "a command line"),
    }
    chosen = {key: value for key, value in values.items() if value is not None}
    config = replace(AppConfig(), **chosen)  # type: ignore[arg-type]
    _check_events(config)
    _check_people(config)
    return config
