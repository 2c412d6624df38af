"""Where the time to name goes (benchmarks/recognition.py): the pipeline's scans and votes
recorded while the clip plays, and each face appearance's time to name cut into stages.

From the face's first frame (the time it was captured) to the first displayed frame naming it:

- wait: until a scan that covers the face starts (the scanner busy with another scan, resting,
  or planning elsewhere);
- miss: covering scans that did not find the face (too small, turned, blurred);
- scan: the scan that found it, start to end (detection + encodings, on a shared core);
- vote: from that scan's end until the face's vote gives its right name (more attempts);
- show: from then until a displayed frame shows it.

For the scan that found it, also: its share of the frame, the faces it encoded, and the seconds
the worker took (on a core shared with the machine's other work: the wall time, not its CPU).

    trace = NamingTrace.attach(pipeline)      # before pipeline.start()
    trace.displayed(pass_index, clip_number, frame)   # from the display hook
    trace.stages(pass_index, start, face, truth)      # after the run
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

STAGES = ("wait", "miss", "scan", "vote", "show")


@dataclass
class Scan:
    clip: int  # clip frame number scanned
    started: float  # monotonic
    ended: float
    regions: list[Any]
    found: list[Any]
    worker: float  # seconds the worker took (InferenceResult.seconds)
    attempts: int  # faces encoded
    by: str  # the loop's class


@dataclass
class Vote:
    clip: int  # clip frame number the attempts were made on
    at: float  # monotonic, when the tracks took them
    shown: list[Any]  # every tried face with its name after them (FaceTracks.shown())


@dataclass
class NamingTrace:
    scans: list[Scan] = field(default_factory=list)
    votes: list[Vote] = field(default_factory=list)
    clips: dict[int, int] = field(default_factory=dict)  # the source's frame number -> clip frame
    captured: list[dict[int, float]] = field(default_factory=lambda: [{}])  # pass -> clip -> monotonic
    shown_at: list[dict[int, float]] = field(default_factory=lambda: [{}])  # pass -> clip -> monotonic
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def attach(cls, pipeline: Any) -> NamingTrace:
        """Record `pipeline`'s scans (its inference loops' ScanJobs) and its tracks' votes."""
        from benchmarks.clip import read_number
        from edgeface.camera import CameraLoop
        from edgeface.inference import ScanJob

        trace = cls()
        infer_each, scanned = CameraLoop.infer_each, pipeline.tracks.scanned

        def traced_infer_each(loop: Any, frame: Any, jobs: Any, priority: Any = None) -> Any:
            started = time.monotonic()
            for index, result in infer_each(loop, frame, jobs, priority):
                if loop.camera is pipeline.first:
                    job = jobs[index]
                    clip = read_number(frame.image)
                    with trace.lock:
                        trace.clips[frame.number] = clip
                        if isinstance(job, ScanJob) and result is not None:
                            trace.scans.append(
                                Scan(
                                    clip,
                                    started,
                                    time.monotonic(),
                                    list(job.regions),
                                    result.found,
                                    result.seconds,
                                    len(result.attempts),
                                    type(loop).__name__,
                                )
                            )
                yield index, result

        def traced_scanned(frame_number: int, found: Any, attempts: Any) -> None:
            scanned(frame_number, found, attempts)
            if attempts:
                with trace.lock:
                    clip = trace.clips.get(frame_number, -1)
                    trace.votes.append(Vote(clip, time.monotonic(), pipeline.tracks.shown()))

        CameraLoop.infer_each = traced_infer_each  # type: ignore[method-assign]
        pipeline.tracks.scanned = traced_scanned
        return trace

    def new_pass(self) -> None:
        self.captured.append({})
        self.shown_at.append({})

    def displayed(self, clip: int, frame: Any) -> None:
        self.captured[-1][clip] = frame.received
        self.shown_at[-1][clip] = time.monotonic()

    def stages(
        self, index: int, start: int, face: Any, truth: list[list[Any]], named: int | None
    ) -> dict[str, Any]:
        """Seconds of each stage (STAGES) of appearance (`start`, `face`) in pass `index`
        (`named`: the clip frame that first showed its name); missing stages are NaN."""
        from benchmarks.clip import SIZE
        from benchmarks.recognition import near, same_face

        nan = float("nan")
        captured, shown = self.captured[index + 1], self.shown_at[index + 1]
        if start not in captured or named is None or named not in shown:
            return dict.fromkeys(STAGES, nan)
        appeared, end = captured[start], shown[named]
        boxes = {}  # clip frame -> the face's true box
        current = face
        for number in range(start, named + 1):
            current = next((other for other in truth[number] if same_face(other, current)), current)
            boxes[number] = current.box
        scans = [
            s for s in self.scans if appeared <= s.ended and s.started <= end and start <= s.clip <= named
        ]
        covering = [s for s in scans if any(_inside(boxes[s.clip], r) for r in s.regions)]
        finding = [s for s in covering if any(near(box, boxes[s.clip]) for box in s.found)]
        votes = [
            v
            for v in self.votes
            if appeared <= v.at <= end
            and start <= v.clip <= named
            and any(near(d.box, boxes[v.clip]) and d.match.name == face.label for d in v.shown)
        ]
        cover = covering[0].started if covering else nan
        found = finding[0] if finding else None
        voted = votes[0].at if votes else nan
        return {
            "wait": max(0.0, cover - appeared),
            "miss": (found.started - cover) if found else nan,
            "scan": (found.ended - found.started) if found else nan,
            "vote": (voted - found.ended) if found else nan,
            "show": end - voted,
            "area": sum(r.width * r.height for r in found.regions) / (SIZE[0] * SIZE[1]) if found else nan,
            "encoded": found.attempts if found else nan,
            "worker": found.worker if found else nan,
            "by": found.by if found else "",
        }


def _inside(box: Any, region: Any) -> bool:
    return bool(
        region.top <= box.top
        and box.bottom <= region.bottom
        and region.left <= box.left
        and box.right <= region.right
    )
