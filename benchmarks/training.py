"""Training speed: cold photos/s on 1 process vs all cores, and an incremental retrain.

The photo set is the face_recognition sample photos repeated with small augmentations (mirror,
brightness, a few pixels of crop, scaled to at most 480 px) so that every file has its own
content hash and must be analysed on its own. Goals: >= 1.8x with 2 cores; adding one photo to
a set of >= 200 retrains in <= 2 s.

    python -m benchmarks training
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Enough photos that the worker processes' start-up (each imports dlib and its models, ~1 s)
# does not hide the encoding speed-up; 16 photos measured mostly start-up (1.30x).
COLD_PHOTOS = 64
INCREMENTAL_PHOTOS = 200
MAX_SIDE = 480  # keeps the run short; the faces stay 60-110 px tall, found at upsample 1


def augmented_photos(samples: Path, folder: Path, count: int, start: int = 0) -> list[Path]:
    """Write `count` distinct variants of the sample photos as `folder/<person>/<n>.jpg`."""
    import cv2

    sources = sorted(p for p in samples.iterdir() if p.suffix in (".jpg", ".png"))
    written = []
    for number in range(start, start + count):
        source = sources[number % len(sources)]
        image = cv2.imread(str(source))
        scale = MAX_SIDE / max(image.shape[:2])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        variant = number // len(sources)
        if variant % 2:
            image = image[:, ::-1]
        crop = variant % 5
        image = image[crop : image.shape[0] - crop, crop : image.shape[1] - crop]
        brightness = (variant % 7 - 3) * 4
        image = np.clip(image.astype(np.int16) + brightness, 0, 255).astype(np.uint8)
        person = "Joe Biden" if "biden" in source.stem else "Barack Obama"
        target = folder / person / f"{number:04d}-{source.stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        written.append(target)
    return written


def timed_train(folder: Path, cache: Path | None, jobs: int) -> tuple[float, int, float]:
    """Wall seconds of one in-process training run, photos analysed afresh, CPU seconds used.

    CPU seconds count this process and its workers: when wall ~ CPU with several workers,
    other work on the machine took the other cores.
    """
    from edgeface.training.build import train

    def cpu_seconds() -> float:
        own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime

    cpu_before, started = cpu_seconds(), time.perf_counter()
    result = train(folder, cache_dir=cache, jobs=jobs)
    return time.perf_counter() - started, result.analysed, cpu_seconds() - cpu_before


def cli_retrain_seconds(folder: Path, output: Path, cache: Path) -> float:
    """Wall time of the `train` command in a fresh interpreter (imports included)."""
    runner = (
        "import argparse, sys; from edgeface import training_cli; "
        "p = argparse.ArgumentParser(); training_cli.register(p.add_subparsers(required=True)); "
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.handler(a))"
    )
    command = [sys.executable, "-c", runner, "train", str(folder), "-o", str(output), "--cache", str(cache)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import face_recognition  # noqa: F401 (load the models before any timing)

    from photos import sample_photos_dir

    cores = os.cpu_count() or 1
    samples = sample_photos_dir()
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {cores} cores")
    with tempfile.TemporaryDirectory(prefix="edgeface-bench-") as scratch:
        root = Path(scratch)
        augmented_photos(samples, root / "cold", COLD_PHOTOS)
        print(f"cold, {COLD_PHOTOS} photos (<= {MAX_SIDE} px), no cache:")
        walls = {}
        for jobs in (1, cores):
            wall, _, cpu = timed_train(root / "cold", None, jobs=jobs)
            walls[jobs] = wall
            rate = COLD_PHOTOS / wall
            print(f"  {jobs} process(es): {rate:6.2f} photos/s  ({wall:.1f} s wall, {cpu:.1f} s CPU)")
        print(f"  speed-up {walls[1] / walls[cores]:.2f}x on {cores} cores (goal >= 1.8x on 2)")

        big, cache, count = root / "big", root / "cache", INCREMENTAL_PHOTOS
        augmented_photos(samples, big, count)
        fill, fresh, _ = timed_train(big, cache, jobs=cores)
        print(f"cold fill of the cache, {count} photos, {cores} processes: {fill:.1f} s ({fresh} analysed)")
        augmented_photos(samples, big, 1, start=count)
        retrain, fresh, _ = timed_train(big, cache, jobs=cores)
        print(f"incremental, +1 photo on {count}: {retrain:.2f} s in process ({fresh} analysed; goal <= 2 s)")
        print(f"  {fill / retrain:.0f}x faster than the cold run of the same set")
        augmented_photos(samples, big, 1, start=count + 1)
        command = cli_retrain_seconds(big, root / "model.data", cache)
        print(f"incremental, +1 photo, the train command with interpreter start-up: {command:.2f} s")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {cores} cores (other work skews ratios)")


if __name__ == "__main__":
    main()
