"""The original demo, unattended, through the user's own commands and a real browser.

site.yml (with its S3 store: the run's one appliance, deployed from the installed collection,
serving the `initial` model again after the appliance's own suites) → ffmpeg publishes a video
of two people, neither in the model → the browser logs in as the generated operator → the page
shows them red and "Unknown" → "Name this person" on one of them → the people page shows the
photo pending and the command that applies it → that command (retrain.yml, no photos folder: the
store's photos) → the same face, with nothing else touched, is named in a green box → "Forget" on
the people page → the printed command again → "Unknown" again, and no photo of that person is
left in the store.

Screenshots land in build/e2e/ (CI artefacts); a timing table of every step is printed and
written to build/e2e/steps.txt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import sync_playwright

import local_appliance
from playbook import REPO_ROOT, run_playbook
from servers import CHROMIUM, CHROMIUM_ARGS, Publisher, face_video, wait_until

ARTEFACTS = REPO_ROOT / "build" / "e2e"
PERSON = "Barack Obama"  # the face ~90 px tall in the published video
RETRAIN_WORK = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeai-appliance" / "retrain"
)


class EventWatcher:
    """The command site.yml printed to watch the events (a script running mosquitto_sub), run as
    pasted into a shell: every line it prints, with the time it arrived."""

    def __init__(self, printed: str) -> None:
        match = re.search(r"Watch the events .*?:\s+sh\s+(\S+?)[\"',\s]", printed, re.DOTALL)
        assert match, "site.yml did not print the command that watches the events"
        self.script = match.group(1)
        assert "mosquitto_sub" in Path(self.script).read_text()
        self.lines: list[tuple[float, str]] = []
        self.process = subprocess.Popen(
            ["sh", self.script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.time(), line.rstrip("\n")))

    def events(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        found = []
        for at, line in list(self.lines):
            topic, _, payload = line.partition(" ")
            if topic.endswith("/events"):
                event = json.loads(payload)
                if event["type"] == kind:
                    found.append((at, event))
        return found

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Steps:
    """Times each step of the flow and prints the table at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    def run(self, name: str, action: Callable[[], Any]) -> Any:
        started = time.monotonic()
        result = action()
        self.rows.append((name, time.monotonic() - started))
        return result

    def table(self) -> str:
        width = max(len(name) for name, _ in self.rows)
        lines = [f"{'step':<{width}}  seconds", f"{'-' * width}  -------"]
        lines += [f"{name:<{width}}  {seconds:7.1f}" for name, seconds in self.rows]
        lines.append(f"{'total':<{width}}  {sum(seconds for _, seconds in self.rows):7.1f}")
        return "\n".join(lines)


def mjpeg_frame() -> np.ndarray:
    """One annotated frame from /video_feed, decoded (BGR)."""
    with local_appliance.logged_in().open(f"{local_appliance.WEBAPP}/video_feed", timeout=10) as response:
        data = b""
        while (end := data.find(b"\xff\xd9", data.find(b"\xff\xd8"))) < 0:
            data += response.read(65536)
    start = data.find(b"\xff\xd8")
    frame = cv2.imdecode(np.frombuffer(data[start : end + 2], np.uint8), cv2.IMREAD_COLOR)
    assert frame is not None
    return frame


def box_pixels(frame: np.ndarray) -> dict[str, int]:
    """How many pixels have the annotator's box colours: green (0,200,0) and red (0,0,255) BGR."""
    blue, green, red = (frame[..., channel].astype(int) for channel in range(3))
    return {
        "green": int(np.count_nonzero((green > 170) & (red < 60) & (blue < 60))),
        "red": int(np.count_nonzero((red > 220) & (green < 60) & (blue < 60))),
    }


