"""Recognition quality on a labelled moving clip (benchmarks/clip.py), through the real pipeline
(nginx-rtmp, ffmpeg publishing, the app at its defaults), next to the original demo's two settings
(FACE_RATIO 0.25 / NTU 1 and 1 / 2, one update a second, detector calls in its sequential loop).

Prints, from one run, as ratios over the clip's faces >= 40 px:
- recall: the 0.2-s slots where Obama is visible in which he is shown named, and the slots where
  the stranger is visible in which he is shown as Unknown;
- false names: shown boxes with a name that is not the face's (of all shown boxes), and flips: a
  face shown rightly, then with another label (Obama as Unknown, the stranger as Obama);
- time to name p50/p95: from a face's first frame to the first displayed frame that names it;
- frames/s with both faces of a two-face frame named correctly;
- CPU s/s of the app (process + inference workers) while the clip plays;
- where each appearance's time to name went at defaults (benchmarks/_trace.py): waiting for a
  scan of its place, scans that missed it, the scan that found it, the vote, the display.

    python -m benchmarks recognition
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._trace import STAGES, NamingTrace
from benchmarks.clip import FPS

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

SLOT = 3  # frames per 0.2-s slot at 15 fps
PASSES = 2  # whole passes of the clip scored (after a first, partial one)


def near(box: Any, truth: Any) -> bool:
    """A shown box is on a true face: its centre inside the true box grown by half."""
    y, x = (box.top + box.bottom) / 2, (box.left + box.right) / 2
    grow_y, grow_x = truth.height / 2, truth.width / 2
    return (
        truth.top - grow_y <= y <= truth.bottom + grow_y and truth.left - grow_x <= x <= truth.right + grow_x
    )


def evaluate(passes: list[dict[int, list[Any]]], truth: list[list[Any]], fps: int) -> dict[str, Any]:
    """Scores of the `passes` of the clip (each: frame number -> detections drawn on it) against
    the clip's `truth`.

    Recall and time to name count the faces >= 40 px whole in the frame (`Face.counted`); a false
    name is a shown box named as someone it is not: a name on a box near no face drawn in the
    frame (counted or not: a half-visible Obama named Obama is right), or near another person; a
    flip is a face shown with its right label and then, in the same scene, with another one."""
    from benchmarks.clip import CUTS

    slots: dict[tuple[int, int, str], bool] = {}
    false_names = boxes = both_right = both_frames = flips = 0
    delays = []
    for index, shown in enumerate(passes):
        right_before: dict[str, bool] = {}  # each person: shown with the right label last time
        for number, everyone in enumerate(truth):
            faces = [face for face in everyone if face.counted]
            detections = shown.get(number)
            if number in CUTS:
                right_before = {}
            if detections is None:
                continue
            right = 0
            for face in faces:
                slot = (index, number // SLOT, face.label)
                hit = named_on(detections, face)
                slots[slot] = slots.get(slot, False) or hit
                right += hit
                label = next((item.match.name for item in detections if near(item.box, face.box)), None)
                if label is not None:  # a face not drawn for a frame does not flip
                    flips += right_before.get(face.label, False) and label != face.label
                    right_before[face.label] = label == face.label
            for item in detections:
                boxes += 1
                owner = next((face for face in everyone if near(item.box, face.box)), None)
                false_names += item.match.known and (owner is None or owner.label != item.match.name)
            if len(faces) == 2:
                both_frames += 1
                both_right += right == 2
        for start, face in appearances(truth):
            named = time_to_name(shown, truth, start, face)
            delays.append((index, start, face, named, math.inf if named is None else (named - start) / fps))
    seconds = sorted(delay for *_, delay in delays)

    def recall(label: str) -> float:
        hits = [hit for (_, _, who), hit in slots.items() if who == label]
        return sum(hits) / max(len(hits), 1)

    return {
        "known_recall": recall("Barack Obama"),
        "stranger_recall": recall("Unknown"),
        "false_names": false_names / max(boxes, 1),
        "false_count": false_names,
        "flips": flips,
        "both_per_s": both_right / max(both_frames, 1) * fps,
        "ttn_p50": seconds[len(seconds) // 2] if seconds else math.nan,
        "ttn_p95": seconds[math.ceil(len(seconds) * 0.95) - 1] if seconds else math.nan,
        "appearances": len(seconds),
        "named_appearances": sum(delay < math.inf for delay in seconds),
        "delays": delays,
    }


def time_to_name(shown: dict[int, list[Any]], truth: list[list[Any]], start: int, face: Any) -> int | None:
    """The first frame from `start` on which `face` (followed from frame to frame) is shown with
    its name; None when it is gone (left, a cut) before that."""
    from benchmarks.clip import CUTS

    current = face
    for number in range(start, len(truth)):
        current = next((other for other in truth[number] if same_face(other, current)), None)
        if current is None or (number > start and number in CUTS):
            return None
        if number in shown and named_on(shown[number], current):
            return number
    return None


def named_on(detections: list[Any], face: Any) -> bool:
    """Whether a shown box is on `face` with its label."""
    return any(near(item.box, face.box) and item.match.name == face.label for item in detections)


def same_face(face: Any, before: Any) -> bool:
    """Whether `face` is `before` on the next frame: same person, near where it was."""
    return bool(face.label == before.label and near(face.box, before.box))


def appearances(truth: list[list[Any]]) -> list[tuple[int, Any]]:
    """(first frame, face) of each time a counted face comes into view (after a cut, walking in,
    growing to 40 px)."""
    from benchmarks.clip import CUTS

    found = []
    for number, faces in enumerate(truth):
        for face in faces:
            if not face.counted:
                continue
            before = [other for other in truth[number - 1] if other.counted] if number not in CUTS else []
            if not any(same_face(other, face) for other in before):
                found.append((number, face))
    return found


def run_pipeline(config: Any, url: str, total: int) -> tuple[list[dict[int, list[Any]]], float, NamingTrace]:
    """Play the clip through the app; returns the detections shown per frame of PASSES whole
    passes (after the first, which may start mid-clip), the app's CPU s/s during them and the
    trace of its scans and votes."""
    from benchmarks.clip import read_number
    from benchmarks.pipeline import cpu_seconds
    from edgeface.pipeline import Pipeline

    pipeline = Pipeline(config)
    trace = NamingTrace.attach(pipeline)
    passes: list[dict[int, list[Any]]] = [{}]
    marks: list[tuple[float, float]] = []  # (time, cpu) at each wrap
    last = [-1]
    done = threading.Event()

    def record(frame: Any, detections: list[Any]) -> None:
        number = read_number(frame.image)
        if number < last[0] - total // 2:  # the clip started again
            pids = [worker.pid for worker in pipeline.workers if worker.pid]
            marks.append((time.monotonic(), cpu_seconds(pids)))
            passes.append({})
            trace.new_pass()
            if len(passes) > PASSES + 1:
                done.set()
        last[0] = number
        passes[-1][number] = list(detections)
        trace.displayed(number, frame)

    pipeline.first.on_display = record
    pipeline.start()
    done.wait(timeout=total / 15 * (PASSES + 2) + 120)
    pipeline.stop()
    (t1, c1), (t2, c2) = marks[0], marks[PASSES]
    return passes[1 : PASSES + 1], (c2 - c1) / (t2 - t1), trace


def simulate_seed(
    clip: Any, truth: list[list[Any]], model: Path, ratio: float, upsample: int
) -> tuple[dict[int, list[Any]], float]:
    """The original demo's loop on the clip: take the newest frame once a second, detect at (ratio,
    upsample), encode, name; its faces are drawn from when it finishes until the next result."""
    import cv2

    from edgeface.detector import Detector
    from edgeface.inference import analyse
    from edgeface.model import load_model
    from edgeface.recogniser import Recogniser

    detector, recogniser = Detector("hog", ratio, upsample), Recogniser(load_model(model))
    shown: dict[int, list[Any]] = {}
    current: list[Any] = []
    number, busy = 0, 0.0
    total = len(truth)
    while number < total:
        started = time.process_time()
        image, _ = clip.frame(number)
        result = analyse(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), detector, recogniser)
        seconds = time.process_time() - started
        busy += seconds
        ready = number + math.ceil(seconds * 15)
        for index in range(number, min(ready, total)):
            shown[index] = current
        current = result
        following = max(number + 15, ready)
        for index in range(ready, min(following, total)):
            shown[index] = current
        number = following
    return shown, busy / (total / 15)


def print_stages(trace: NamingTrace, delays: list[tuple[Any, ...]], truth: list[list[Any]]) -> None:
    """Each appearance's time to name at defaults cut into its stages (benchmarks/_trace.py),
    and each stage's median and largest share."""
    cuts = [
        (start, face, trace.stages(index, start, face, truth, named))
        for index, start, face, named, _ in delays
    ]
    print("where the time to name went (s: " + " ".join(STAGES) + "):")
    print(
        "  "
        + "; ".join(
            f"{start / FPS:.1f} {face.label.split()[-1]} "
            + " ".join(f"{stages[name]:.2f}" for name in STAGES)
            + f" ({stages['by'][:4]} {stages['area']:.2f} of frame, {stages['encoded']} enc,"
            f" {stages['worker']:.2f} s)"
            for start, face, stages in cuts
        )
    )
    summary = []
    for name in STAGES:
        values = sorted(value for *_, stages in cuts if not math.isnan(value := stages[name]))
        if values:
            summary.append(f"{name} p50 {values[len(values) // 2]:.2f} max {values[-1]:.2f}")
    print("  stages: " + ", ".join(summary))


