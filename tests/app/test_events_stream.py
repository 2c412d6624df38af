"""Events of the two-face stream, sent to a real Mosquitto (TLS, passwords) and a real HTTPS
webhook receiver that checks every signature: one `appeared` per person, retained people, the
status and its last will, Home Assistant discovery; then a dead broker and a hanging receiver that
the video does not notice, and the events that waited delivered once they are back."""

from __future__ import annotations

import base64
import secrets
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeface.config import AppConfig
from edgeface.events_mqtt import MqttSink
from edgeface.pipeline import Pipeline
from edgeface.web import create_app
from servers import (
    AppServer,
    Mosquitto,
    MqttSubscriber,
    Publisher,
    RtmpServer,
    SiteCredentials,
    WebhookReceiver,
    get_json,
    wait_until,
)

pytestmark = pytest.mark.slow

BOTH = ["Barack Obama", "Unknown"]


@dataclass
class Site:
    url: str
    pipeline: Pipeline
    broker: Mosquitto
    receiver: WebhookReceiver
    subscriber: MqttSubscriber
    publisher: Publisher
    credentials: SiteCredentials
    events_password: str


@pytest.fixture(scope="module")
def site(
    rtmp: RtmpServer, video: Path, obama_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    credentials = SiteCredentials()
    directory = tmp_path_factory.mktemp("events")
    app_password, events_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    (directory / "mqtt-password").write_text(app_password + "\n")
    secret = secrets.token_bytes(32)
    (directory / "webhook-secret").write_bytes(secret)
    users = {"edgeface": app_password, "events": events_password}
    with (
        Mosquitto(users, site=credentials) as broker,
        WebhookReceiver(secret, credentials) as receiver,
        Publisher(video, rtmp.url("door")) as publisher,
    ):
        subscriber = MqttSubscriber(broker.port, "events", events_password, credentials.ca_file)
        config = AppConfig(
            model_filename=obama_model,
            video_stream_url=rtmp.url("door"),
            video_processing_fps=5,
            web_auth=False,
            events_mqtt_url=broker.url,
            events_mqtt_username="edgeface",
            events_mqtt_password_file=directory / "mqtt-password",
            events_mqtt_ca_file=credentials.ca_file,
            events_mqtt_ha_discovery=True,
            events_webhook_url=receiver.url,
            events_webhook_secret_file=directory / "webhook-secret",
            events_webhook_ca_file=credentials.ca_file,
            events_snapshots=True,
        )
        pipeline = Pipeline(config).start()
        try:
            with AppServer(create_app(config, pipeline)) as server:
                wait_until(
                    lambda: sorted(event["name"] for event in subscriber.events("door", "appeared")) == BOTH,
                    120,
                    "Obama and the stranger announced",
                )
                yield Site(
                    server.url,
                    pipeline,
                    broker,
                    receiver,
                    subscriber,
                    publisher,
                    credentials,
                    events_password,
                )
        finally:
            pipeline.stop()
            subscriber.close()
            credentials.remove()


def test_each_person_appears_once_on_mqtt_and_on_the_webhook(site: Site) -> None:
    time.sleep(5)  # five more seconds of both faces on screen: nothing new to say
    events = site.subscriber.events("door")
    assert sorted((event["type"], event["name"], event["known"]) for event in events) == [
        ("appeared", "Barack Obama", True),
        ("appeared", "Unknown", False),
    ]
    for event in events:
        assert event["camera"] == "door"
        assert event["model"] == site.pipeline.model.version
        assert isinstance(event["track"], int) and isinstance(event["distance"], float)
        assert base64.b64decode(event["snapshot"])[:2] == b"\xff\xd8"  # EVENTS_SNAPSHOTS=on: a JPEG
    status = get_json(f"{site.url}/api/status")
    shown = {face["name"]: face for face in status["detections"]}
    obama = next(event for event in events if event["name"] == "Barack Obama")
    assert abs(obama["distance"] - shown["Barack Obama"]["distance"]) < 0.1
    # The receiver kept only correctly signed bodies: the same two events.
    wait_until(lambda: len(site.receiver.received) == 2, 10, "both events at the webhook")
    assert site.receiver.refused == 0
    assert sorted((event["type"], event["track"]) for event in site.receiver.received) == sorted(
        (event["type"], event["track"]) for event in events
    )


def test_people_status_and_discovery_are_retained_for_a_late_subscriber(site: Site) -> None:
    late = MqttSubscriber(site.broker.port, "events", site.events_password, site.credentials.ca_file)
    try:
        wait_until(
            lambda: late.on("edgeface/door/people") and late.on("edgeface/status"), 10, "retained topics"
        )
        (people,) = late.on("edgeface/door/people")
        assert people.retained and people.json() == BOTH
        assert [message.payload for message in late.on("edgeface/status")] == ["online"]
        wait_until(
            lambda: len([m for m in late.messages if m.topic.startswith("homeassistant/")]) == 2, 10, "HA"
        )
        sensor = late.on("homeassistant/sensor/edgeface_door/people/config")[0].json()
        assert (
            sensor["state_topic"] == "edgeface/door/people"
            and sensor["availability_topic"] == "edgeface/status"
        )
        assert late.on("homeassistant/binary_sensor/edgeface_door/unknown/config")[0].retained
    finally:
        late.close()


def test_a_connection_lost_without_goodbye_says_offline_by_the_will_then_online(site: Site) -> None:
    sink = next(sink for sink in site.pipeline.events.sinks if isinstance(sink, MqttSink))
    before = len(site.subscriber.on("edgeface/status"))
    connection = sink.client.socket()
    assert connection is not None
    connection.close()  # as a crash or a pulled cable would end it: no DISCONNECT
    wait_until(
        lambda: (
            [m.payload for m in site.subscriber.on("edgeface/status")[before:]][:2] == ["offline", "online"]
        ),
        30,
        "the will, then the device back online",
    )


def test_a_dead_broker_and_a_hanging_webhook_cost_the_video_nothing_and_the_events_wait(site: Site) -> None:
    def recognised() -> int:
        return int(get_json(f"{site.url}/api/status")["recognition"]["frames"])

    site.broker.stop()
    site.receiver.hang.set()
    try:
        frames = recognised()
        wait_until(lambda: recognised() > frames + 5, 30, "recognition going on with both sinks dead")
        site.publisher.kill()  # both faces leave: their `left` must wait for the sinks
        wait_until(
            lambda: (
                'edgeface_events_total{camera="door",type="left"} 2.0' in urllib_text(f"{site.url}/metrics")
            ),
            30,
            "both `left` made while nothing can take them",
        )
        health = get_json(f"{site.url}/healthz")
        assert health["status"] == "ok"
        metrics = urllib_text(f"{site.url}/metrics")
        assert 'edgeface_event_failures_total{sink="mqtt"}' in metrics
        assert 'edgeface_event_sink_up{sink="mqtt"} 0.0' in metrics
    finally:
        site.broker.start()  # the same port, no retained messages left
        site.receiver.hang.clear()
    wait_until(
        lambda: len(site.subscriber.events("door", "left")) == 2,
        30,
        "the two `left` sent once the broker is back",
    )
    assert sorted(event["name"] for event in site.subscriber.events("door", "left")) == BOTH
    wait_until(
        lambda: sorted(e["name"] for e in site.receiver.received if e["type"] == "left") == BOTH,
        40,
        "the two `left` at the webhook once it answers again",
    )
    wait_until(
        lambda: [m.json() for m in site.subscriber.on("edgeface/door/people")][-1:] == [[]],
        10,
        "nobody on screen",
    )


def urllib_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def test_a_stopping_app_says_who_left_then_offline(site: Site) -> None:
    site.publisher.start()
    back = time.time()
    wait_until(
        lambda: (
            sorted(e["name"] for e in site.subscriber.events("door", "appeared") if e["received"] > back)
            == BOTH
        ),
        60,
        "both announced again",
    )
    stopping = time.time()
    site.pipeline.stop()
    wait_until(
        lambda: (
            sorted(e["name"] for e in site.subscriber.events("door", "left") if e["received"] > stopping)
            == BOTH
        ),
        10,
        "`left` for both, sent as the app stopped",
    )
    last_status = site.subscriber.on("edgeface/status")[-1]
    assert last_status.payload == "offline" and last_status.at > stopping