def certificate_pin(certificate: Path) -> str:
    """base64(sha256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's SPKI list takes it."""
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class Browser:
    """Chromium, started once site.yml has made the app's certificate: it accepts that one
    certificate (pinned by its key, as a user who checked it would), no other."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self._playwright: Any = None
        self.context: Any = None
        self.page: Any = None

    def start(self, certificate: Path) -> None:
        self._playwright = sync_playwright().start()
        pin = f"--ignore-certificate-errors-spki-list={certificate_pin(certificate)}"
        self.context = self._playwright.chromium.launch_persistent_context(
            str(self.profile), executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, pin]
        )
        self.page = self.context.new_page()
        self.page.set_viewport_size({"width": 1600, "height": 900})

    def log_in(self, url: str, user: str, password: str) -> None:
        """Open `url`, which sends a browser without a session to the login form, and log in."""
        self.page.goto(url, wait_until="domcontentloaded")
        assert self.page.url.endswith("/login"), f"no login form at {self.page.url}"
        self.page.fill("#user", user)
        self.page.fill("#password", password)
        with self.page.expect_navigation():
            self.page.click("button[type=submit]")

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="domcontentloaded")
        self.page.wait_for_function(
            "() => { const img = document.getElementById('stream');"
            " return img && img.naturalWidth > 0 && img.naturalHeight > 0; }",
            timeout=60_000,
        )

    def names(self) -> list[str]:
        return sorted(self.page.locator("#names li .name").all_text_contents())

    def wait_for_names(self, names: list[str], timeout: float = 120) -> None:
        wait_until(lambda: self.names() == sorted(names), timeout, f"the page to list {names}")

    def model_version(self) -> str:
        return str(self.page.locator("#model-version").text_content())

    def name_the_face(self, track: int, name: str) -> str:
        """ "Name this person" on the face of `track` in the live view; what the page answered."""
        self.page.locator(f'#names li[data-track="{track}"] button.name-this').click(timeout=5_000)
        self.page.fill("#naming-name", name)
        self.page.click("#naming button[type=submit]")
        self.page.wait_for_function(
            "() => document.getElementById('naming-result').textContent !== ''", timeout=30_000
        )
        return str(self.page.locator("#naming-result").text_content())

    def people_page(self) -> dict[str, str]:
        """The people page: each person's pending cell, and the command it prints (empty when
        nothing is pending)."""
        self.page.goto(f"{local_appliance.WEBAPP}/people", wait_until="domcontentloaded")
        self.page.wait_for_function(
            "() => document.getElementById('model-version').textContent !== '…'", timeout=30_000
        )
        rows = self.page.locator("#people-table tbody tr")
        pending = {}
        for index in range(rows.count()):
            row = rows.nth(index)
            pending[str(row.get_attribute("data-name"))] = str(row.locator("td.pending").text_content())
        shown = self.page.locator("#pending").is_visible()
        command = str(self.page.locator("#retrain-command").text_content()) if shown else ""
        return {**pending, "": command}

    def forget(self, name: str) -> str:
        self.page.once("dialog", lambda dialog: dialog.accept())
        self.page.locator(f'#people-table tr[data-name="{name}"] button.forget').click()
        self.page.wait_for_function("() => document.getElementById('result').textContent !== ''")
        return str(self.page.locator("#result").text_content())

    def screenshot(self, name: str) -> Path:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTEFACTS / name
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
        if self._playwright is not None:
            self._playwright.stop()


def run_printed(command: str) -> subprocess.CompletedProcess[str]:
    """The command the people page printed, run from the checkout as its user would."""
    argv = shlex.split(command)
    assert argv[:2] == ["ansible-playbook", "playbooks/retrain.yml"], command
    return run_playbook(argv[1], *argv[2:])


def larger_unknown_track() -> int:
    """The track of the larger Unknown face: PERSON's (~90 px; the other is ~62 px)."""
    faces = [face for face in local_appliance.status()["detections"] if not face["known"]]
    assert faces, "no Unknown face on screen"
    return int(max(faces, key=lambda face: face["box"]["bottom"] - face["box"]["top"])["track"])


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    opened = Browser(tmp_path / "chromium-profile")
    yield opened
    opened.close()


