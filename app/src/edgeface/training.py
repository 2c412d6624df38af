"""Training: a folder of photos (or the seed's metadata.yaml) → a FaceModel.

Each photo must show exactly one face; every other photo is skipped with a one-line reason that
names the file. Results are cached by the photo's content sha256, so a retrain after adding one
photo analyses only that photo; a cold run spreads photos over a process pool.

Detection policy (measured on the face_recognition sample photos, 626-2333 px tall, one core):
HOG with upsample 1 on the photo scaled so its longest side is at most `max_side` (1280 px:
0.3-0.5 s per photo instead of 0.3-1.3 s at full size; `max_side=0` keeps full resolution),
and, only when no face is found, one retry with upsample 2 (finds faces down to ~20 px at that
scale, ~4x the time, so it is paid only by photos that would otherwise be skipped). The encoding
is computed on the full-resolution photo with `jitters` re-samples (1; the seed's 100 cost 100x
for a marginal gain).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import pickle
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np
import yaml

from edgeface import __version__
from edgeface.model import ENCODING_SIZE, FaceModel, atomic_write_bytes, new_version, utc_timestamp
from edgeface.recogniser import DEFAULT_TOLERANCE, encode_faces
from edgeface.values import Box

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
YAML_SUFFIXES = (".yaml", ".yml")
CACHE_DIRNAME = ".edgeface-cache"

# Why a photo was skipped; the summary counts photos per category.
NO_FACE = "no face"
SEVERAL_FACES = "several faces"
NOT_AN_IMAGE = "not an image"
UNREADABLE = "unreadable"
DUPLICATE = "duplicate"


class TrainingError(ValueError):
    """The training input itself is unusable (no such folder, a broken metadata.yaml)."""


@dataclass(frozen=True)
class Photo:
    """One training photo: its file, the person it shows, and how messages name it."""

    path: Path
    name: str
    label: str


@dataclass(frozen=True)
class DetectionSettings:
    """How faces are found and encoded; part of the cache key and of the model's metadata."""

    model: str = "hog"
    upsample: int = 1
    retry_upsample: int = 2
    max_side: int = 1280
    jitters: int = 1

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> DetectionSettings:
        """The settings a model was trained with (defaults for what it does not record)."""
        detector, encoder = metadata.get("detector") or {}, metadata.get("encoder") or {}
        known = {
            key: detector[key]
            for key in ("model", "upsample", "retry_upsample", "max_side")
            if key in detector
        }
        return cls(**known, jitters=int(encoder.get("jitters", 1)))

    def fingerprint(self) -> str:
        """Short digest of these settings and the library versions: a cache namespace."""
        record = json.dumps({**asdict(self), **library_versions()}, sort_keys=True)
        return hashlib.sha256(record.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Analysis:
    """What one photo's content yielded: an encoding (exactly one face) or a skip reason."""

    faces: int
    encoding: tuple[float, ...] | None = None
    problem: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class PhotoResult:
    """One photo's outcome in a run. encoding: (128,) float64 when used."""

    photo: Photo
    sha256: str | None
    encoding: np.ndarray | None = None
    problem: str | None = None
    detail: str = ""
    cached: bool = False

    @property
    def used(self) -> bool:
        return self.encoding is not None

    def reason(self) -> str:
        """One line naming the file and why it was skipped."""
        return f"skipped {self.photo.label}: {self.detail or self.problem}"


@dataclass
class TrainingResult:
    """A run's outcome: the model (None when no photo was usable) and every photo's result."""

    model: FaceModel | None
    results: list[PhotoResult]
    analysed: int = 0
    people: Counter[str] = field(default_factory=Counter)

    @property
    def skipped(self) -> list[PhotoResult]:
        return [result for result in self.results if not result.used]


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape an encoding (recorded in the model)."""
    versions = {"edgeface": __version__}
    for package in ("face_recognition", "face_recognition_models", "dlib", "dlib-bin", "numpy"):
        try:
            versions[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            continue
    return versions


def photos_source_from_env(argument: str | None) -> Path:
    """The PHOTOS argument, else the seed's MODEL_TRAINING_YAML variable."""
    chosen = argument or os.environ.get("MODEL_TRAINING_YAML")
    if not chosen:
        raise TrainingError(
            "no photos given: pass PHOTOS (a folder or metadata.yaml) or set MODEL_TRAINING_YAML"
        )
    return Path(chosen)


def discover_photos(source: Path) -> tuple[list[Photo], list[PhotoResult]]:
    """Photos under `source` and the entries that could not even be located.

    source: a folder of `Name.jpg|.jpeg|.png` (stem = person, kept exactly), of `Name/` folders
    holding several photos of one person, a folder holding the seed's `metadata.yaml`, or such a
    YAML file (`faces: [{name, image}]`, image paths relative to the file). Hidden entries are
    ignored (the cache lives in `.edgeface-cache`).
    """
    if source.is_file() and source.suffix.lower() in YAML_SUFFIXES:
        return _photos_from_yaml(source)
    if not source.is_dir():
        raise TrainingError(f"{source}: not a folder of photos nor a metadata.yaml")
    for name in ("metadata.yaml", "metadata.yml"):
        if (source / name).is_file():
            return _photos_from_yaml(source / name)
    photos = []
    for entry in sorted(source.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            photos += [
                Photo(inner, entry.name, f"{entry.name}/{inner.name}")
                for inner in sorted(entry.iterdir())
                if _is_photo_name(inner)
            ]
        elif _is_photo_name(entry):
            photos.append(Photo(entry, entry.stem, entry.name))
    return photos, []


def _is_photo_name(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in PHOTO_SUFFIXES and not path.is_dir()


def _photos_from_yaml(path: Path) -> tuple[list[Photo], list[PhotoResult]]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise TrainingError(f"{path}: cannot read the training YAML ({error})") from error
    faces = document.get("faces") if isinstance(document, dict) else None
    if not isinstance(faces, list):
        raise TrainingError(f"{path}: expected `faces: [{{name, image}}, ...]`")
    photos, missing = [], []
    for index, entry in enumerate(faces):
        if not isinstance(entry, dict) or not str(entry.get("name", "")).strip() or not entry.get("image"):
            raise TrainingError(f"{path}: faces[{index}] needs a `name` and an `image`")
        image = path.parent / str(entry["image"])
        photo = Photo(image, str(entry["name"]), str(entry["image"]))
        if image.is_file():
            photos.append(photo)
        else:
            missing.append(PhotoResult(photo, None, problem=UNREADABLE, detail="unreadable (no such file)"))
    return photos, missing


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def analyse_file(path: str, sha256: str, settings: DetectionSettings) -> Analysis:
    """Decode a photo, find its faces and encode the single one (runs in a worker process)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return Analysis(0, problem=UNREADABLE, detail=f"unreadable ({error.strerror or error})")
    if hashlib.sha256(data).hexdigest() != sha256:
        return Analysis(0, problem=UNREADABLE, detail="unreadable (file changed while training)")
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        return Analysis(0, problem=NOT_AN_IMAGE, detail="not an image (cannot decode it)")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    boxes = find_faces(rgb, settings)
    if not boxes:
        return Analysis(0, problem=NO_FACE, detail="no face found")
    if len(boxes) > 1:
        return Analysis(len(boxes), problem=SEVERAL_FACES, detail=f"{len(boxes)} faces (needs exactly one)")
    (encoding,) = encode_faces(rgb, boxes, jitters=settings.jitters)
    return Analysis(1, encoding=tuple(float(value) for value in encoding))


def find_faces(rgb: np.ndarray, settings: DetectionSettings) -> list[Box]:
    """Face boxes in full-resolution pixels, per the module's detection policy."""
    import face_recognition  # noqa: PLC0415 (heavy; workers forked after the parent loaded it)

    height, width = rgb.shape[:2]
    scale = 1.0
    if settings.max_side and max(height, width) > settings.max_side:
        scale = settings.max_side / max(height, width)
    small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    locations = face_recognition.face_locations(small, settings.upsample, settings.model)
    if not locations and settings.retry_upsample > settings.upsample:
        locations = face_recognition.face_locations(small, settings.retry_upsample, settings.model)
    return [
        Box(
            top=max(0, round(top / scale)),
            right=min(width, round(right / scale)),
            bottom=min(height, round(bottom / scale)),
            left=max(0, round(left / scale)),
        )
        for top, right, bottom, left in locations
    ]


class EncodingCache:
    """Analyses by photo content sha256, one small JSON file each (never a pickle).

    Entries live under a folder named for the detection settings and library versions, so a
    change of either never reuses a stale encoding. A damaged entry counts as a miss.
    """

    def __init__(self, directory: Path | None, settings: DetectionSettings) -> None:
        self.directory = directory / settings.fingerprint() if directory is not None else None

    def get(self, sha256: str) -> Analysis | None:
        if self.directory is None:
            return None
        try:
            record = json.loads((self.directory / f"{sha256}.json").read_text(encoding="utf-8"))
            encoding = record["encoding"]
            if encoding is not None and len(encoding) != ENCODING_SIZE:
                return None
            return Analysis(
                faces=int(record["faces"]),
                encoding=None if encoding is None else tuple(float(value) for value in encoding),
                problem=record["problem"],
                detail=str(record["detail"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, sha256: str, analysis: Analysis) -> None:
        if self.directory is None or analysis.problem == UNREADABLE:
            return
        atomic_write_bytes(self.directory / f"{sha256}.json", json.dumps(asdict(analysis)).encode())


class Progress:
    """A bar on a terminal, one plain line per photo otherwise; skip reasons always get a line."""

    def __init__(self, total: int = 0, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.bar = self.stream.isatty()

    def start(self, total: int) -> None:
        self.total, self.done = total, 0

    def advance(self, result: PhotoResult) -> None:
        self.done += 1
        line = result.reason() if not result.used else f"{result.photo.label}: {result.photo.name}"
        if self.bar:
            if not result.used:
                self.stream.write(f"\r\x1b[K{line}\n")
            filled = round(30 * self.done / max(self.total, 1))
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {line}\n")
        self.stream.flush()


def analyse_photos(
    photos: Sequence[Photo],
    settings: DetectionSettings,
    cache: EncodingCache,
    jobs: int = 1,
    on_result: Callable[[PhotoResult], None] | None = None,
) -> tuple[list[PhotoResult], int]:
    """Each photo's outcome, in input order, and how many photos had to be analysed afresh.

    Duplicate content is analysed once and the later copies are skipped naming the first.
    jobs: worker processes for cache misses (1 = in this process).
    """
    report = on_result or (lambda _result: None)
    results: dict[int, PhotoResult] = {}
    first_seen: dict[str, Photo] = {}
    misses: list[tuple[int, str]] = []
    for index, photo in enumerate(photos):
        try:
            sha256 = file_sha256(photo.path)
        except OSError as error:
            results[index] = PhotoResult(
                photo, None, problem=UNREADABLE, detail=f"unreadable ({error.strerror or error})"
            )
            report(results[index])
            continue
        if sha256 in first_seen:
            detail = f"duplicate of {first_seen[sha256].label}"
            results[index] = PhotoResult(photo, sha256, problem=DUPLICATE, detail=detail)
            report(results[index])
            continue
        first_seen[sha256] = photo
        cached = cache.get(sha256)
        if cached is None:
            misses.append((index, sha256))
        else:
            results[index] = _result(photo, sha256, cached, cached=True)
            report(results[index])
    for index, sha256, analysis in _run_analyses(photos, misses, settings, jobs):
        cache.put(sha256, analysis)
        results[index] = _result(photos[index], sha256, analysis, cached=False)
        report(results[index])
    return [results[index] for index in sorted(results)], len(misses)


def _run_analyses(
    photos: Sequence[Photo], misses: list[tuple[int, str]], settings: DetectionSettings, jobs: int
) -> Iterable[tuple[int, str, Analysis]]:
    workers = max(1, min(jobs, len(misses)))
    if workers == 1:
        for index, sha256 in misses:
            yield index, sha256, analyse_file(str(photos[index].path), sha256, settings)
        return
    import face_recognition  # noqa: F401, PLC0415 (load the models once; forked workers share them)

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            pool.submit(analyse_file, str(photos[index].path), sha256, settings): (index, sha256)
            for index, sha256 in misses
        }
        for future in as_completed(futures):
            index, sha256 = futures[future]
            yield index, sha256, future.result()


def _result(photo: Photo, sha256: str, analysis: Analysis, cached: bool) -> PhotoResult:
    encoding = None if analysis.encoding is None else np.array(analysis.encoding, dtype=np.float64)
    return PhotoResult(photo, sha256, encoding, analysis.problem, analysis.detail, cached)


def build_model(
    results: Sequence[PhotoResult],
    settings: DetectionSettings,
    tolerance: float = DEFAULT_TOLERANCE,
    version: str | None = None,
) -> FaceModel | None:
    """The model of the used photos (rows sorted by person, then file), or None if there is none."""
    used = sorted((r for r in results if r.used), key=lambda r: (r.photo.name, r.photo.label))
    if not used:
        return None
    people = Counter(result.photo.name for result in used)
    metadata: dict[str, Any] = {
        "version": version or new_version(),
        "created": utc_timestamp(),
        "people": dict(sorted(people.items())),
        "photos": [{"file": r.photo.label, "name": r.photo.name, "sha256": r.sha256} for r in used],
        "skipped": [{"file": r.photo.label, "reason": r.detail or r.problem} for r in results if not r.used],
        "libraries": library_versions(),
        "detector": {
            "model": settings.model,
            "upsample": settings.upsample,
            "retry_upsample": settings.retry_upsample,
            "max_side": settings.max_side,
        },
        "encoder": {"jitters": settings.jitters, "landmarks": "5-point"},
        "tolerance": tolerance,
    }
    encodings = np.stack([result.encoding for result in used if result.encoding is not None])
    return FaceModel(encodings, tuple(r.photo.name for r in used), metadata)


def default_cache_dir(output: Path) -> Path:
    """`<output dir>/.edgeface-cache`: next to the model, so retrains find it."""
    return output.resolve().parent / CACHE_DIRNAME


def train(
    source: Path,
    *,
    settings: DetectionSettings | None = None,
    cache_dir: Path | None = None,
    jobs: int = 1,
    tolerance: float = DEFAULT_TOLERANCE,
    version: str | None = None,
    on_result: Callable[[PhotoResult], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> TrainingResult:
    """Discover, analyse (cache first) and build; writes nothing but cache entries."""
    chosen = settings or DetectionSettings()
    photos, missing = discover_photos(source)
    if on_total is not None:
        on_total(len(photos) + len(missing))
    for result in missing:
        if on_result is not None:
            on_result(result)
    analysed, fresh = analyse_photos(photos, chosen, EncodingCache(cache_dir, chosen), jobs, on_result)
    results = missing + analysed
    model = build_model(results, chosen, tolerance, version)
    people = Counter(result.photo.name for result in results if result.used)
    return TrainingResult(model, results, fresh, people)


def format_summary(result: TrainingResult) -> str:
    """A plain-text table: photos used per person, then photos skipped per reason."""
    rows = [(name, str(count)) for name, count in sorted(result.people.items())]
    used = sum(result.people.values())
    lines = _table(("person", "photos used"), rows)
    lines.append(f"{len(result.people)} people, {used} photos used, {len(result.skipped)} skipped")
    if result.skipped:
        by_reason = Counter(str(r.problem) for r in result.skipped)
        lines += ["", *_table(("skipped because", "photos"), sorted(by_reason.items()))]
    cached = sum(1 for r in result.results if r.cached)
    lines.append(f"analysed {result.analysed} photos, {cached} from the cache")
    return "\n".join(lines)


def _table(header: tuple[str, str], rows: Sequence[tuple[str, str | int]]) -> list[str]:
    width = max([len(header[0]), *(len(str(row[0])) for row in rows)])
    lines = [f"{header[0]:<{width}}  {header[1]}", f"{'-' * width}  {'-' * len(header[1])}"]
    lines += [f"{row[0]:<{width}}  {row[1]}" for row in rows]
    return lines


# --- Legacy models: the only place a pickle is ever read, and only behind an explicit flag. ---

_LEGACY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _LegacyUnpickler(pickle.Unpickler):
    """Even a trusted pickle may only rebuild numpy arrays, lists, dicts and strings."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _LEGACY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are expected)")
        return super().find_class(module, name)


def read_legacy_model(path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """Encodings (N, 128) and names from the original demo's pickled `model.data`.

    Accepted shapes: `(encodings, names)` (names as strings or `{"name": ...}` records, as the
    seed's two trainers wrote them), `{"encodings": [...], "names": [...]}`, and a list of
    `(name, encoding)` pairs.
    """
    try:
        with path.open("rb") as handle:
            content = _LegacyUnpickler(handle).load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as error:
        raise TrainingError(f"{path}: cannot read the legacy model ({error})") from error
    if isinstance(content, dict) and "encodings" in content and "names" in content:
        encodings, names = content["encodings"], content["names"]
    elif isinstance(content, list | tuple) and content and all(_is_name_pair(item) for item in content):
        names, encodings = [item[0] for item in content], [item[1] for item in content]
    elif isinstance(content, list | tuple) and len(content) == 2:
        encodings, names = content
    else:
        raise TrainingError(f"{path}: not a known legacy model shape ({type(content).__name__})")
    names = [str(name.get("name", "")) if isinstance(name, dict) else str(name) for name in names]
    try:
        array = np.asarray(encodings, dtype=np.float64).reshape(-1, ENCODING_SIZE)
    except ValueError as error:
        raise TrainingError(f"{path}: encodings are not 128-d vectors ({error})") from error
    if len(array) != len(names):
        raise TrainingError(f"{path}: {len(array)} encodings but {len(names)} names")
    return array, tuple(names)


def _is_name_pair(item: object) -> bool:
    return isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str)
