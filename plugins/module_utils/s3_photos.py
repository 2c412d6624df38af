# SPDX-License-Identifier: Apache-2.0
"""The people's photos in the model store, as retrain reads them: a contract with the web app.

Layout in the models bucket (the web app writes photos/ and forget/, retrain writes sources.json):

    photos/<name>/<sha256>.jpg   one training photo of <name> (the name verbatim; <sha256> is the
                                 lowercase hex sha256 of the object's bytes)
    forget/<name>.json           <name> was forgotten: {"name", "at", "by", "photos": [sha256, ...]};
                                 while it exists no new model knows <name>, and the encodings of
                                 those photos leave the controller's cache
    <version>/sources.json       what a version was trained from: {"photos": [keys trained],
                                 "forgotten": [names with a marker], "digest": "sha256:<hex>"}

The digest is the sha256 of every key under photos/ and forget/, sorted, each followed by a
newline (an empty store's is the sha256 of nothing): a version whose sources.json holds the
store's digest has every photo and every forget of the store, and nothing is pending.

The training folder retrain gives `edgeface train` holds the store's photos unchanged as
<name>/<sha256>.jpg (the trainer names the person after the folder and records each photo's
sha256), and, when the user gives a folder of their own, links to its entries (or, for a folder
of the seed's metadata.yaml, one metadata.yaml listing both): a name in both is the folder's,
and a forgotten name is in neither.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.edgeai.appliance.plugins.module_utils.s3_versions import (
    NO_SUCH_KEY,
    NOT_FOUND,
    BotoCoreError,
    ClientError,
    PublishError,
    error_code,
    explain,
)

try:
    import yaml
except ImportError:  # Ansible's own dependency: always there where the module runs on the controller
    yaml = None

PHOTOS, FORGET, SOURCES = "photos/", "forget/", "sources.json"
# The web app's rule for a person's name: 1-64 letters (any script), digits, spaces, . ' - _, not
# starting with . or a space (so never a path of its own), not ending with a space.
NAME = re.compile(r"^(?![. ])[\w .'-]{1,64}(?<! )$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# What `edgeface train` reads in a folder: Name.jpg|.jpeg|.png, Name/ folders, or metadata.yaml.
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
YAML_NAMES = ("metadata.yaml", "metadata.yml")
YAML_SUFFIXES = (".yaml", ".yml")


def digest_of(keys: list[str]) -> str:
    """The store's digest: sha256 of the sorted keys, each followed by a newline."""
    text = "".join(f"{key}\n" for key in sorted(keys))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


EMPTY_DIGEST = digest_of([])


def same_name(name: str) -> str:
    """A name as compared across the store and a folder (the app stores names in Unicode NFC; a
    file system may hand back another form)."""
    return unicodedata.normalize("NFC", name)


@dataclass(frozen=True)
class StorePhoto:
    key: str
    name: str
    sha256: str


@dataclass
class Store:
    """What the store holds under photos/ and forget/."""

    keys: list[str] = field(default_factory=list)  # every key, sorted: the digest's input
    photos: list[StorePhoto] = field(default_factory=list)  # the keys of the layout
    forgotten: dict[str, list[str]] = field(default_factory=dict)  # name -> its marker's sha256s
    skipped: list[dict[str, str]] = field(default_factory=list)  # keys not of the layout, and why

    @property
    def digest(self) -> str:
        return digest_of(self.keys)

    @property
    def people(self) -> list[str]:
        return sorted({photo.name for photo in self.photos})


@dataclass
class TrainingSet:
    """What went into the training folder (or would, in check mode)."""

    trained: list[str] = field(default_factory=list)  # store keys, as <name>/<sha256>.jpg
    linked: list[str] = field(default_factory=list)  # the folder's entries
    excluded: list[str] = field(default_factory=list)  # the folder's names that are forgotten
    overridden: list[str] = field(default_factory=list)  # store names the folder has too
    skipped: list[dict[str, str]] = field(default_factory=list)  # store photos left out, and why


def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under `prefix`; a missing bucket holds none (publishing makes it, or says it is missing)."""
    keys: list[str] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
    except (ClientError, BotoCoreError) as error:
        if error_code(error) in NOT_FOUND:
            return []
        raise explain(error, f"listing s3://{bucket}/{prefix}") from None
    return keys


def read_object(client: Any, bucket: str, key: str) -> bytes | None:
    """The object's bytes; None when there is no such object."""
    try:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as error:
        if error_code(error) in NO_SUCH_KEY | NOT_FOUND:
            return None
        raise explain(error, f"reading s3://{bucket}/{key}") from None
    return body


