"""Sub-commands for the model: train, inspect, validate, init-model, convert-legacy.

Exit codes: 0 done; 1 refused (empty model, a --strict run that skipped photos, a model that
fails validation, a file that is not a usable model); 2 bad command line (argparse).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from edgeface.arguments import positive_int
from edgeface.recogniser import DEFAULT_TOLERANCE, model_tolerance

if TYPE_CHECKING:  # the training modules load cv2 and the face stack: only inside the handlers
    from edgeface.training.build import TrainingResult
    from edgeface.training.values import PhotoResult


def register(subparsers: Any) -> None:
    """Add the model commands to the `edgeface` parser's sub-parsers."""
    train = subparsers.add_parser(
        "train",
        help="photos → model.data",
        description="Train a model from a folder of Name.jpg / Name/*.jpg photos or a metadata.yaml.",
    )
    train.add_argument(
        "photos", nargs="?", help="folder of photos or metadata.yaml (default: $MODEL_TRAINING_YAML)"
    )
    train.add_argument(
        "-o", "--output", default=os.environ.get("MODEL_FILENAME", "model.data"), help="model file to write"
    )
    train.add_argument(
        "--cache", type=Path, help="encoding cache folder (default: <output dir>/.edgeface-cache)"
    )
    train.add_argument("--no-cache", action="store_true", help="analyse every photo afresh, write no cache")
    train.add_argument("--version", dest="model_version", help="model version (default: YYMMDDHHMM, UTC)")
    train.add_argument(
        "--strict", action="store_true", help="fail (and write nothing) if any photo is skipped"
    )
    train.add_argument(
        "--allow-empty",
        action="store_true",
        help="no usable photo writes an empty model (the people store after everyone was forgotten)",
    )
    train.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, help="worker processes")
    train.add_argument(
        "--tolerance", type=_tolerance, default=DEFAULT_TOLERANCE, help="recorded in the model"
    )
    train.add_argument(
        "--max-side", type=int, default=1280, help="detect on photos scaled down to this size (0: full size)"
    )
    train.set_defaults(handler=run_train)

    inspect = subparsers.add_parser("inspect", help="print a model's metadata")
    inspect.add_argument("model", type=Path)
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(handler=run_inspect)

    validate = subparsers.add_parser(
        "validate", help="the validation gate", description="Refuse a model that does not know its people."
    )
    validate.add_argument("model", type=Path)
    validate.add_argument(
        "photos", nargs="?", help="folder of photos or metadata.yaml (default: $MODEL_TRAINING_YAML)"
    )
    validate.add_argument("--tolerance", type=_tolerance, help="default: the model's own tolerance")
    validate.add_argument(
        "--allow-empty", action="store_true", help="an empty model passes when there is no photo either"
    )
    validate.add_argument(
        "--cache", type=Path, help="encoding cache folder (default: <model dir>/.edgeface-cache)"
    )
    validate.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, help="worker processes")
    validate.set_defaults(handler=run_validate)

    init = subparsers.add_parser(
        "init-model",
        help="write an empty model (no people: every face Unknown)",
        description="The model a new appliance starts with, before the first retrain.",
    )
    init.add_argument("-o", "--output", required=True, type=Path)
    init.add_argument(
        "--version", dest="model_version", default="initial", help="model version (default: initial)"
    )
    init.set_defaults(handler=run_init_model)

    convert = subparsers.add_parser(
        "convert-legacy",
        help="convert the original demo's pickled model.data",
        description="Read a pickled model of the original demo ONCE and write it in the safe format. "
        "Unpickling can run code: only for files you made yourself.",
    )
    convert.add_argument("legacy", type=Path, help="the old pickled model.data")
    convert.add_argument("-o", "--output", required=True, type=Path)
    convert.add_argument("--i-trust-this-file", action="store_true", help="required: you made this pickle")
    convert.add_argument("--version", dest="model_version", help="model version (default: YYMMDDHHMM, UTC)")
    convert.set_defaults(handler=run_convert_legacy)


