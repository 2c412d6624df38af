"""site.yml on the podman runtime: registry, nginx-rtmp, the S3 store and the web app for real, then
idempotent."""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import re
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import botocore.exceptions
import kubernetes_validate
import pytest
import yaml

import local_appliance
from playbook import recap_counts
from servers import get_json, wait_until

pytestmark = pytest.mark.slow


def test_site_brings_up_the_registry_the_rtmp_server_and_the_web_app(deployed: str, stream: Path) -> None:
    assert "Publish RTMP to: rtmp://" in deployed
    assert recap_counts(deployed)["failed"] == 0
    assert get_json(f"{local_appliance.REGISTRY}/v2/", headers=local_appliance.registry_auth()) == {}
    # The initial model is the empty one, pulled from the device's registry.
    assert "initial" in local_appliance.registry_tags()
    status = local_appliance.wait_for_names({"Unknown"})
    assert status["model"]["version"] == "initial"
    assert status["source"]["state"] == "live"
    # The rate is over the last 2 s: a publisher that paused under load reads 0 for a moment.
    wait_until(lambda: local_appliance.status()["source"]["input_fps"] > 0, 30, "input frames")
    assert "<img" in local_appliance.page()


def test_a_second_run_from_the_checkout_changes_nothing(deployed: str) -> None:
    """After the installed collection's run: the checkout builds the same images from the same
    inputs (no rebuild for a revision label), so nothing is pushed, played or restarted."""
    again = local_appliance.site()
    counts = recap_counts(again.stdout)
    assert counts["changed"] == 0, again.stdout[-4000:]
    assert counts["failed"] == 0


def test_the_played_kube_files_pass_the_kubernetes_schemas(deployed: str) -> None:
    files = sorted(local_appliance.KUBE_DIR.glob("*.yaml"))
    assert [path.name for path in files] == [
        "mqtt-broker.yaml",
        "nginx-rtmp.yaml",
        "object-store.yaml",
        "registry.yaml",
        "webapp.yaml",
    ]
    for path in files:
        for obj in yaml.safe_load_all(path.read_text()):
            if obj:
                kubernetes_validate.validate(obj, "1.26", strict=True)


def test_the_pods_run_what_the_device_registry_serves_by_digest(deployed: str) -> None:
    """The path MicroShift takes: pushed to the device's registry, pulled from it by digest."""
    containers = {"nginx-rtmp": "nginx-rtmp-pod-0-nginx-rtmp", "webapp": "webapp-pod-0-webapp"}
    containers["seaweedfs"] = "object-store-pod-0-seaweedfs"
    images = {
        name: json.loads(podman("inspect", container).stdout)[0]["ImageName"]
        for name, container in containers.items()
    }
    for name, image in images.items():
        repository, _, digest = image.partition("@")
        assert repository == f"127.0.0.1:5000/ai-for-edge/{name}", image
        served = local_appliance.registry_digest(f"ai-for-edge/{name}", "0.1.0")
        assert digest == served, f"{name} runs {digest}, the registry serves {served}"
    # The registry itself runs from the side-loaded image: it cannot pull itself.
    registry = json.loads(podman("inspect", "registry-pod-0-registry").stdout)[0]["ImageName"]
    assert registry == "localhost/ai-for-edge/amd64/registry:0.1.0"