def marker_photos(body: bytes | None) -> list[str] | None:
    """The sha256s a forget marker lists; None when it cannot be read."""
    try:
        record = json.loads(body or b"")
    except ValueError:
        return None
    photos = record.get("photos") if isinstance(record, dict) else None
    if not isinstance(photos, list):
        return None
    return sorted({sha for sha in photos if isinstance(sha, str) and SHA256.match(sha)})


def read_store(client: Any, bucket: str, markers: bool = False) -> Store:
    """The keys under photos/ and forget/ sorted into photos, forgotten names and the rest; with
    `markers`, each forget marker is read for the photos it lists."""
    store = Store(keys=sorted(list_keys(client, bucket, PHOTOS) + list_keys(client, bucket, FORGET)))
    for key in store.keys:
        if key.startswith(PHOTOS):
            name, file = [*key[len(PHOTOS) :].split("/", 1), ""][:2]
            if not NAME.match(name):
                store.skipped.append({"key": key, "reason": "not photos/<a person's name>/<sha256>.jpg"})
            elif not file.endswith(".jpg") or not SHA256.match(file[: -len(".jpg")]):
                store.skipped.append({"key": key, "reason": "not photos/<name>/<lowercase hex sha256>.jpg"})
            else:
                store.photos.append(StorePhoto(key, name, file[: -len(".jpg")]))
            continue
        name = key[len(FORGET) :]
        if not name.endswith(".json") or not NAME.match(name[: -len(".json")]):
            store.skipped.append({"key": key, "reason": "not forget/<a person's name>.json"})
            continue
        name = name[: -len(".json")]
        listed = marker_photos(read_object(client, bucket, key)) if markers else []
        if listed is None:
            store.skipped.append(
                {"key": key, "reason": "unreadable marker: the name is left out, its encodings stay cached"}
            )
        store.forgotten[name] = listed or []
    return store


def version_digest(client: Any, bucket: str, version: str) -> str | None:
    """The digest a version was trained at (its sources.json); a version without one (made before
    sources.json, or the initial empty model) was trained at the empty store's. None when the
    file cannot be read: nothing can be said, so the store counts as pending."""
    body = read_object(client, bucket, f"{version}/{SOURCES}")
    if body is None:
        return EMPTY_DIGEST
    try:
        digest = json.loads(body).get("digest")
    except (ValueError, AttributeError):
        return None
    return digest if isinstance(digest, str) else None


@dataclass
class Folder:
    """The user's photos as `edgeface train` reads them: entries Name.jpg|.jpeg|.png and Name/
    (`entries`: [(person, absolute path)]), or the faces of the seed's metadata.yaml (`yaml_file`,
    `yaml_faces`; `entries`: [(person, its index in faces)])."""

    entries: list[tuple[str, str]] = field(default_factory=list)
    yaml_file: str = ""
    yaml_faces: list[Any] = field(default_factory=list)


def read_folder(photos_dir: str) -> Folder:
    source = os.path.abspath(photos_dir)
    if os.path.isfile(source) and source.lower().endswith(YAML_SUFFIXES):
        return read_yaml(source)
    if not os.path.isdir(source):
        raise PublishError("failed", f"{photos_dir}: not a folder of photos nor a metadata.yaml")
    for name in YAML_NAMES:
        if os.path.isfile(os.path.join(source, name)):
            return read_yaml(os.path.join(source, name))
    folder = Folder()
    for entry in sorted(os.listdir(source)):
        path = os.path.join(source, entry)
        if entry.startswith("."):
            continue
        if os.path.isdir(path):
            folder.entries.append((entry, path))
        elif entry.lower().endswith(PHOTO_SUFFIXES):
            folder.entries.append((os.path.splitext(entry)[0], path))
    return folder


