"""Events from the tracks (edgeface.events.Announcer), their JSON, the event settings, the outbox."""

from __future__ import annotations

import datetime
import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from edgeface.config import AppConfig, ConfigError, load_config
from edgeface.events import (
    LEAVE_SECONDS,
    Announcer,
    Event,
    EventSinks,
    EventWatch,
    Outbox,
    event_payload,
)
from edgeface.events_mqtt import discovery_configs
from edgeface.events_webhook import signature
from edgeface.liveness import Liveness
from edgeface.pipeline import Pipeline
from edgeface.tracks import FIRST_ATTEMPTS, TrackedFace
from edgeface.values import UNKNOWN, Box, Match
from servers import wait_until

OBAMA_BOX = Box(200, 340, 290, 250)
STRANGER_BOX = Box(330, 880, 392, 820)


def obama(track: int = 1, tried: int = 1, box: Box = OBAMA_BOX) -> TrackedFace:
    return TrackedFace(track, box, Match("Barack Obama", 0.41, tried), tried)


def stranger(track: int = 2, tried: int = 1, name: str = UNKNOWN, box: Box = STRANGER_BOX) -> TrackedFace:
    return TrackedFace(track, box, Match(name, 0.72, tried), tried)


def kinds(events: list[Event]) -> list[tuple[str, str, int]]:
    return [(event.type, event.name, event.track) for event in events]


def test_a_named_face_appears_once_however_long_it_stays_and_leaves_after_the_grace() -> None:
    announcer = Announcer("door")
    assert kinds(announcer.observe([obama()], "2412051200", now=0.0)) == [("appeared", "Barack Obama", 1)]
    for step in range(1, 3000):  # ten minutes of ticks
        assert announcer.observe([obama(tried=step)], "2412051200", now=step * 0.2) == []
    assert announcer.people() == ["Barack Obama"]
    assert announcer.observe([], "2412051200", now=600.0) == []  # just missed: not gone yet
    assert announcer.people() == ["Barack Obama"]
    left = announcer.observe([], "2412051200", now=600.0 + LEAVE_SECONDS)
    assert kinds(left) == [("left", "Barack Obama", 1)]
    assert left[0].camera == "door" and left[0].known and left[0].model == "2412051200"
    assert announcer.people() == []


def test_an_unknown_face_is_announced_once_settled_and_renamed_when_the_vote_names_it() -> None:
    announcer = Announcer("door")
    for tried in range(1, FIRST_ATTEMPTS):
        assert announcer.observe([stranger(tried=tried)], None, now=tried * 0.1) == []
    assert kinds(announcer.observe([stranger(tried=FIRST_ATTEMPTS)], None, now=1.0)) == [
        ("appeared", UNKNOWN, 2)
    ]
    renamed = announcer.observe([stranger(tried=5, name="Joe Biden")], None, now=2.0)
    assert kinds(renamed) == [("renamed", "Joe Biden", 2)]
    assert renamed[0].known


def test_a_face_lost_and_found_again_under_a_new_track_continues_its_announcement() -> None:
    announcer = Announcer("door")
    announcer.observe([obama(track=1), stranger(track=2, tried=FIRST_ATTEMPTS)], None, now=0.0)
    assert announcer.observe([], None, now=1.0) == []  # a scene cut: every track dropped
    moved = Box(OBAMA_BOX.top + 5, OBAMA_BOX.right + 5, OBAMA_BOX.bottom + 5, OBAMA_BOX.left + 5)
    again = [obama(track=7, box=moved), stranger(track=8, tried=FIRST_ATTEMPTS)]
    assert announcer.observe(again, None, now=1.5) == []
    assert announcer.people() == ["Barack Obama", UNKNOWN]
    # Another stranger elsewhere is someone else.
    elsewhere = Box(10, 60, 60, 10)
    assert kinds(announcer.observe([*again, stranger(9, FIRST_ATTEMPTS, box=elsewhere)], None, now=2.0)) == [
        ("appeared", UNKNOWN, 9)
    ]
    # Left under the track it was first announced as.
    assert announcer.observe([], None, now=2.2) == []
    assert kinds(announcer.observe([], None, now=2.2 + LEAVE_SECONDS)) == [
        ("left", "Barack Obama", 1),
        ("left", UNKNOWN, 2),
        ("left", UNKNOWN, 9),
    ]