def decode_cpu(url: str, seconds: float) -> float:
    """CPU s/s of a bare OpenCV capture decoding `url` (no inference, no drawing or encoding)."""
    from benchmarks.pipeline import cpu_seconds, passthrough_fps

    cpu, started = cpu_seconds([]), time.monotonic()
    passthrough_fps(url, seconds)
    return (cpu_seconds([]) - cpu) / (time.monotonic() - started)


def main() -> None:
    from benchmarks.clip import SECONDS, ClipBuilder
    from benchmarks.pipeline import make_model
    from edgeface.config import load_config
    from photos import sample_photos_dir
    from servers import Publisher, RtmpServer

    photos = sample_photos_dir()
    clip = ClipBuilder(photos)
    truth = clip.truth()
    rows: list[tuple[str, dict[str, Any], float]] = []
    with tempfile.TemporaryDirectory() as scratch, RtmpServer() as rtmp:
        video = clip.video(Path(scratch) / "clip.mp4")
        model = Path(scratch) / "model.data"
        make_model(photos, model)
        config = load_config({"MODEL_FILENAME": str(model), "VIDEO_STREAM_URL": rtmp.url("clip")})
        with Publisher(video, rtmp.url("clip")):
            shown, cpu, trace = run_pipeline(config, rtmp.url("clip"), SECONDS * FPS)
            decode = decode_cpu(rtmp.url("clip"), 15)
        rows.append(("edgeface defaults", evaluate(shown, truth, FPS), cpu))
        for ratio, upsample in ((0.25, 1), (1.0, 2)):
            shown, cpu = simulate_seed(clip, truth, model, ratio, upsample)
            name = f"demo FACE_RATIO {ratio:g} NTU {upsample} 1 fps"
            rows.append((name, evaluate([shown], truth, FPS), cpu + decode))
    ours = rows[0][1]
    print(
        f"clip: {SECONDS} s 1280x720 {FPS} fps, 4 scenes, {len(appearances(truth))} face appearances"
        f" (defaults: {PASSES} passes);"
        f" cores {os.cpu_count()}, load {os.getloadavg()[0]:.2f}"
    )
    print("appearances at defaults (second, who, height px: time to name s):")
    print(
        "  "
        + "; ".join(
            f"{start / FPS:.1f} {face.label.split()[-1]} {face.box.height}: {delay:.2f}"
            for _, start, face, _, delay in ours["delays"]
        )
    )
    print_stages(trace, ours["delays"], truth)
    print(f"decode-only passthrough CPU s/s {decode:.3f} (the demo rows include it)")
    for name, score, cpu in rows:
        print(
            f"{name:36s} known named {score['known_recall']:.3f} of slots, stranger Unknown"
            f" {score['stranger_recall']:.3f}, false names {score['false_names']:.4f}"
            f" ({score['false_count']:.0f}), flips {score['flips']},"
            f" time to name p50 {score['ttn_p50']:.2f} s p95 {score['ttn_p95']:.2f} s"
            f" ({score['named_appearances']:.0f}/{score['appearances']:.0f} named),"
            f" both named {score['both_per_s']:.2f} frames/s, CPU s/s {cpu:.3f}"
        )
    cpu = rows[0][2]
    print(
        f"RATIOS defaults / demo 0.25-1: CPU {cpu / rows[1][2]:.2f}, known recall"
        f" {ours['known_recall'] / max(rows[1][1]['known_recall'], 1e-9):.2f};"
        f" defaults / demo 1-2: CPU {cpu / rows[2][2]:.2f}, known recall"
        f" {ours['known_recall'] / max(rows[2][1]['known_recall'], 1e-9):.2f};"
        f" defaults / decode-only CPU {cpu / decode:.2f}"
    )
    print(
        "goals at defaults: known >= 0.85, stranger Unknown, false names 0, time to name p95 <= 0.5 s,"
        " both >= 10/s, CPU <= 1.0"
    )


if __name__ == "__main__":
    main()