def _tolerance(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.5:
        raise argparse.ArgumentTypeError(f"must be in (0, 1.5], got {text}")
    return value


def _error(message: str) -> int:
    print(f"edgeface: {message}", file=sys.stderr)
    return 1


def run_train(args: argparse.Namespace) -> int:
    from edgeface.model import new_version, save_model  # noqa: PLC0415
    from edgeface.training.build import train  # noqa: PLC0415 (heavy: cv2, face stack)
    from edgeface.training.cache import default_cache_dir  # noqa: PLC0415
    from edgeface.training.detection import DetectionSettings  # noqa: PLC0415
    from edgeface.training.photos import photos_source_from_env  # noqa: PLC0415
    from edgeface.training.values import TrainingError  # noqa: PLC0415

    output = Path(args.output)
    cache = None if args.no_cache else (args.cache or default_cache_dir(output))
    settings = DetectionSettings(max_side=args.max_side)
    progress = Progress()
    try:
        source = photos_source_from_env(args.photos)
        result = train(
            source,
            settings=settings,
            cache_dir=cache,
            jobs=args.jobs,
            tolerance=args.tolerance,
            version=args.model_version,
            on_total=progress.start,
            on_result=progress.advance,
        )
    except TrainingError as error:
        return _error(str(error))
    print(format_summary(result))
    if args.strict and result.skipped:
        return _error(f"--strict: {len(result.skipped)} photos skipped: nothing written")
    model = result.model
    if model is None and args.allow_empty:
        model = empty_model(args.model_version or new_version(), args.tolerance)
        print("no usable photo: the model is empty, it knows nobody (--allow-empty)")
    if model is None:
        return _error(f"no usable photo in {source}: nothing written ({output} left as it was)")
    file_sha = save_model(model, output)
    print(f"wrote {output}: version {model.version}, sha256 {file_sha}")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    import hashlib  # noqa: PLC0415

    from edgeface.model import ModelError, load_model  # noqa: PLC0415

    try:
        model = load_model(args.model)
    except ModelError as error:
        return _error(str(error))
    file_sha = hashlib.sha256(args.model.read_bytes()).hexdigest()
    if args.json:
        record = {"path": str(args.model), "sha256": file_sha, "rows": len(model), "metadata": model.metadata}
        print(json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True))
        return 0
    meta = model.metadata
    print(f"model     {args.model}")
    print(f"version   {model.version}")
    print(f"created   {meta.get('created', '?')}")
    print(f"sha256    {file_sha}")
    print(f"rows      {len(model)} encodings of {len(model.people)} people")
    print(f"tolerance {meta.get('tolerance', '?')}")
    print(f"detector  {json.dumps(meta.get('detector', {}), sort_keys=True)}")
    print(f"libraries {json.dumps(meta.get('libraries', {}), sort_keys=True)}")
    print("people:")
    for person in model.people:
        print(f"  {person}  ({model.names.count(person)} photos)")
    skipped = meta.get("skipped") or []
    if skipped:
        print(f"skipped at training: {len(skipped)}")
        for entry in skipped:
            print(f"  {entry.get('file')}: {entry.get('reason')}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from edgeface import validation  # noqa: PLC0415 (heavy: cv2, face stack)
    from edgeface.model import ModelError, load_model  # noqa: PLC0415
    from edgeface.training.cache import EncodingCache, default_cache_dir  # noqa: PLC0415
    from edgeface.training.detection import DetectionSettings  # noqa: PLC0415
    from edgeface.training.photos import discover_photos, photos_source_from_env  # noqa: PLC0415
    from edgeface.training.pool import analyse_photos  # noqa: PLC0415
    from edgeface.training.values import TrainingError  # noqa: PLC0415

    try:
        model = load_model(args.model)
        source = photos_source_from_env(args.photos)
        photos, missing = discover_photos(source)
    except (ModelError, TrainingError) as error:
        return _error(str(error))
    if args.allow_empty and len(model) == 0 and not photos and not missing:
        print(f"the model is empty and {source} has no photo: nobody to recognise (--allow-empty)")
        return 0
    tolerance = args.tolerance or model_tolerance(model) or DEFAULT_TOLERANCE
    settings = DetectionSettings.from_metadata(model.metadata)
    cache = EncodingCache(args.cache or default_cache_dir(args.model), settings)
    analysed, _ = analyse_photos(photos, settings, cache, jobs=args.jobs)
    report = validation.validate_model(model, missing + analysed, tolerance)
    print(validation.format_report(report))
    return 0 if report.passed else 1


def empty_model(version: str, tolerance: float = DEFAULT_TOLERANCE) -> Any:
    """A model that knows nobody (a FaceModel)."""
    import numpy as np  # noqa: PLC0415

    from edgeface.model import FaceModel, utc_timestamp  # noqa: PLC0415

    metadata = {
        "version": version,
        "created": utc_timestamp(),
        "people": {},
        "photos": [],
        "skipped": [],
        "tolerance": tolerance,
    }
    return FaceModel(np.zeros((0, 128)), (), metadata)


def run_init_model(args: argparse.Namespace) -> int:
    from edgeface.model import save_model  # noqa: PLC0415

    file_sha = save_model(empty_model(args.model_version), args.output)
    print(f"wrote {args.output}: empty model, version {args.model_version}, sha256 {file_sha}")
    return 0


def run_convert_legacy(args: argparse.Namespace) -> int:
    from edgeface.model import FaceModel, new_version, save_model, utc_timestamp  # noqa: PLC0415
    from edgeface.training.detection import library_versions  # noqa: PLC0415
    from edgeface.training.hashing import file_sha256  # noqa: PLC0415
    from edgeface.training.legacy import read_legacy_model  # noqa: PLC0415
    from edgeface.training.values import TrainingError  # noqa: PLC0415

    if not args.i_trust_this_file:
        return _error(
            f"{args.legacy}: refusing to read a pickle: unpickling can run any code it contains. "
            "If you made this file yourself, pass --i-trust-this-file."
        )
    try:
        encodings, names = read_legacy_model(args.legacy)
        people = {name: names.count(name) for name in sorted(set(names))}
        model = FaceModel(
            encodings,
            names,
            {
                "version": args.model_version or new_version(),
                "created": utc_timestamp(),
                "people": people,
                "converted_from": {"file": args.legacy.name, "sha256": file_sha256(args.legacy)},
                "libraries": library_versions(),
                "tolerance": DEFAULT_TOLERANCE,
            },
        )
    except (TrainingError, ValueError) as error:
        return _error(f"{args.legacy}: {error}" if str(args.legacy) not in str(error) else str(error))
    if len(model) == 0:
        return _error(f"{args.legacy}: the legacy model is empty: nothing written")
    file_sha = save_model(model, args.output)
    print(f"wrote {args.output}: {len(model)} encodings of {len(people)} people, sha256 {file_sha}")
    return 0


# -- what the command prints ------------------------------------------------------------------


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
