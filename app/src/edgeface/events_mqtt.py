"""Events over MQTT (paho-mqtt), for Home Assistant, Node-RED and anything else on a broker.

Topics, under the prefix EVENTS_MQTT_TOPIC (`edgeface`):

    <prefix>/<camera>/events   each event's JSON (edgeface.events.event_payload), QoS 1
    <prefix>/<camera>/people   the names on screen now, a JSON list, retained
    <prefix>/status            `online`, retained; `offline` as the broker's last will

With EVENTS_MQTT_HA_DISCOVERY=on, Home Assistant's discovery configs (retained) add, per camera, a
sensor (the people on screen) and a binary sensor (someone Unknown on screen).

paho's network thread connects in the background and reconnects with backoff; the sender thread
hands it an event only while connected, so a dead broker fills only the bounded Outbox (oldest
dropped, counted) and costs a WARNING a minute. On every (re)connection the status, the
discovery configs and each camera's people are published again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgeface import __version__
from edgeface.config import AppConfig, ConfigError, read_credential
from edgeface.events import OUTBOX_SIZE, Event, Outbox, Throttled, event_payload

log = logging.getLogger(__name__)

ONLINE, OFFLINE = "online", "offline"
KEEPALIVE = 30  # seconds; the broker sends the last will ~1.5x this after the device vanishes
RECONNECT_MIN, RECONNECT_MAX = 1, 8  # seconds between attempts to reach the broker (doubling)
SEND_WAIT = 0.5  # the sender's longest wait for an event or a connection
DISCOVERY_PREFIX = "homeassistant"


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool


def discovery_configs(prefix: str, cameras: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Home Assistant MQTT discovery: config topic -> payload, per camera a sensor of the people
    on screen and a binary sensor of someone Unknown on screen."""
    node = prefix.replace("/", "_")
    device = {"identifiers": [f"edgeface_{node}"], "name": f"Edgeface {prefix}", "sw_version": __version__}
    configs: dict[str, dict[str, Any]] = {}
    for camera in cameras:
        people = f"{prefix}/{camera}/people"
        common = {"state_topic": people, "availability_topic": f"{prefix}/status", "device": device}
        configs[f"{DISCOVERY_PREFIX}/sensor/{node}_{camera}/people/config"] = {
            **common,
            "name": f"{camera} people",
            "unique_id": f"edgeface_{node}_{camera}_people",
            "icon": "mdi:account-group",
            "value_template": "{{ value_json | join(', ') if value_json else 'nobody' }}",
            "json_attributes_topic": people,
            "json_attributes_template": "{{ {'names': value_json} | tojson }}",
        }
        configs[f"{DISCOVERY_PREFIX}/binary_sensor/{node}_{camera}/unknown/config"] = {
            **common,
            "name": f"{camera} unknown person",
            "unique_id": f"edgeface_{node}_{camera}_unknown",
            "device_class": "occupancy",
            "value_template": "{{ 'ON' if 'Unknown' in value_json else 'OFF' }}",
        }
    return configs


