"""Several cameras on one device: 1, 2, 4 and 8 cameras of the test stream through one app (its
default two inference workers shared by all), nginx-rtmp on loopback, one ffmpeg publisher and one
MJPEG viewer per camera.

Prints, from one run (~10 minutes), per number of cameras:
- correct recognitions/s per camera (updates with Obama named and the stranger Unknown) and its
  ratio to the one-camera run                                              (goal >= 0.95 at 4)
- display over decode-only passthrough, per camera (frames a viewer got / the stream's decoded
  rate)                                                                    (goal >= 0.95 at 4)
- CPU s/s of the app (process + inference workers), in all and per camera
                                                   (goal: one camera <= 0.35, 4 cameras <= 1.6)
- time to name p50/p95 over every camera, on the labelled clip (benchmarks/clip.py: faces that
  appear, move and leave over 4 scenes), each camera's clip started a little after the last one's
  so that their cuts do not coincide                                      (goal p95 <= 0.5 s)

    python -m benchmarks cameras            # or BENCH_CAMERAS=1,4 python -m benchmarks cameras
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

COUNTS = (1, 2, 4, 8)
MEASURE_SECONDS = 20.0
STAGGER_SECONDS = 1.7  # between two cameras' clip publishers
VIEWER = "bench"


def start_app(config: Any, password: str, names: list[str]) -> tuple[Any, Any, str]:
    """The app on `config` once every camera shows a face named; the cookie of a logged-in viewer."""
    from benchmarks.pipeline import login
    from edgeface.pipeline import Pipeline
    from edgeface.web import create_app
    from servers import AppServer, wait_until

    pipeline = Pipeline(config).start()
    server = AppServer(create_app(config, pipeline)).start()
    wait_until(
        lambda: all(camera["names"] for camera in pipeline.status()["cameras"]),
        240,
        f"a face named on every camera of {names}",
    )
    return pipeline, server, login(server.url, password)


def measure(pipeline: Any, url: str, cookie: str) -> dict[str, Any]:
    """One viewer per camera for MEASURE_SECONDS: per camera correct recognitions/s and frames a
    viewer got per second; the app's CPU s/s."""
    from benchmarks.pipeline import cpu_seconds
    from servers import Viewers

    cameras = pipeline.cameras
    viewers = [
        Viewers(f"{url}/video_feed/{camera.name}", 1, MEASURE_SECONDS + 2, cookie) for camera in cameras
    ]
    time.sleep(2)

    def counts() -> list[tuple[int, float, float]]:
        return [
            (
                camera.metrics.updates,
                camera.metrics.face_count("Barack Obama"),
                camera.metrics.face_count("Unknown"),
            )
            for camera in cameras
        ]

    pids = pipeline.pool.pids()
    cpu0, before, started = cpu_seconds(pids), counts(), time.monotonic()
    time.sleep(MEASURE_SECONDS - 1)
    cpu1, after, elapsed = cpu_seconds(pids), counts(), time.monotonic() - started
    correct = [
        min(a[0] - b[0], a[1] - b[1], a[2] - b[2]) / elapsed for a, b in zip(after, before, strict=True)
    ]
    shown = [viewer.result()["parts"][0] / (MEASURE_SECONDS + 2) for viewer in viewers]
    return {"cpu": (cpu1 - cpu0) / elapsed, "correct": correct, "viewer_fps": shown}


def time_to_name(config: Any, urls: list[str], total: int) -> list[dict[str, Any]]:
    """The labelled clip on every camera (already publishing): each camera's first whole pass,
    scored (benchmarks.recognition.evaluate needs the detections drawn on every frame)."""
    from benchmarks.clip import read_number
    from edgeface.pipeline import Pipeline

    pipeline = Pipeline(config)
    passes: list[list[dict[int, list[Any]]]] = [[{}] for _ in urls]
    last = [-1 for _ in urls]
    done = [threading.Event() for _ in urls]

    def recorder(index: int) -> Any:
        def record(frame: Any, detections: list[Any]) -> None:
            number = read_number(frame.image)
            if number < last[index] - total // 2:  # the clip started again
                passes[index].append({})
                if len(passes[index]) > 2:
                    done[index].set()
            last[index] = number
            passes[index][-1][number] = list(detections)

        return record

    for index, camera in enumerate(pipeline.cameras):
        camera.on_display = recorder(index)
    pipeline.start()
    deadline = time.monotonic() + total / 15 * 3 + 240
    for event in done:
        event.wait(max(0.0, deadline - time.monotonic()))
    pipeline.stop()
    return [{"pass": camera_passes[1]} for camera_passes in passes if len(camera_passes) > 2]


