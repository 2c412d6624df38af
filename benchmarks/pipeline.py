"""The web app's pipeline on a real stream: nginx-rtmp on loopback, ffmpeg publishing 1280x720 @ 15 fps
of real photos (faces ~90 and ~63 px), a model that knows Obama (Biden must be Unknown).

Prints, from one run (~5 minutes):
- distinct annotated frames/s seen by a viewer / decode-only passthrough fps   (goal >= 0.90)
- recognition updates/s with every face named correctly at the default settings
  (VIDEO_PROCESSING_FPS=15)                                                   (goal >= 10/s on 2 cores),
  and, for their CPU cost, at the seed's VIDEO_PROCESSING_FPS=1 and with one worker
  (INFERENCE_WORKERS=1: following and scanning share it)
- CPU seconds per second (app process + inference workers), 50 viewers / 1 viewer (goal <= 1.10),
  from three interleaved pairs of runs (the machine's other load drifts by more than the viewers
  cost), and the CPU of the thread that writes to the viewers' sockets
- capture-to-viewer latency p50/p95 (capture time stamped in each MJPEG part, read by the viewer)

    python -m benchmarks pipeline
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

MEASURE_SECONDS = 20.0
PAIRS = 3
VIEWER = "bench"  # the page's user the viewers log in as (WEB_AUTH is on, as deployed)


def stat_cpu_seconds(stat: str) -> float:
    """User + system CPU seconds from a /proc `stat` file (of a process or of one thread)."""
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) of this process, plus of children `pids` (the inference workers)."""
    times = os.times()
    return times.user + times.system + sum(stat_cpu_seconds(f"/proc/{pid}/stat") for pid in pids)


def thread_cpu_seconds(native_id: int | None) -> float:
    """CPU time of one thread of this process (0 before it exists)."""
    return 0.0 if native_id is None else stat_cpu_seconds(f"/proc/self/task/{native_id}/stat")


def passthrough_fps(url: str, seconds: float) -> float:
    """Frames per second a bare OpenCV capture decodes from `url` (no inference, no encoding)."""
    import cv2

    from edgeface.source import FAST_PROBE, FFMPEG_OPTIONS_VARIABLE

    os.environ.setdefault(FFMPEG_OPTIONS_VARIABLE, FAST_PROBE)
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    for _ in range(30):  # drain what piled up while opening
        capture.read()
    count, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        ok, _ = capture.read()
        count += ok
    capture.release()
    return count / (time.monotonic() - started)


def make_model(photos: Path, path: Path) -> None:
    import cv2

    from edgeface.detector import Detector
    from edgeface.model import FaceModel, save_model
    from edgeface.recogniser import encode_faces

    rgb = cv2.cvtColor(cv2.imread(str(photos / "obama.jpg")), cv2.COLOR_BGR2RGB)
    save_model(
        FaceModel(encode_faces(rgb, Detector().detect(rgb)), ("Barack Obama",), {"version": "bench"}), path
    )


def face_counts(pipeline: Any) -> tuple[int, float, float]:
    """(recognised frames, Obama faces named, Unknown faces) so far."""
    return (
        pipeline.recognised,
        pipeline.metrics.face_count("Barack Obama"),
        pipeline.metrics.face_count("Unknown"),
    )


def login(url: str, password: str) -> str:
    """Log in as the page's user, as a browser does; the `Cookie` header value it then sends."""
    import http.cookiejar
    import urllib.parse
    import urllib.request

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = urllib.parse.urlencode({"user": VIEWER, "password": password}).encode()
    opener.open(f"{url}/login", data=form, timeout=10).close()
    cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)
    if not cookies:
        raise RuntimeError(f"the login as {VIEWER} was refused")
    return cookies


