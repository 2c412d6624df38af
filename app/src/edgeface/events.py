"""Events: who appeared on a camera, who was renamed, who left, told to other systems.

Per camera and per face track (edgeface.tracks), an `Announcer` turns what is on screen into
events, debounced by the tracker:

- `appeared`: a face is first named, or is settled as Unknown (tried FIRST_ATTEMPTS times
  without a name);
- `renamed`: the vote changed the name of a face already announced;
- `left`: an announced face is gone for LEAVE_SECONDS (beyond the tracker's own LOST_SECONDS), or
  the app stops (a new model's rollout, a restart): every track ends then.

A face the tracker lost and found again within LEAVE_SECONDS (a turn, a scene cut, a new track
id) continues its announced track: a person standing still for a minute is one `appeared`.

An `EventWatch` thread per camera asks the tracks every TICK_SECONDS and hands each event, and
the names on screen when they change, to the device's `EventSinks` (MQTT: edgeface.events_mqtt,
webhook: edgeface.events_webhook). Each sink sends from its own thread out of a bounded `Outbox`
that drops the oldest when full: a dead broker or a hanging receiver costs a counter and a WARNING
a minute, never a frame.
"""

from __future__ import annotations

import base64
import collections
import datetime
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import cv2
import numpy as np

from edgeface.detector import grown, overlap
from edgeface.liveness import Heartbeat
from edgeface.tracks import FIRST_ATTEMPTS, TrackedFace
from edgeface.values import UNKNOWN, Box

log = logging.getLogger(__name__)

APPEARED, RENAMED, LEFT = "appeared", "renamed", "left"
TICK_SECONDS = 0.2
"""How often a camera's tracks are asked what changed (an event leaves at most this late)."""
LEAVE_SECONDS = 1.2
"""An announced face not on screen for this long has left (the tracker drops a face it has not
found for 1 s: `left` goes out ~2.2 s after the face left the picture)."""
SAME_PLACE = 0.3
"""IoU from which an Unknown face found again is the one that was just there."""
SNAPSHOT_SIZE = 128
"""Longest side (px) of an event's face crop (EVENTS_SNAPSHOTS=on)."""
OUTBOX_SIZE = 1000
"""Events a sink keeps while it cannot send; beyond, the oldest is dropped (and counted)."""
WARN_SECONDS = 60.0


@dataclass(frozen=True)
class Event:
    type: str  # APPEARED | RENAMED | LEFT
    camera: str
    name: str
    known: bool
    track: int
    at: float  # epoch seconds
    model: str | None  # version of the model that named it
    distance: float | None  # the vote's mean distance to `name` (to the nearest person for Unknown)
    snapshot: bytes | None = None  # a small JPEG of the face (EVENTS_SNAPSHOTS=on only)


def event_payload(event: Event) -> dict[str, Any]:
    """The public JSON of an event (MQTT and webhook alike)."""
    payload: dict[str, Any] = {
        "type": event.type,
        "camera": event.camera,
        "name": event.name,
        "known": event.known,
        "track": event.track,
        "at": datetime.datetime.fromtimestamp(event.at, datetime.UTC).isoformat(timespec="milliseconds"),
        "model": event.model,
        "distance": None if event.distance is None else round(event.distance, 4),
    }
    if event.snapshot is not None:
        payload["snapshot"] = base64.b64encode(event.snapshot).decode("ascii")
    return payload


@dataclass
class _Announced:
    track: int  # the event track: the id of the first tracker track it was announced as
    name: str
    distance: float | None
    box: Box
    gone_at: float | None = None  # clock seconds it was last missed, None while on screen