def read_yaml(path: str) -> Folder:
    if yaml is None:
        raise PublishError("failed", f"{path}: reading a training YAML needs PyYAML where the module runs")
    try:
        with open(path, encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise PublishError("failed", f"{path}: cannot read the training YAML ({error})") from None
    faces = document.get("faces") if isinstance(document, dict) else None
    if not isinstance(faces, list):
        raise PublishError("failed", f"{path}: expected `faces: [{{name, image}}, ...]`")
    entries = [
        (str(face.get("name", "")).strip() if isinstance(face, dict) else "", str(index))
        for index, face in enumerate(faces)
    ]
    return Folder(entries=entries, yaml_file=path, yaml_faces=faces)


def write_private(path: str, data: bytes, mode: int = 0o600) -> None:
    """A new file only its owner reads (a face image, or what names the people)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)


def assemble(
    client: Any, bucket: str, store: Store, dest: str, *, photos_dir: str = "", check_mode: bool = False
) -> TrainingSet:
    """Make `dest` the training folder (afresh, 0700): the folder's people (linked) and the store's
    photos (downloaded, each checked against its sha256), a forgotten name in neither, a name of
    both the folder's only."""
    forgotten = {same_name(name) for name in store.forgotten}
    folder = read_folder(photos_dir) if photos_dir else Folder()
    chosen = TrainingSet()
    if not check_mode:
        if os.path.lexists(dest):
            shutil.rmtree(dest)
        os.makedirs(dest, mode=0o700)
        os.chmod(dest, 0o700)
    kept_faces = [] if folder.yaml_file else None
    for name, where in folder.entries:
        if same_name(name) in forgotten:
            chosen.excluded.append(name)
        elif kept_faces is not None:
            face = folder.yaml_faces[int(where)]
            if isinstance(face, dict) and isinstance(face.get("image"), str):
                face = {**face, "image": os.path.join(os.path.dirname(folder.yaml_file), face["image"])}
            kept_faces.append(face)
            chosen.linked.append(f"{os.path.basename(folder.yaml_file)}: faces[{where}]")
        else:
            if not check_mode:
                os.symlink(where, os.path.join(dest, os.path.basename(where)))
            chosen.linked.append(os.path.basename(where))
    folder_names = {same_name(entry[0]) for entry in folder.entries}
    for photo in store.photos:
        person = same_name(photo.name)
        if person in forgotten:
            continue
        if person in folder_names:
            if photo.name not in chosen.overridden:
                chosen.overridden.append(photo.name)
            continue
        if check_mode or download(client, bucket, photo, dest, chosen):
            chosen.trained.append(photo.key)
    if kept_faces is not None and not check_mode:
        kept_faces += [{"name": key.split("/")[1], "image": key[len(PHOTOS) :]} for key in chosen.trained]
        text = yaml.safe_dump({"faces": kept_faces}, allow_unicode=True, sort_keys=False)
        write_private(os.path.join(dest, "metadata.yaml"), text.encode("utf-8"))
    return chosen


def download(client: Any, bucket: str, photo: StorePhoto, dest: str, chosen: TrainingSet) -> bool:
    """`photo` into dest/<name>/<sha256>.jpg (0600 in 0700), unchanged; False, with the reason in
    `chosen.skipped`, when it cannot be used."""
    folder = os.path.join(dest, photo.name)
    reason = ""
    if os.path.islink(folder) or (os.path.lexists(folder) and not os.path.isdir(folder)):
        reason = f"{photo.name} is the name of an entry of the photos folder"
    else:
        data = read_object(client, bucket, photo.key)
        if data is None:
            reason = "gone from the store meanwhile"
        elif hashlib.sha256(data).hexdigest() != photo.sha256:
            reason = "its bytes' sha256 is not the one it is named for"
    if reason:
        chosen.skipped.append({"key": photo.key, "reason": reason})
        return False
    if not os.path.isdir(folder):
        os.mkdir(folder, 0o700)
    write_private(os.path.join(folder, f"{photo.sha256}.jpg"), data or b"")
    return True


def sources(store: Store, chosen: TrainingSet) -> dict[str, Any]:
    """The sources.json of a version trained on `chosen` from `store`."""
    return {"photos": sorted(chosen.trained), "forgotten": sorted(store.forgotten), "digest": store.digest}


def write_sources(path: str, record: dict[str, Any]) -> None:
    """sources.json beside the version's model.data and metadata.json (their mode, 0640)."""
    if os.path.lexists(path):
        os.remove(path)
    write_private(path, (json.dumps(record, ensure_ascii=False, indent=2) + "\n").encode("utf-8"), 0o640)


def forget_encodings(cache_dir: str, shas: list[str], check_mode: bool = False) -> list[str]:
    """Remove <cache_dir>/<every fingerprint folder>/<sha256>.json of `shas`; the files removed
    (that would be, in check mode)."""
    removed: list[str] = []
    if not cache_dir or not os.path.isdir(cache_dir):
        return removed
    wanted = sorted({sha for sha in shas if SHA256.match(sha)})
    for fingerprint in sorted(os.listdir(cache_dir)):
        folder = os.path.join(cache_dir, fingerprint)
        if not os.path.isdir(folder) or os.path.islink(folder):
            continue
        for sha in wanted:
            path = os.path.join(folder, f"{sha}.json")
            if os.path.isfile(path):
                if not check_mode:
                    os.remove(path)
                removed.append(path)
    return removed
