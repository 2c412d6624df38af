"""The people store: training photos, forget requests and the audit trail, in the site's model store.

Layout in the models bucket (retrain.yml reads the same keys: a contract):

    photos/<name>/<sha256>.jpg   a training photo of <name>; <sha256> is the hex sha256 of its bytes,
                                 which the trained model's metadata records per photo
    forget/<name>.json           <name> was forgotten: {"name", "at", "by", "photos": [sha256, ...]};
                                 retrain keeps <name> out of every model while it exists and drops
                                 the encodings of those photos from its cache; enrolling <name>
                                 again removes it
    audit/<YYYY>/<MM>/<DD>/<stamp>-<id>.json  who enrolled or forgot whom, when (never an image)

A face image reaches the store only through an operator's explicit action (`add_photo`); nothing
here reads the video. What is pending is told by comparing the store with the model in service:
a photo whose sha256 the model was not trained on is pending, and so is a forgotten person the
model still knows.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from edgeface.config import AppConfig, ConfigError, read_credential
from edgeface.s3 import S3Bucket, S3Location

log = logging.getLogger(__name__)

PHOTOS, FORGET, AUDIT = "photos/", "forget/", "audit/"
NAME = re.compile(r"^(?![. ])[\w .'-]{1,64}(?<! )$")
"""A person's name: 1-64 letters (any script), digits, spaces, . ' - _; not starting with . or a
space, not ending with a space (it is a folder name in the store and on the controller)."""
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PeopleError(Exception):
    """An operation refused; `status` is the HTTP answer and the message says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def person_name(text: object) -> str:
    """`text` as a person's name (trimmed, Unicode NFC); PeopleError 400 naming what is wrong."""
    if not isinstance(text, str):
        raise PeopleError(400, 'give the name as a string: {"name": "Ada Lovelace"}')
    name = unicodedata.normalize("NFC", text.strip())
    if name.lower() == "unknown" or not NAME.match(name):
        raise PeopleError(
            400,
            f"{name!r} is not a name: 1-64 letters, digits, spaces and . ' - _, not starting with . "
            "(and not 'Unknown')",
        )
    return name