class Announcer:
    """One camera's announced faces; `observe` turns the tracks on screen into events."""

    def __init__(self, camera: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.camera = camera
        self.clock = clock
        self._by_tracker: dict[int, _Announced] = {}  # tracker track id -> what was announced
        self._gone: list[_Announced] = []  # announced, not on screen, not left yet

    def observe(
        self, faces: Sequence[TrackedFace], model: str | None, now: float | None = None
    ) -> list[Event]:
        """Events since the last call, given every face the tracks hold now."""
        now = self.clock() if now is None else now
        wall = time.time()
        events: list[Event] = []
        present = {face.id for face in faces}
        for tracker_id in [key for key in self._by_tracker if key not in present]:
            gone = self._by_tracker.pop(tracker_id)
            gone.gone_at = now
            self._gone.append(gone)
        for face in faces:
            match = face.match
            announced = self._by_tracker.get(face.id)
            if announced is None:
                if not match.known and face.tried < FIRST_ATTEMPTS:
                    continue  # not settled: it may be named by its next attempts
                announced = self._resume(match.name, face.box)
                if announced is None:
                    announced = _Announced(face.id, match.name, match.distance, face.box)
                    events.append(self._event(APPEARED, announced, model, wall))
                self._by_tracker[face.id] = announced
            announced.box = face.box
            if match.name != announced.name:
                announced.name, announced.distance = match.name, match.distance
                events.append(self._event(RENAMED, announced, model, wall))
            announced.distance = match.distance
        still_gone = []
        for gone in self._gone:
            if gone.gone_at is not None and now - gone.gone_at >= LEAVE_SECONDS:
                events.append(self._event(LEFT, gone, model, wall))
            else:
                still_gone.append(gone)
        self._gone = still_gone
        return events

    def farewell(self, model: str | None) -> list[Event]:
        """`left` for every face announced and not left yet (the app stops: every track ends)."""
        wall = time.time()
        ending = [*self._by_tracker.values(), *self._gone]
        self._by_tracker, self._gone = {}, []
        return [self._event(LEFT, item, model, wall) for item in ending]

    def people(self) -> list[str]:
        """The names on screen now (a face just missed counts until it has left), sorted."""
        return sorted(item.name for item in [*self._by_tracker.values(), *self._gone])

    def boxes(self) -> dict[int, Box]:
        """Where each announced face on screen is, by event track."""
        return {item.track: item.box for item in self._by_tracker.values()}

    def _resume(self, name: str, box: Box) -> _Announced | None:
        """A face just gone that this one continues: the same known name, or an Unknown face in
        the same place."""
        for gone in self._gone:
            same = gone.name == name and (name != UNKNOWN or overlap(gone.box, box) >= SAME_PLACE)
            if same:
                self._gone.remove(gone)
                gone.gone_at = None
                return gone
        return None

    def _event(self, kind: str, item: _Announced, model: str | None, wall: float) -> Event:
        return Event(
            kind, self.camera, item.name, item.name != UNKNOWN, item.track, wall, model, item.distance
        )


def face_snapshot(image: np.ndarray, box: Box) -> bytes | None:
    """A small JPEG of the face at `box` in `image` (BGR), with some of its surroundings."""
    height, width = image.shape[:2]
    area = grown(box, 0.3, (height, width))
    crop = image[area.top : area.bottom, area.left : area.right]
    if crop.size == 0:
        return None
    scale = min(1.0, SNAPSHOT_SIZE / max(crop.shape[:2]))
    if scale < 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return encoded.tobytes() if ok else None


class EventSink(Protocol):
    name: str

    def send(self, event: Event) -> None: ...

    def people(self, camera: str, names: list[str]) -> None: ...

    def start(self) -> None: ...

    def stop(self, timeout: float) -> None: ...


class Throttled:
    """A WARNING at most once every WARN_SECONDS, saying how many were held back."""

    def __init__(self, logger: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.clock = logger, clock
        self._last = float("-inf")
        self._held = 0

    def warning(self, message: str, *args: object) -> None:
        now = self.clock()
        if now - self._last < WARN_SECONDS:
            self._held += 1
            return
        held, self._held, self._last = self._held, 0, now
        suffix = f" ({held} more like it in the last minute)" if held else ""
        self.logger.warning(message + suffix, *args)


class Outbox:
    """A bounded queue between the cameras and one sink's sender: `put` never blocks; when full
    it drops the oldest item and calls `dropped`."""

    def __init__(self, dropped: Callable[[], None], size: int = OUTBOX_SIZE) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._size = size
        self._dropped = dropped
        self._ready = threading.Condition()

    def put(self, item: Any) -> None:
        with self._ready:
            if len(self._items) >= self._size:
                self._items.popleft()
                self._dropped()
            self._items.append(item)
            self._ready.notify()

    def get(self, timeout: float) -> Any | None:
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            return self._items.popleft() if self._items else None

    def wake(self) -> None:
        with self._ready:
            self._ready.notify_all()

    def __len__(self) -> int:
        with self._ready:
            return len(self._items)


class EventSinks:
    """Every sink of the device; what the cameras' watches hand events and people to."""

    def __init__(
        self, sinks: Sequence[EventSink], counted: Callable[[Event], None] = lambda event: None
    ) -> None:
        self.sinks = list(sinks)
        self._counted = counted

    def __bool__(self) -> bool:
        return bool(self.sinks)

    def send(self, event: Event) -> None:
        self._counted(event)
        log.info("%s %s on %s (track %d)", event.type, event.name, event.camera, event.track)
        for sink in self.sinks:
            sink.send(event)

    def people(self, camera: str, names: list[str]) -> None:
        for sink in self.sinks:
            sink.people(camera, names)

    def start(self) -> None:
        for sink in self.sinks:
            sink.start()

    def stop(self, timeout: float) -> None:
        """Stop every sink within `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        for sink in self.sinks:
            sink.stop(max(0.0, deadline - time.monotonic()))


class TracksView(Protocol):
    def on_screen(self) -> list[TrackedFace]: ...


class EventWatch:
    """One camera's thread: every TICK_SECONDS, its tracks' changes as events to the sinks."""

    def __init__(
        self,
        camera: str,
        tracks: TracksView,
        sinks: EventSinks,
        *,
        model: Callable[[], str | None],
        frame: Callable[[], np.ndarray | None] | None,
        heartbeat: Heartbeat,
        stopping: threading.Event,
    ) -> None:
        """`frame`: the camera's newest picture, for the events' face crops (None: no crops)."""
        self.announcer = Announcer(camera)
        self.camera, self.tracks, self.sinks = camera, tracks, sinks
        self.model, self.frame = model, frame
        self.heartbeat, self.stopping = heartbeat, stopping
        self._people: list[str] | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            self.heartbeat.beat(TICK_SECONDS + 5.0)
            self.tick()
            self.stopping.wait(TICK_SECONDS)
        # Stopping ends every track: receivers must not keep someone present for ever.
        for event in self.announcer.farewell(self.model()):
            self.sinks.send(event)
        if self._people:
            self.sinks.people(self.camera, [])

    def tick(self) -> None:
        events = self.announcer.observe(self.tracks.on_screen(), self.model())
        if events and self.frame is not None:
            events = self._with_snapshots(events)
        for event in events:
            self.sinks.send(event)
        people = self.announcer.people()
        if people != self._people:
            self._people = people
            self.sinks.people(self.camera, people)

    def _with_snapshots(self, events: list[Event]) -> list[Event]:
        image = self.frame() if self.frame is not None else None
        if image is None:
            return events
        boxes = self.announcer.boxes()
        return [
            replace(event, snapshot=face_snapshot(image, boxes[event.track]))
            if event.type != LEFT and event.track in boxes
            else event
            for event in events
        ]
