"""The mosquitto image (the embedded MQTT broker): non-root, TLS from the site CA only, no anonymous
client, and the ACL the mqtt_broker role writes: the app's user publishes under its prefix and
Home Assistant's, the watchers' user reads them and nothing it publishes reaches anyone."""

from __future__ import annotations

import importlib.util
import queue
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import SiteCredentials, free_port, stop_process, wait_for_port

from .conftest import BUILT_LINE, PREFIX, build_images, image_config, podman

pytestmark = pytest.mark.slow

FILTER = Path(__file__).parents[2] / "plugins" / "filter" / "mosquitto_hash.py"
PASSWORDS = {"edgeface": "App-Pa55word-ForTheTests", "events": "Reader-Pa55word-ForTheTests"}
# The ACL the mqtt_broker role renders for the default prefix.
ACL = """user edgeface
topic readwrite edgeface/#
topic readwrite homeassistant/#

user events
topic read edgeface/#
topic read homeassistant/#
"""


@pytest.fixture(scope="module")
def image(repo_root: Path) -> str:
    """The mosquitto image, built offline (once per set of inputs)."""
    built = BUILT_LINE.search(build_images(repo_root, "--offline-base", "--prefix", PREFIX, "mosquitto"))
    assert built is not None
    return built["ref"]


@pytest.fixture(scope="module")
def site() -> Iterator[SiteCredentials]:
    credentials = SiteCredentials()
    yield credentials
    credentials.remove()


@pytest.fixture(scope="module")
def broker(image: str, site: SiteCredentials, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The broker on 127.0.0.1 with the Secret's files as the role writes them on podman (a root
    folder 0750, files 0640: the non-root broker reads them through group 0); returns its port."""
    spec = importlib.util.spec_from_file_location("edgeai_appliance_mosquitto_hash", FILTER)
    assert spec is not None and spec.loader is not None
    hashing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hashing)
    secret = tmp_path_factory.mktemp("broker") / "mqtt-broker"
    secret.mkdir(mode=0o750)
    site.server_certificate(secret)
    salt = "Zq8s1LmN0pXa"
    (secret / "passwd").write_text(
        "".join(f"{user}:{hashing.mosquitto_hash(password, salt)}\n" for user, password in PASSWORDS.items())
    )
    (secret / "acl").write_text(ACL)
    for path in secret.iterdir():
        path.chmod(0o640)
    port, name = free_port(), f"edgeai-test-mosquitto-{uuid.uuid4().hex[:10]}"
    podman(
        *(
            "run",
            "-d",
            "--name",
            name,
            "-p",
            f"127.0.0.1:{port}:8883",
            "-v",
            f"{secret}:/etc/mosquitto/secret:ro",
        ),
        *("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", image),
    )
    wait_for_port(port, timeout=20)
    yield port
    podman("rm", "-f", "-t", "0", name, check=False)


def client(port: int, cafile: Path, user: str | None) -> list[str]:
    """mosquitto_pub/_sub's connection options, as a watcher on the controller gives them."""
    options = ["-h", "127.0.0.1", "-p", str(port), "--cafile", str(cafile), "-q", "1"]
    return options + (["-u", user, "-P", PASSWORDS[user]] if user else [])


def publish(port: int, cafile: Path, user: str | None, topic: str, message: str, *flags: str) -> int:
    argv = ["mosquitto_pub", *client(port, cafile, user), "-t", topic, "-m", message, *flags]
    return subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode


def test_the_broker_runs_as_a_non_root_user_on_8883(image: str) -> None:
    config = image_config(image)
    assert config["User"] == "10001"
    assert set(config["ExposedPorts"]) == {"8883/tcp"}


def test_only_a_user_with_its_password_over_tls_from_the_site_ca_is_let_in(
    broker: int, site: SiteCredentials
) -> None:
    assert publish(broker, site.ca_file, "edgeface", "edgeface/status", "online") == 0
    assert publish(broker, site.ca_file, None, "edgeface/status", "anonymous") != 0
    wrong = ["mosquitto_pub", *client(broker, site.ca_file, None), "-u", "edgeface", "-P", "wrong"]
    assert subprocess.run(
        [*wrong, "-t", "edgeface/x", "-m", "x"], capture_output=True, check=False
    ).returncode
    # A client that trusts another CA does not talk to it (the certificate is verified).
    other = SiteCredentials()
    try:
        assert publish(broker, other.ca_file, "edgeface", "edgeface/status", "online") != 0
    finally:
        other.remove()


def test_the_watchers_read_what_the_app_writes_under_its_prefix_and_nothing_else(
    broker: int, site: SiteCredentials
) -> None:
    ca = site.ca_file
    # Retained, so the subscriber's first line says its subscription is in place.
    assert publish(broker, ca, "edgeface", "edgeface/status", "online", "-r") == 0
    argv = ["mosquitto_sub", *client(broker, ca, "events"), "-t", "#", "-v"]
    subscriber = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert subscriber.stdout is not None
    threading.Thread(
        target=lambda: [lines.put(line.rstrip("\n")) for line in subscriber.stdout], daemon=True
    ).start()
    try:
        assert lines.get(timeout=10) == "edgeface/status online"
        # The watcher's own publishes are dropped (the broker acknowledges them and tells nobody);
        # the app cannot write outside its prefix and Home Assistant's.
        publish(broker, ca, "events", "edgeface/door/events", "forged by a watcher")
        publish(broker, ca, "edgeface", "elsewhere/door", "outside the prefix")
        assert publish(broker, ca, "edgeface", "homeassistant/sensor/edgeface_door/config", "{}") == 0
        assert publish(broker, ca, "edgeface", "edgeface/door/events", '{"type": "appeared"}') == 0
        received = [lines.get(timeout=10), lines.get(timeout=10)]
        assert received == [
            "homeassistant/sensor/edgeface_door/config {}",
            'edgeface/door/events {"type": "appeared"}',
        ]
    finally:
        stop_process(subscriber)
    assert lines.empty()