@dataclass(frozen=True)
class Person:
    """One person as the people page shows them."""

    name: str
    photos: tuple[str, ...]  # sha256 of each stored photo
    in_model: bool  # the model in service knows them
    pending: int  # stored photos the model in service was not trained on
    forgotten: dict[str, Any] | None  # the forget record, while one exists

    @property
    def forget_pending(self) -> bool:
        """Forgotten, but the model in service still knows them."""
        return self.forgotten is not None and self.in_model

    @property
    def has_pending(self) -> bool:
        """The next retrain changes something for them."""
        return bool(self.pending) or self.forget_pending

    def as_json(self) -> dict[str, Any]:
        forgotten = None
        if self.forgotten is not None:
            forgotten = {
                "at": self.forgotten.get("at"),
                "by": self.forgotten.get("by"),
                "done": not self.in_model,  # the model in service no longer knows them
            }
        return {
            "name": self.name,
            "photos": len(self.photos),
            "in_model": self.in_model,
            "pending": {"photos": self.pending, "forget": self.forget_pending},
            "forgotten": forgotten,
        }


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PeopleStore:
    """The people of one bucket (see the module docstring); every call is one or a few requests."""

    def __init__(self, bucket: S3Bucket, clock: Callable[[], float] = time.time) -> None:
        self.bucket = bucket
        self.clock = clock

    def describe(self) -> str:
        return self.bucket.describe()

    def photos(self) -> dict[str, list[str]]:
        """Each stored person's photos: {name: [sha256, ...]}."""
        found: dict[str, list[str]] = {}
        for key in self.bucket.keys(PHOTOS):
            name, slash, file = key.removeprefix(PHOTOS).partition("/")
            sha, dot, suffix = file.partition(".")
            if slash and dot and SHA256.match(sha) and suffix == "jpg" and "/" not in file:
                found.setdefault(name, []).append(sha)
        return found

    def forgotten(self) -> dict[str, dict[str, Any]]:
        """Each forget record by name."""
        names = (key.removeprefix(FORGET).removesuffix(".json") for key in self.bucket.keys(FORGET))
        return {name: self.forget_record(name) or {} for name in names}

    def forget_record(self, name: str) -> dict[str, Any] | None:
        """The forget record of `name` ({} when unreadable), None when there is none."""
        body = self.bucket.get(f"{FORGET}{name}.json")
        if body is None:
            return None
        try:
            record = json.loads(body)
        except ValueError:
            return {}
        return record if isinstance(record, dict) else {}

    def people(self, known: Collection[str], trained: Collection[str]) -> list[Person]:
        """Everyone stored, forgotten or `known` to the model in service (trained on the photos
        whose sha256 are `trained`), by name."""
        photos, forgotten = self.photos(), self.forgotten()
        trained_set = set(trained)
        names = sorted(set(photos) | set(forgotten) | set(known), key=str.casefold)
        return [
            Person(
                name,
                tuple(photos.get(name, ())),
                name in known,
                sum(sha not in trained_set for sha in photos.get(name, ())),
                forgotten.get(name),
            )
            for name in names
        ]

    def add_photo(self, name: str, jpeg: bytes, who: str, how: str, **detail: Any) -> str:
        """Store `jpeg` as a training photo of `name` (`how`: enrolled from a track, uploaded),
        end a forget record of that name, and audit it; its sha256. PeopleError 409 when the
        very same photo is stored already."""
        sha = sha256_hex(jpeg)
        for other, shas in self.photos().items():
            if sha in shas:
                raise PeopleError(409, f"this photo is stored already, as a photo of {other}")
        self.bucket.put(f"{PHOTOS}{name}/{sha}.jpg", jpeg, "image/jpeg")
        self.bucket.delete(f"{FORGET}{name}.json")
        self.audit(how, who, name, photo=sha, **detail)
        return sha

    def forget(self, name: str, who: str, known: Collection[str]) -> int:
        """Remove every stored photo of `name` and record that they are forgotten (so no model
        knows them again); the number of photos removed. PeopleError 404 for a name neither
        stored nor known to the model in service."""
        shas = self.photos().get(name, [])
        earlier = self.forget_record(name)
        if not shas and name not in known and earlier is None:
            raise PeopleError(404, f"nobody named {name!r} is stored or known to the model")
        for sha in shas:
            self.bucket.delete(f"{PHOTOS}{name}/{sha}.jpg")
        removed = sorted({*shas, *((earlier or {}).get("photos") or [])})
        record = {"name": name, "at": self._now(), "by": who, "photos": removed}
        self.bucket.put(f"{FORGET}{name}.json", json.dumps(record).encode(), "application/json")
        self.audit("forgot", who, name, photos=len(shas))
        return len(shas)

    def audit(self, action: str, who: str, name: str, **detail: Any) -> None:
        """One audit record (never an image) in the store, and the same line in the log."""
        at = self._now()
        record = {"at": at, "action": action, "by": who, "name": name, **detail}
        stamp = at.replace("-", "").replace(":", "")
        key = f"{AUDIT}{at[:4]}/{at[5:7]}/{at[8:10]}/{stamp}-{secrets.token_hex(4)}.json"
        self.bucket.put(key, json.dumps(record, ensure_ascii=False).encode(), "application/json")
        log.info("audit: %s", json.dumps(record, ensure_ascii=False, sort_keys=True))

    def _now(self) -> str:
        moment = datetime.datetime.fromtimestamp(self.clock(), datetime.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def open_people_store(config: AppConfig) -> PeopleStore | None:
    """The people store of `config` (None without PEOPLE_S3_URL); ConfigError naming the variable
    when a key file cannot be read."""
    access, secret = config.people_s3_access_key_file, config.people_s3_secret_key_file
    if config.people_s3_url is None or access is None or secret is None:  # load_config: all or none
        return None
    location = S3Location(
        config.people_s3_url,
        config.people_s3_bucket,
        config.people_s3_region,
        read_credential(access, "PEOPLE_S3_ACCESS_KEY_FILE"),
        read_credential(secret, "PEOPLE_S3_SECRET_KEY_FILE"),
        config.people_s3_ca_file,
    )
    if location.ca_file is not None and not location.ca_file.is_file():
        raise ConfigError(f"PEOPLE_S3_CA_FILE={str(location.ca_file)!r} is not a readable file")
    return PeopleStore(S3Bucket(location))