def test_only_healthz_and_readyz_answer_without_a_credential(deployed: str) -> None:
    webapp = local_appliance.WEBAPP
    for path in ("/video_feed", "/api/status", "/metrics", "/static/status.js"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{webapp}{path}", timeout=10)
        assert refused.value.code == 401, path
    with urllib.request.urlopen(f"{webapp}/", timeout=10) as response:
        assert response.url == f"{webapp}/login"  # the page sends a browser to the login form
    assert get_json(f"{webapp}/healthz") == {"status": "ok"}
    assert get_json(f"{webapp}/readyz")["model"] == {"version": "initial"}

    token = local_appliance.credential("webapp-token")
    metrics = urllib.request.Request(f"{webapp}/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(metrics, timeout=10) as response:
        assert b"edgeface" in response.read()
    wrong = urllib.request.Request(f"{webapp}/metrics", headers={"Authorization": "Bearer not-the-token"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong, timeout=10)
    assert refused.value.code == 401
    # The files the pod reads: root and group root only; the generated secrets never printed.
    users = local_appliance.SECRETS_DIR / "webapp-auth" / "users"
    assert users.stat().st_mode & 0o777 == 0o640
    assert users.read_text().startswith("operator:operator:scrypt$")
    for name in (
        "webapp-password",
        "webapp-token",
        "webapp-session-secret",
        "rtmp-publish-key",
        "registry-password",
    ):
        assert local_appliance.credential(name) not in deployed, name


def test_publishing_to_the_appliance_needs_the_key(deployed: str, stream: Path) -> None:
    for url in (local_appliance.RTMP, f"{local_appliance.RTMP}?key=NotThePublishKey12345"):
        source = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=5", "-t", "2", "-c:v", "libx264"]
        push = subprocess.run(
            ["ffmpeg", "-loglevel", "error", *source, "-f", "flv", url.replace("/test", "/intruder")],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert push.returncode != 0, f"{url} was let in"
    assert "rtmp://" in local_appliance.publish_url() and "?key=" in local_appliance.publish_url()
    # The stream the app reads is the keyed publisher's (the `stream` fixture): recognised as before.
    assert local_appliance.status()["source"]["state"] == "live"


def test_the_store_has_its_bucket_runs_unprivileged_and_refuses_unsigned_requests(deployed: str) -> None:
    store = local_appliance.EmbeddedStore()
    assert [bucket["Name"] for bucket in store.client().list_buckets()["Buckets"]] == ["models"]
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(f"{store.url}/models?list-type=2", timeout=10)
    assert unsigned.value.code == 403
    wrong = boto3.client(
        "s3",
        endpoint_url=store.url,
        region_name="us-east-1",
        aws_access_key_id=store.access_key,
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        wrong.list_objects_v2(Bucket="models")
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"

    config = json.loads(podman("inspect", "object-store-pod-0-seaweedfs").stdout)[0]
    assert config["Config"]["User"] == "10001"
    assert config["HostConfig"]["ReadonlyRootfs"] is True
    identities = local_appliance.SECRETS_DIR / "object-store-identities" / "s3.json"
    assert identities.stat().st_mode & 0o777 == 0o640
    # The generated key pair, kept beside the inventory, root only (certificates are public).
    assert local_appliance.CREDENTIALS_DIR.stat().st_mode & 0o777 == 0o700
    for path in local_appliance.CREDENTIALS_DIR.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o644 if path.suffix == ".crt" else 0o600
        assert path.stat().st_mode & 0o777 == expected, path
    assert store.secret_key not in deployed and store.access_key not in deployed


def test_the_app_reads_the_people_store_with_its_own_key_which_writes_no_model(deployed: str) -> None:
    """The people page's store: the app reaches the embedded store with a key pair of its own (root-only
    files of the Secret webapp-store), which may write the people's prefixes but never a model."""
    files = local_appliance.SECRETS_DIR / "webapp-store"
    assert sorted(path.name for path in files.iterdir()) == ["s3-access-key", "s3-secret-key"]
    assert {path.stat().st_mode & 0o777 for path in files.iterdir()} == {0o640}
    with local_appliance.logged_in().open(f"{local_appliance.WEBAPP}/api/people", timeout=10) as response:
        people = json.loads(response.read())
    assert people["store"] is None, people["store"]  # listed the store's photos/ and forget/
    assert people["retrain_command"] == "ansible-playbook playbooks/retrain.yml -i inventories/local"
    store = local_appliance.EmbeddedStore()
    app = store.client(
        local_appliance.credential("s3-webapp-access-key"), local_appliance.credential("s3-webapp-secret-key")
    )
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        app.put_object(Bucket="models", Key="initial/model.data", Body=b"not a model")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert local_appliance.credential("s3-webapp-secret-key") not in deployed


def test_the_registry_serves_only_over_tls_to_the_site_pusher_and_deletes_nothing(
    deployed: str, tmp_path: Path
) -> None:
    registry, host = local_appliance.REGISTRY, local_appliance.REGISTRY_HOST
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{registry}/v2/ai-for-edge/model/tags/list", timeout=10)
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as plain:
        urllib.request.urlopen(f"http://{host}/v2/", timeout=10)
    assert plain.value.code == 400  # "Client sent an HTTP request to an HTTPS server."
    tags = local_appliance.registry_tags()
    assert "initial" in tags
    # Deletes are off, even for the pusher.
    digest = local_appliance.registry_digest("ai-for-edge/model", "initial")
    delete = urllib.request.Request(
        f"{registry}/v2/ai-for-edge/model/manifests/{digest}",
        method="DELETE",
        headers=local_appliance.registry_auth(),
    )
    with pytest.raises(urllib.error.HTTPError) as deleted:
        urllib.request.urlopen(delete, timeout=10)
    assert deleted.value.code == 405
    assert local_appliance.registry_tags() == tags

    # A push without credentials is refused; podman verifies the registry with the site CA the
    # container_registries role put in /etc/containers/certs.d, with no insecure flag anywhere.
    nobody = tmp_path / "nobody.json"
    nobody.write_text("{}")
    pushed = run(
        "podman",
        "push",
        "--authfile",
        str(nobody),
        "localhost/ai-for-edge/amd64/model:initial",
        f"docker://{host}/ai-for-edge/intruder:1",
    )
    assert pushed.returncode != 0 and "authentication required" in pushed.stderr, pushed.stderr
    assert (local_appliance.CERTS_D / host / "ca.crt").read_text() == local_appliance.CA_FILE.read_text()
    dropin = Path("/etc/containers/registries.conf.d/50-edgeai-appliance.conf").read_text()
    assert "insecure = true" not in dropin
    target = f"{host}/ai-for-edge/model:initial"
    pulled = run("podman", "pull", "--authfile", str(local_appliance.PULL_AUTHFILE), target)
    assert pulled.returncode == 0, pulled.stderr
    # Without the CA (an empty certificate folder instead of certs.d) the same pull fails.
    empty = tmp_path / "no-ca"
    empty.mkdir()
    untrusted = run(
        "podman", "pull", "--cert-dir", str(empty), "--authfile", str(local_appliance.PULL_AUTHFILE), target
    )
    assert untrusted.returncode != 0 and "certificate" in untrusted.stderr, untrusted.stderr
    # The registry runs unprivileged on a read-only root file system.
    inspected = json.loads(podman("inspect", "registry-pod-0-registry").stdout)[0]
    assert inspected["Config"]["User"] not in ("", "0", "root"), inspected["Config"]["User"]
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True


def test_the_web_app_answers_only_over_tls_and_checks_its_model(deployed: str) -> None:
    # Plain HTTP to the app's port is redirected to HTTPS; HTTPS is verified with the site CA.
    connection = http.client.HTTPConnection("127.0.0.1", 8443, timeout=10)
    connection.request("GET", "/healthz")
    answer = connection.getresponse()
    assert answer.status == 301 and answer.getheader("Location") == f"{local_appliance.WEBAPP}/healthz"
    with pytest.raises(urllib.error.URLError) as untrusted:
        urllib.request.urlopen(
            f"{local_appliance.WEBAPP}/healthz", timeout=10, context=ssl.create_default_context()
        )
    assert "CERTIFICATE_VERIFY_FAILED" in str(untrusted.value)
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        local_appliance.SiteCAHandler(), urllib.request.HTTPCookieProcessor(jar)
    )
    form = urllib.parse.urlencode(
        {"user": "operator", "password": local_appliance.credential("webapp-password")}
    )
    opener.open(f"{local_appliance.WEBAPP}/login", data=form.encode(), timeout=10).close()
    assert [cookie.secure for cookie in jar] == [True]
    # The model's sha256 travels in the pod (from the model image's label) and the app checked it.
    webapp = json.loads(podman("inspect", "webapp-pod-0-webapp").stdout)[0]
    env = dict(item.split("=", 1) for item in webapp["Config"]["Env"])
    assert re.fullmatch(r"[0-9a-f]{64}", env["MODEL_SHA256"]), env.get("MODEL_SHA256")
    assert get_json(f"{local_appliance.WEBAPP}/readyz")["model"] == {
        "version": local_appliance.model_version()
    }
    # Least privilege: read-only root file systems for the app, its TLS terminator and nginx-rtmp.
    for container in ("webapp-pod-0-webapp", "webapp-pod-0-tls", "nginx-rtmp-pod-0-nginx-rtmp"):
        assert json.loads(podman("inspect", container).stdout)[0]["HostConfig"]["ReadonlyRootfs"] is True, (
            container
        )


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=True)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