class MqttSink:
    """The MQTT sink (edgeface.events.EventSink): one paho client, one sender thread."""

    name = "mqtt"

    def __init__(
        self,
        config: AppConfig,
        cameras: Sequence[str],
        *,
        dropped: Callable[[], None],
        failed: Callable[[], None],
        up: Callable[[bool], None],
    ) -> None:
        """ConfigError naming the variable when the URL's host, the password or the CA file is
        unusable. `dropped`/`failed`/`up` count into the metrics."""
        assert config.events_mqtt_url is not None and config.events_mqtt_password_file is not None
        url = urllib.parse.urlsplit(config.events_mqtt_url)
        self.tls = url.scheme == "mqtts"
        self.host, self.port = str(url.hostname), url.port or (8883 if self.tls else 1883)
        self.prefix = config.events_mqtt_topic
        self.cameras = list(cameras)
        self.discovery = config.events_mqtt_ha_discovery
        self._failed, self._up, self._dropped = failed, up, dropped
        self.outbox = Outbox(dropped)
        self._people: dict[str, str] = {}  # camera -> the retained payload last set
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._warn = Throttled(log)
        self._thread: threading.Thread | None = None
        password = read_credential(config.events_mqtt_password_file, "EVENTS_MQTT_PASSWORD_FILE")
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"edgeface-{socket.gethostname()}-{self.prefix}"[:64]
        )
        client.username_pw_set(config.events_mqtt_username, password)
        if self.tls:
            ca = config.events_mqtt_ca_file
            if ca is not None and not ca.is_file():
                raise ConfigError(f"EVENTS_MQTT_CA_FILE={str(ca)!r} is not a readable file")
            try:
                client.tls_set(ca_certs=None if ca is None else str(ca))
            except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
                raise ConfigError(f"EVENTS_MQTT_CA_FILE={str(ca)!r} is not a PEM CA: {error}") from None
        elif config.events_mqtt_ca_file is not None:
            raise ConfigError(
                "EVENTS_MQTT_CA_FILE is set but EVENTS_MQTT_URL is mqtt://: use mqtts:// for TLS"
            )
        client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN, RECONNECT_MAX)
        client.max_queued_messages_set(OUTBOX_SIZE)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self.client = client

    @property
    def status_topic(self) -> str:
        return f"{self.prefix}/status"

    def events_topic(self, camera: str) -> str:
        return f"{self.prefix}/{camera}/events"

    def people_topic(self, camera: str) -> str:
        return f"{self.prefix}/{camera}/people"

    # -- EventSink ---------------------------------------------------------------------------------
    def send(self, event: Event) -> None:
        self.outbox.put(
            Message(self.events_topic(event.camera), json.dumps(event_payload(event)), retain=False)
        )

    def people(self, camera: str, names: list[str]) -> None:
        payload = json.dumps(names)
        with self._lock:
            self._people[camera] = payload
        self.outbox.put(Message(self.people_topic(camera), payload, retain=True))

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._send_loop, name="events-mqtt", daemon=True)
        self._thread.start()
        log.info(
            "events: MQTT to %s:%d%s, topics %s/...",
            self.host,
            self.port,
            " (TLS)" if self.tls else "",
            self.prefix,
        )

    def stop(self, timeout: float) -> None:
        """Hand paho what waits (the last `left`s), say `offline` (as the will would) once that is
        delivered, and disconnect; without a broker what waits is dropped."""
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        self._stopping.set()
        self.outbox.wake()
        if self._thread is not None:
            self._thread.join(remaining())
        if self._connected.is_set():
            while (item := self.outbox.get(0.0)) is not None:
                self.client.publish(item.topic, item.payload, qos=1, retain=item.retain)
            # In order on one connection: once `offline` is acknowledged, what came before is sent.
            # The connection may go meanwhile (RuntimeError, ValueError): the will says it then.
            with contextlib.suppress(RuntimeError, ValueError):
                goodbye = self.client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
                goodbye.wait_for_publish(remaining())
        self.client.disconnect()
        # paho's thread may sit in a connection attempt (up to its 5 s timeout): not waited past `timeout`.
        stopper = threading.Thread(target=self.client.loop_stop, name="events-mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(remaining())

    # -- paho's thread ------------------------------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._failed()
            self._warn.warning(
                "events: the MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason
            )
            return
        log.info("events: connected to the MQTT broker %s:%d", self.host, self.port)
        client.publish(self.status_topic, ONLINE, qos=1, retain=True)
        if self.discovery:
            for topic, config in discovery_configs(self.prefix, self.cameras).items():
                client.publish(topic, json.dumps(config), qos=1, retain=True)
        with self._lock:
            people = dict(self._people)
        for camera, payload in people.items():
            client.publish(self.people_topic(camera), payload, qos=1, retain=True)
        self._connected.set()
        self._up(True)
        self.outbox.wake()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._connected.clear()
        self._up(False)
        if not self._stopping.is_set():
            self._failed()
            self._warn.warning(
                "events: lost the MQTT broker %s:%d (%s); reconnecting", self.host, self.port, reason
            )

    # -- the sender ----------------------------------------------------------------------------------
    def _send_loop(self) -> None:
        while not self._stopping.is_set():
            if not self._connected.wait(SEND_WAIT):
                if len(self.outbox):
                    self._warn.warning(
                        "events: the MQTT broker %s:%d is not reachable; %d event(s) wait",
                        self.host,
                        self.port,
                        len(self.outbox),
                    )
                continue
            item = self.outbox.get(SEND_WAIT)
            if item is None:
                continue
            # Lost meanwhile (MQTT_ERR_NO_CONN), paho keeps it and sends it on reconnecting, up to
            # OUTBOX_SIZE messages: beyond, it refuses (MQTT_ERR_QUEUE_SIZE) and that one is dropped.
            info = self.client.publish(item.topic, item.payload, qos=1, retain=item.retain)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self._dropped()