def measure(pipeline: Any, url: str, viewers: int, cookie: str) -> dict[str, Any]:
    """Run `viewers` MJPEG viewers (logged in: `cookie`) for MEASURE_SECONDS; rates from the
    app's counters and viewer 0."""
    from servers import Viewers

    worker_pids = pipeline.pool.pids()
    crowd = Viewers(f"{url}/video_feed", viewers, MEASURE_SECONDS + 2, cookie)
    time.sleep(2)
    writer = pipeline.broadcaster.writer_thread_id
    cpu0, counts0, started = cpu_seconds(worker_pids), face_counts(pipeline), time.monotonic()
    writer0 = thread_cpu_seconds(writer)
    time.sleep(MEASURE_SECONDS - 1)
    cpu1, counts1, elapsed = cpu_seconds(worker_pids), face_counts(pipeline), time.monotonic() - started
    writer1 = thread_cpu_seconds(writer)
    result = crowd.result()
    recognised = counts1[0] - counts0[0]
    # Every face named correctly = one Obama and one Unknown per update.
    correct = min(counts1[1] - counts0[1], counts1[2] - counts0[2], recognised)
    latencies = sorted(result["latencies"])
    return {
        "cpu_per_s": (cpu1 - cpu0) / elapsed,
        "writer_cpu_per_s": (writer1 - writer0) / elapsed,
        "recognised_per_s": recognised / elapsed,
        "correct_per_s": correct / elapsed,
        "viewer_fps": result["parts"][0] / (MEASURE_SECONDS + 2),
        "min_viewer_parts": min(result["parts"]),
        "p50": latencies[len(latencies) // 2] if latencies else float("nan"),
        "p95": latencies[int(len(latencies) * 0.95)] if latencies else float("nan"),
    }


def run_app(config: Any, password: str) -> tuple[Any, Any, str]:
    """The app on `config`, once Obama is named; with the session cookie of a logged-in viewer."""
    from edgeface.pipeline import Pipeline
    from edgeface.web import create_app
    from servers import AppServer, wait_until

    pipeline = Pipeline(config).start()
    server = AppServer(create_app(config, pipeline)).start()
    wait_until(lambda: "Barack Obama" in pipeline.status()["names"], 180, "Obama to be named")
    return pipeline, server, login(server.url, password)


def main() -> None:
    import secrets

    from edgeface.auth import user_line
    from edgeface.config import AppConfig
    from photos import sample_photos_dir
    from servers import Publisher, RtmpServer, face_video

    photos = sample_photos_dir()
    with tempfile.TemporaryDirectory() as scratch, RtmpServer() as rtmp:
        video = face_video(photos, Path(scratch))
        model = Path(scratch) / "model.data"
        make_model(photos, model)
        password = secrets.token_urlsafe(16)
        users = Path(scratch) / "users"
        users.write_text(user_line(VIEWER, password) + "\n")
        with Publisher(video, rtmp.url("bench")):
            time.sleep(1)
            decode_fps = passthrough_fps(rtmp.url("bench"), 10)
            print(f"decode-only passthrough: {decode_fps:.2f} fps", flush=True)

            # Faces counted by name: the benchmark tells Obama from the stranger by the counters.
            config = AppConfig(
                model_filename=model,
                video_stream_url=rtmp.url("bench"),
                metrics_per_person=True,
                web_users_file=users,
            )
            pipeline, server, cookie = run_app(config, password)
            pairs = [
                (measure(pipeline, server.url, 1, cookie), measure(pipeline, server.url, 50, cookie))
                for _ in range(PAIRS)
            ]
            server.stop()
            pipeline.stop()

            seed_rate_config = replace(config, video_processing_fps=1.0)
            pipeline, server, cookie = run_app(seed_rate_config, password)
            seed_rate = measure(pipeline, server.url, 1, cookie)
            server.stop()
            pipeline.stop()

            # One worker: the follower's and the scanner's jobs take turns on it, the most urgent first.
            untracked_config = replace(config, inference_workers=1)
            pipeline, server, cookie = run_app(untracked_config, password)
            untracked = measure(pipeline, server.url, 1, cookie)
            server.stop()
            pipeline.stop()

    one, many = pairs[0]
    print(f"cores: {os.cpu_count()}, load average at the end: {os.getloadavg()[0]:.2f}")
    print(f"annotated frames/s seen by a viewer: {one['viewer_fps']:.2f}")
    print(f"RATIO display / passthrough fps: {one['viewer_fps'] / decode_fps:.3f}   (goal >= 0.90)")
    print(
        f"recognition updates/s, every face named, default settings (VIDEO_PROCESSING_FPS=15):"
        f" {one['correct_per_s']:.2f} (all updates {one['recognised_per_s']:.2f}),"
        f" CPU s/s {one['cpu_per_s']:.3f}   (goal >= 10/s)"
    )
    print(
        f"  the seed's VIDEO_PROCESSING_FPS=1: {seed_rate['correct_per_s']:.2f},"
        f" CPU s/s {seed_rate['cpu_per_s']:.3f}; one worker"
        f" (INFERENCE_WORKERS=1): {untracked['correct_per_s']:.2f}"
        f" (all {untracked['recognised_per_s']:.2f}), CPU s/s {untracked['cpu_per_s']:.3f}"
    )
    for index, (alone, crowd) in enumerate(pairs, 1):
        print(
            f"  pair {index}: CPU s/s 1 viewer {alone['cpu_per_s']:.3f}, 50 viewers {crowd['cpu_per_s']:.3f}"
            f" (ratio {crowd['cpu_per_s'] / alone['cpu_per_s']:.3f}); socket writer thread"
            f" {alone['writer_cpu_per_s']:.4f} / {crowd['writer_cpu_per_s']:.4f} CPU s/s;"
            f" slowest of 50 viewers got {crowd['min_viewer_parts']} frames"
        )
    alone_total = sum(alone["cpu_per_s"] for alone, _ in pairs)
    crowd_total = sum(crowd["cpu_per_s"] for _, crowd in pairs)
    print(
        f"CPU s/s RATIO 50 viewers / 1 viewer, {PAIRS} pairs: {crowd_total / alone_total:.3f}"
        "   (goal <= 1.10)"
    )
    print(f"recognition updates/s, 50 viewers: {many['correct_per_s']:.2f} (1: {one['correct_per_s']:.2f})")
    print(
        f"capture-to-viewer latency: 1 viewer p50 {one['p50'] * 1000:.0f} ms p95 {one['p95'] * 1000:.0f} ms;"
        f" 50 viewers p50 {many['p50'] * 1000:.0f} ms p95 {many['p95'] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