def test_the_payload_has_the_contract_fields_and_no_image_unless_asked() -> None:
    event = Event("appeared", "door", "Barack Obama", True, 4, 1733400000.25, "2412051200", 0.41234)
    payload = event_payload(event)
    assert payload == {
        "type": "appeared",
        "camera": "door",
        "name": "Barack Obama",
        "known": True,
        "track": 4,
        "at": "2024-12-05T12:00:00.250+00:00",
        "model": "2412051200",
        "distance": 0.4123,
    }
    assert datetime.datetime.fromisoformat(payload["at"]).tzinfo is not None
    with_crop = event_payload(
        Event("appeared", "door", UNKNOWN, False, 5, 0.0, None, None, snapshot=b"\xff\xd8")
    )
    assert with_crop["snapshot"] == "/9g="


def test_a_full_outbox_drops_the_oldest_and_counts_it() -> None:
    dropped: list[int] = []
    outbox = Outbox(lambda: dropped.append(1), size=3)
    for number in range(5):
        outbox.put(number)
    assert [outbox.get(0) for _ in range(3)] == [2, 3, 4]
    assert len(dropped) == 2
    assert outbox.get(0) is None


class Kept:
    """A sink that keeps what it is given."""

    name = "kept"

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.seen: list[tuple[str, list[str]]] = []

    def send(self, event: Event) -> None:
        self.events.append(event)

    def people(self, camera: str, names: list[str]) -> None:
        self.seen.append((camera, names))

    def start(self) -> None: ...

    def stop(self, timeout: float) -> None: ...


def test_the_sinks_get_every_event_and_the_counter_counts_it() -> None:
    kept, counted = Kept(), list[Event]()
    sinks = EventSinks([kept], counted=counted.append)
    event = Event("left", "hall", UNKNOWN, False, 3, 0.0, None, None)
    sinks.send(event)
    sinks.people("hall", [])
    assert kept.events == [event] and counted == [event] and kept.seen == [("hall", [])]
    assert not EventSinks([])


def test_a_stopping_app_says_everyone_announced_has_left_and_nobody_is_on_screen() -> None:
    class Tracks:
        def on_screen(self) -> list[TrackedFace]:
            return [obama(), stranger(tried=1)]  # the stranger is not settled: never announced

    kept, stopping = Kept(), threading.Event()
    watch = EventWatch(
        "door",
        Tracks(),
        EventSinks([kept]),
        model=lambda: "2412051200",
        frame=None,
        heartbeat=Liveness().heartbeat("events"),
        stopping=stopping,
    )
    thread = threading.Thread(target=watch.run)
    thread.start()
    wait_until(lambda: kept.seen, 5, "the first tick")
    stopping.set()
    thread.join(5)
    assert kinds(kept.events) == [("appeared", "Barack Obama", 1), ("left", "Barack Obama", 1)]
    assert kept.seen == [("door", ["Barack Obama"]), ("door", [])]


def test_home_assistant_discovery_gives_each_camera_a_people_sensor_and_an_unknown_binary_sensor() -> None:
    configs = discovery_configs("site/edgeface", ["door", "hall"])
    assert sorted(configs) == [
        "homeassistant/binary_sensor/site_edgeface_door/unknown/config",
        "homeassistant/binary_sensor/site_edgeface_hall/unknown/config",
        "homeassistant/sensor/site_edgeface_door/people/config",
        "homeassistant/sensor/site_edgeface_hall/people/config",
    ]
    door = configs["homeassistant/sensor/site_edgeface_door/people/config"]
    assert door["state_topic"] == "site/edgeface/door/people"
    assert door["availability_topic"] == "site/edgeface/status"
    assert len({config["unique_id"] for config in configs.values()}) == 4
    json.dumps(configs)  # JSON as published


