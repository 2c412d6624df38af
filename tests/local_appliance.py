"""The appliance on this machine, brought up the way a user does: `site.yml -i inventories/local`.

The podman runtime publishes the registry on 127.0.0.1:5000 (HTTPS, a user and password), RTMP on
:1935, the web app on :8443 (HTTPS), the embedded S3 store (SeaweedFS) on :9000 and the
embedded MQTT broker (Mosquitto, MQTT over TLS) on :8883 (inventories/local). These helpers run
the user's playbooks, read the app's status and the store (trusting the site CA site.yml
generated, as a user's browser is told to), and take the whole thing down again.
"""

from __future__ import annotations

import base64
import http.client
import http.cookiejar
import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import collection_tarball
from playbook import BIN, REPO_ROOT, run_playbook
from servers import S3Endpoint, get_json, manifest_digest, wait_until

WEBAPP = "https://127.0.0.1:8443"
REGISTRY_HOST = "127.0.0.1:5000"
REGISTRY = f"https://{REGISTRY_HOST}"
RTMP = "rtmp://127.0.0.1:1935/live/test"  # publishers add ?key=<rtmp-publish-key> (publish_url)
KUBE_DIR = Path("/etc/edgeai-appliance/kube")
UNITS_DIR = Path("/etc/systemd/system/default.target.wants")
EDGEFACE = str(Path(sys.executable).parent / "edgeface")
S3 = "http://127.0.0.1:9000"
PODS = ("registry-pod-0", "nginx-rtmp-pod-0", "object-store-pod-0", "mqtt-broker-pod-0", "webapp-pod-0")
VOLUMES = ("registry-storage", "object-store-data")
SECRETS_DIR = Path("/etc/edgeai-appliance/secrets")
PULL_AUTHFILE = SECRETS_DIR / "registry-pull" / ".dockerconfigjson"
CREDENTIALS_DIR = REPO_ROOT / "inventories" / "local" / "credentials"
CA_FILE = CREDENTIALS_DIR / "ca" / "ca.crt"
CERTS_D = Path("/etc/containers/certs.d")
# retrain_work_dir's default: the controller's cache (one folder per version, the encoding cache).
CACHE_HOME = os.environ.get("XDG_CACHE_HOME", "")
CACHE = Path(CACHE_HOME) if os.path.isabs(CACHE_HOME) else Path.home() / ".cache"
RETRAIN_WORK = CACHE / "edgeai-appliance" / "retrain"


class SiteCAHandler(urllib.request.HTTPSHandler):
    """HTTPS that trusts the site CA, read at each request (site.yml makes it on its first run)."""

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(http.client.HTTPSConnection, req, context=site_ssl_context())


def site_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(CA_FILE) if CA_FILE.exists() else None)


# Every urlopen of the tests that import this module trusts the site CA.
urllib.request.install_opener(urllib.request.build_opener(SiteCAHandler()))


class EmbeddedStore(S3Endpoint):
    """The S3 store site.yml runs here, read with the key pair it generated (as a user would)."""

    url = S3

    @property  # type: ignore[override]
    def access_key(self) -> str:
        return credential("s3-access-key")

    @property  # type: ignore[override]
    def secret_key(self) -> str:
        return credential("s3-secret-key")