def run(count: int, scratch: Path, rtmp: Any, decode_fps: float, viewer: tuple[Path, str]) -> dict[str, Any]:
    """`count` cameras: the test stream measured, then the clip scored; `viewer`: the users file
    and the viewer's password."""
    users, password = viewer
    from benchmarks.clip import FPS, SECONDS, ClipBuilder
    from benchmarks.recognition import evaluate
    from edgeface.config import AppConfig, parse_cameras
    from photos import sample_photos_dir
    from servers import Publisher, face_video

    names = [f"cam{index}" for index in range(count)]
    model = scratch / "model.data"
    cameras = parse_cameras(",".join(f"{name}={rtmp.url(name)}" for name in names))
    config = AppConfig(
        model_filename=model, video_stream_urls=cameras, metrics_per_person=True, web_users_file=users
    )
    video = face_video(sample_photos_dir(), scratch)
    with ExitStack() as publishers:
        for name in names:
            publishers.enter_context(Publisher(video, rtmp.url(name)))
        time.sleep(1)
        pipeline, server, cookie = start_app(config, password, names)
        try:
            result = measure(pipeline, server.url, cookie)
        finally:
            server.stop()
            pipeline.stop()
    clip = ClipBuilder(sample_photos_dir())
    truth = clip.truth()
    clip_video = clip.video(scratch / "clip.mp4")  # made once, by the first count
    clip_names = [f"clip{index}" for index in range(count)]
    clip_config = AppConfig(
        model_filename=model,
        video_stream_urls=parse_cameras(",".join(f"{name}={rtmp.url(name)}" for name in clip_names)),
        web_auth=False,
    )
    with ExitStack() as publishers:
        for name in clip_names:
            publishers.enter_context(Publisher(clip_video, rtmp.url(name)))
            time.sleep(STAGGER_SECONDS)
        scored = time_to_name(clip_config, [rtmp.url(name) for name in clip_names], SECONDS * FPS)
    delays = sorted(
        delay for camera in scored for *_, delay in evaluate([camera["pass"]], truth, FPS)["delays"]
    )
    recall = [evaluate([camera["pass"]], truth, FPS)["known_recall"] for camera in scored]
    false = sum(evaluate([camera["pass"]], truth, FPS)["false_count"] for camera in scored)
    result.update(
        count=count,
        display=[fps / decode_fps for fps in result["viewer_fps"]],
        ttn_p50=delays[len(delays) // 2] if delays else float("nan"),
        ttn_p95=delays[int(len(delays) * 0.95)] if delays else float("nan"),
        recall=recall,
        false_names=false,
        scored=len(scored),
    )
    return result


def main() -> None:
    from benchmarks.pipeline import make_model, passthrough_fps
    from edgeface.auth import user_line
    from photos import sample_photos_dir
    from servers import Publisher, RtmpServer, face_video

    counts = tuple(int(count) for count in os.environ.get("BENCH_CAMERAS", "").split(",") if count) or COUNTS
    photos = sample_photos_dir()
    password = secrets.token_urlsafe(16)
    rows = []
    with tempfile.TemporaryDirectory() as directory, RtmpServer() as rtmp:
        scratch = Path(directory)
        make_model(photos, scratch / "model.data")
        users = scratch / "users"
        users.write_text(user_line(VIEWER, password) + "\n")
        with Publisher(face_video(photos, scratch), rtmp.url("passthrough")):
            time.sleep(1)
            decode_fps = passthrough_fps(rtmp.url("passthrough"), 10)
        print(f"decode-only passthrough: {decode_fps:.2f} fps", flush=True)
        for count in counts:
            row = run(count, scratch, rtmp, decode_fps, (users, password))
            rows.append(row)
            print(
                f"{count} camera(s): correct/s per camera {' '.join(f'{v:.2f}' for v in row['correct'])},"
                f" display/passthrough {' '.join(f'{v:.3f}' for v in row['display'])},"
                f" CPU s/s {row['cpu']:.3f}, time to name p50 {row['ttn_p50']:.2f} p95 {row['ttn_p95']:.2f}",
                flush=True,
            )
    one = sum(rows[0]["correct"]) / len(rows[0]["correct"])
    print(f"cores: {os.cpu_count()}, load average at the end: {os.getloadavg()[0]:.2f}")
    print(
        "cameras | correct/s per camera (min) | RATIO to 1 camera (min) | display/passthrough (min)"
        " | CPU s/s total | per camera | time to name p50 / p95 s | clip recall (min) | false names"
    )
    for row in rows:
        print(
            f"{row['count']:7d} | {sum(row['correct']) / row['count']:.2f} ({min(row['correct']):.2f})"
            f" | {sum(row['correct']) / row['count'] / one:.3f} ({min(row['correct']) / one:.3f})"
            f" | {sum(row['display']) / row['count']:.3f} ({min(row['display']):.3f})"
            f" | {row['cpu']:.3f} | {row['cpu'] / row['count']:.3f}"
            f" | {row['ttn_p50']:.2f} / {row['ttn_p95']:.2f}"
            f" | {sum(row['recall']) / max(len(row['recall']), 1):.3f} ({min(row['recall'], default=0):.3f})"
            f" | {row['false_names']:.0f} ({row['scored']}/{row['count']} clips scored)"
        )
    print(
        "goals: 4 cameras each >= 0.95 of one camera's correct/s and >= 0.95 display, CPU <= 1.6 s/s;"
        " one camera <= 0.35 CPU s/s; time to name p95 <= 0.5 s"
    )


if __name__ == "__main__":
    main()