def test_the_signature_is_the_hmac_sha256_of_the_body() -> None:
    # RFC 4231 test case 2.
    assert signature(b"Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"EVENTS_MQTT_URL": "tcp://broker:1883"}, "EVENTS_MQTT_URL"),
        ({"EVENTS_MQTT_URL": "mqtt://edge:secret@broker:1883"}, "EVENTS_MQTT_URL"),
        ({"EVENTS_MQTT_URL": "mqtt://broker:99999"}, "EVENTS_MQTT_URL"),
        ({"EVENTS_MQTT_URL": "mqtts://broker"}, "EVENTS_MQTT_USERNAME and EVENTS_MQTT_PASSWORD_FILE"),
        ({"EVENTS_MQTT_USERNAME": "edge"}, "EVENTS_MQTT_USERNAME is set but EVENTS_MQTT_URL"),
        ({"EVENTS_MQTT_TOPIC": "edge/#"}, "EVENTS_MQTT_TOPIC"),
        ({"EVENTS_MQTT_TOPIC": "/edge"}, "EVENTS_MQTT_TOPIC"),
        ({"EVENTS_MQTT_HA_DISCOVERY": "maybe"}, "EVENTS_MQTT_HA_DISCOVERY"),
        ({"EVENTS_WEBHOOK_URL": "ftp://hooks.example"}, "EVENTS_WEBHOOK_URL"),
        ({"EVENTS_WEBHOOK_URL": "https://hooks.example/x"}, "EVENTS_WEBHOOK_SECRET_FILE"),
        ({"EVENTS_WEBHOOK_CA_FILE": "/ca.crt"}, "EVENTS_WEBHOOK_CA_FILE is set but EVENTS_WEBHOOK_URL"),
        ({"EVENTS_SNAPSHOTS": "sometimes"}, "EVENTS_SNAPSHOTS"),
    ],
)
def test_a_bad_event_setting_is_refused_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("(", r"\(")):
        load_config(environ)


def test_the_event_settings_are_read(tmp_path: Path) -> None:
    password = tmp_path / "password"
    config = load_config(
        {
            "EVENTS_MQTT_URL": "mqtts://broker.lan:8883",
            "EVENTS_MQTT_USERNAME": "edgeface",
            "EVENTS_MQTT_PASSWORD_FILE": str(password),
            "EVENTS_MQTT_TOPIC": "site/door",
            "EVENTS_MQTT_HA_DISCOVERY": "on",
            "EVENTS_SNAPSHOTS": "on",
        }
    )
    assert config.events_mqtt_url == "mqtts://broker.lan:8883"
    assert config.events_mqtt_password_file == password
    assert config.events_mqtt_topic == "site/door"
    assert config.events_mqtt_ha_discovery and config.events_snapshots
    assert load_config({}).events_mqtt_topic == "edgeface"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"events_mqtt_password_file": "missing"}, "EVENTS_MQTT_PASSWORD_FILE='.*missing' cannot be read"),
        ({"events_mqtt_password_file": "empty"}, "EVENTS_MQTT_PASSWORD_FILE='.*empty' is empty"),
        ({"events_mqtt_ca_file": "missing"}, "EVENTS_MQTT_CA_FILE='.*missing' is not a readable file"),
        ({"events_mqtt_ca_file": "empty"}, "EVENTS_MQTT_CA_FILE='.*empty' is not a PEM CA"),
        ({"events_webhook_secret_file": "short"}, "EVENTS_WEBHOOK_SECRET_FILE='.*short' holds 5 bytes"),
        ({"events_webhook_ca_file": "empty"}, "EVENTS_WEBHOOK_CA_FILE='.*empty' is not a readable PEM CA"),
    ],
)
def test_an_unusable_credential_file_stops_the_start_naming_the_variable(
    tmp_path: Path, settings: dict[str, str], named: str
) -> None:
    (tmp_path / "password").write_text("s3cret\n")
    (tmp_path / "secret").write_text("0123456789abcdef0123\n")
    (tmp_path / "empty").write_text("")
    (tmp_path / "short").write_text("short\n")
    base = {
        "events_mqtt_url": "mqtts://127.0.0.1:1",
        "events_mqtt_username": "edgeface",
        "events_mqtt_password_file": "password",
        "events_webhook_url": "https://127.0.0.1:1/hook",
        "events_webhook_secret_file": "secret",
    }
    values = {
        key: tmp_path / value if key.endswith("_file") else value
        for key, value in {**base, **settings}.items()
    }
    config = replace(AppConfig(), **values)
    with pytest.raises(ConfigError, match=named):
        Pipeline(config)