def site(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """site.yml from the checkout, as a developer runs it."""
    return run_playbook("site.yml", "-i", "inventories/local", *args, check=check)


@dataclass(frozen=True)
class Deployment:
    """The appliance a test run shares: the collection built into its tarball, installed with
    ansible-galaxy into `collections`, and its site playbook run by name from `workdir`."""

    collections: Path
    workdir: Path
    output: str  # the first site run's standard output

    @property
    def installed(self) -> Path:
        return self.collections / "ansible_collections" / "edgeai" / "appliance"


def installed_site(collections: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """`ansible-playbook edgeai.appliance.site -i inventories/local`, as a Galaxy user runs it."""
    command = [
        str(BIN / "ansible-playbook"),
        "edgeai.appliance.site",
        "-i",
        str(REPO_ROOT / "inventories" / "local"),
    ]
    return run_checked(command, workdir, installed_env(collections))


def installed_env(collections: Path) -> dict[str, str]:
    """A Galaxy user's shell: no checkout ansible.cfg or roles path; collections from the install
    only (the dependencies from the ansible bundle, which is always searched)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_INVENTORY_IGNORE_REGEX="^credentials$",  # as the README tells a Galaxy user
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run_checked(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}\n{tail}")
    return result


def deploy_from_the_tarball(workdir: Path) -> Deployment:
    """From a clean state: build the tarball, install it offline, run its site playbook once."""
    teardown()
    collections = workdir / "collections"
    tarball = collection_tarball.build(workdir / "dist")
    install = [str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps"]
    run_checked([*install, "-p", str(collections), str(tarball)], workdir, installed_env(collections))
    output = installed_site(collections, workdir).stdout
    return Deployment(collections=collections, workdir=workdir, output=output)


def retrain(
    photos: Path | None, *args: str, check: bool = True, env: dict[str, str] | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    """playbooks/retrain.yml as the README gives it: the photos folder (None: the store's photos
    alone, as the people page's command runs it), nothing about S3."""
    folder = {"retrain_photos_dir": str(photos)} if photos else {}
    return run_playbook(
        "playbooks/retrain.yml",
        "-i",
        "inventories/local",
        *args,
        extra_vars={**folder, **extra},
        env=env,
        check=check,
    )


def published() -> tuple[list[str], list[str], str]:
    """What a retrain publishes: the store's keys, the registry's model tags, the model in service."""
    return EmbeddedStore().keys(), registry_tags(), model_version()


def rollback(version: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_playbook(
        "playbooks/rollback.yml",
        "-i",
        "inventories/local",
        extra_vars={"model_version": version},
        check=check,
    )


def credential(name: str) -> str:
    """A credential site.yml generated into inventories/local/credentials (webapp-password, ...)."""
    return (CREDENTIALS_DIR / name).read_text().split()[0]


def publish_url() -> str:
    """Where a camera publishes: the stream `test` with the publish key site.yml generated."""
    return f"{RTMP}?key={credential('rtmp-publish-key')}"


def status() -> dict[str, Any]:
    """/api/status, asked as a machine does: with the bearer token."""
    request = urllib.request.Request(
        f"{WEBAPP}/api/status", headers={"Authorization": f"Bearer {credential('webapp-token')}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def logged_in() -> urllib.request.OpenerDirector:
    """An HTTP client holding the session cookie of the page's user (`operator`), as a browser would."""
    opener = urllib.request.build_opener(
        SiteCAHandler(), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    form = urllib.parse.urlencode({"user": "operator", "password": credential("webapp-password")}).encode()
    with opener.open(f"{WEBAPP}/login", data=form, timeout=10) as response:
        if response.url.rstrip("/") != WEBAPP:
            raise AssertionError(f"the login was refused (ended at {response.url})")
    return opener


def model_version() -> str:
    return str(status()["model"]["version"])


def registry_auth() -> dict[str, str]:
    """The Authorization header of the site's pusher (edgeai, password generated by site.yml)."""
    pair = f"edgeai:{credential('registry-password')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def registry_digest(repository: str, reference: str) -> str | None:
    return manifest_digest(REGISTRY_HOST, repository, reference, scheme="https", headers=registry_auth())


def registry_tags(repository: str = "ai-for-edge/model") -> list[str]:
    try:
        tags = get_json(f"{REGISTRY}/v2/{repository}/tags/list", headers=registry_auth()).get("tags") or []
    except (urllib.error.URLError, ConnectionError):  # no repository yet, or the registry is down
        return []
    return sorted(tags)


def wait_for_names(names: set[str], timeout: float = 120) -> dict[str, Any]:
    """Wait until the stream's current names are exactly `names`; return the status."""
    return dict(wait_until(lambda: set(status()["names"]) == names and status(), timeout, f"names {names}"))


def page() -> str:
    with logged_in().open(f"{WEBAPP}/", timeout=10) as response:
        return str(response.read().decode())


def teardown() -> None:
    """Remove the pods, their volumes and secret files, the played kube files and their boot units.

    The generated credentials stay (a user's would): the next site.yml gives the new store the same key.
    """
    for name in PODS:  # killed at once (-t 0): they are being thrown away
        subprocess.run(["podman", "pod", "rm", "-f", "-t", "0", name], capture_output=True, check=False)
    subprocess.run(["podman", "volume", "rm", "-f", *VOLUMES], capture_output=True, check=False)
    shutil.rmtree(SECRETS_DIR, ignore_errors=True)
    for kube_file in KUBE_DIR.glob("*.yaml"):
        kube_file.unlink()
    for unit in UNITS_DIR.glob("podman-kube@*edgeai*"):
        unit.unlink()
