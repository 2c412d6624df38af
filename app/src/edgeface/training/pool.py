"""Every photo's outcome: hashed, looked up in the cache, the misses analysed over a process pool."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from edgeface.training.cache import EncodingCache
from edgeface.training.detection import DetectionSettings, analyse_file
from edgeface.training.hashing import file_sha256
from edgeface.training.values import DUPLICATE, UNREADABLE, Analysis, Photo, PhotoResult


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