def test_a_stranger_named_in_the_browser_is_green_after_one_retrain_then_forgotten(
    appliance: local_appliance.Deployment,
    browser: Browser,
    sample_photos: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    steps = Steps()
    video = face_video(sample_photos, tmp_path)
    assert local_appliance.model_version() == "initial", "the demo starts from a fresh appliance"
    printed = re.search(r"Publish RTMP to: rtmp://[^:]+:(\d+)/(\w+)", appliance.output)
    assert printed, "site.yml did not print the RTMP URL"
    browser.start(local_appliance.CREDENTIALS_DIR / "localhost-webapp.crt")
    # Published on loopback, to the port and application the playbook printed, with the key it names.
    key = local_appliance.credential("rtmp-publish-key")
    url = f"rtmp://127.0.0.1:{printed.group(1)}/{printed.group(2)}/test?key={key}"
    events = EventWatcher(appliance.output)  # the events as site.yml says to watch them
    try:
        with Publisher(video, url):
            steps.run("1 publish + stream live", lambda: local_appliance.wait_for_names({"Unknown"}))

            def unknown_on_the_page() -> None:
                password = local_appliance.credential("webapp-password")
                browser.log_in(f"{local_appliance.WEBAPP}/", "operator", password)
                browser.open(f"{local_appliance.WEBAPP}/")
                browser.wait_for_names(["Unknown", "Unknown"])

            steps.run("2 page shows Unknown", unknown_on_the_page)
            before = box_pixels(mjpeg_frame())
            browser.screenshot("2-unknown.png")
            assert before["red"] > 500 and before["green"] == 0, before

            def name_this_person() -> str:
                # A track ends when the looping video cuts: ask again for the face on screen now.
                def stored() -> str | None:
                    answer = browser.name_the_face(larger_unknown_track(), PERSON)
                    return answer if answer.startswith("Stored") else None

                return str(wait_until(stored, 30, "the page to store the face"))

            steps.run("3 name this person (live view)", name_this_person)
            people = steps.run("3 people page: pending", browser.people_page)
            browser.screenshot("3-people-pending.png")
            assert people[PERSON] == "1 new photo(s)", people
            assert people[""] == "ansible-playbook playbooks/retrain.yml -i inventories/local", people
            result = steps.run("4 the printed retrain.yml", lambda: run_printed(people[""]))
            version = local_appliance.model_version()
            assert f"model {version} in service" in result.stdout
            # The store's photos were trained on and removed from the controller's cache folder.
            assert not list(RETRAIN_WORK.glob("*/photos/**/*.jpg"))

            browser.open(f"{local_appliance.WEBAPP}/")
            steps.run("4 page names the person", lambda: browser.wait_for_names([PERSON, "Unknown"]))
            named_on_page = time.time()
            assert browser.model_version() == version
            after = box_pixels(mjpeg_frame())
            browser.screenshot("4-named.png")
            assert after["green"] > 500 and after["red"] > 500, after  # the other face stays Unknown

            people = browser.people_page()
            assert people[PERSON] == "" and people[""] == "", people  # nothing pending
            answer = steps.run("5 forget (people page)", lambda: browser.forget(PERSON))
            assert "deleted" in answer, answer
            left = local_appliance.EmbeddedStore().keys()
            assert not [key for key in left if key.startswith(f"photos/{PERSON}/")], left
            people = browser.people_page()
            browser.screenshot("5-people-forget-pending.png")
            assert people[PERSON] == "forget" and people[""], people
            forgetting = time.time()  # the new pod may name faces before the play ends
            steps.run("6 the printed retrain.yml", lambda: run_printed(people[""]))
            steps.run("6 page shows Unknown again", lambda: local_appliance.wait_for_names({"Unknown"}))
            assert PERSON not in local_appliance.status()["model"]["people"]
            assert browser.people_page()[PERSON] == "forgotten (done)"
            # The pod serving the model without them announces both strangers before the stream stops.
            try:
                wait_until(
                    lambda: len([e for at, e in events.events("appeared") if at > forgetting]) >= 2,
                    30,
                    "both strangers announced by the new pod",
                )
            except AssertionError as error:
                raise AssertionError(f"{error}; mosquitto_sub printed: {events.lines[-12:]}") from None
            stopped = time.time()
        wait_until(
            lambda: [e for at, e in events.events("left") if at > stopped], 30, "`left` once the stream stops"
        )

        # Two strangers when the flow starts, the person appeared under the new model, `left` when
        # the stream stopped. (podman's `kube play --replace` removes the old pod at once: its app
        # has no time to say who left, only the broker's last will says it is gone.)
        strangers = [event for _, event in events.events("appeared") if not event["known"]]
        assert len(strangers) >= 2, events.lines
        named = [(at, event) for at, event in events.events("appeared") if event["known"]]
        assert named, events.lines
        appeared_at, appeared = named[0]
        assert appeared["name"] == PERSON and appeared["model"] == version and appeared["camera"] == "test"
        left_at = min(at for at, _ in events.events("left") if at > stopped)
        with capsys.disabled():
            print(
                f"\nevents: `appeared` {PERSON} {appeared_at - named_on_page:+.2f} s from the page"
                f" naming them (the page polls /api/status); `left` {left_at - stopped:.2f} s after"
                " the stream stopped"
            )
    finally:
        events.stop()
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        (ARTEFACTS / "steps.txt").write_text(steps.table() + "\n")
        with capsys.disabled():
            print("\n" + steps.table())
