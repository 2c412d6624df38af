"""The workload manifests: rendered by the real roles, checked against the Kubernetes schemas.

The microshift runtime sends these very objects to the API (kubernetes.core.k8s), which no
machine here has; the manifests runtime writes them to disk, so we render with it and validate.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import botocore.exceptions
import jsonschema
import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from edgeface.config import load_config
from playbook import REPO_ROOT, ansible_env, path_without_container_engines, run_playbook
from servers import Registry, S3Server, wait_until

from .conftest import OFFLINE, TREES_PREFIX, device_inventory, render

SCHEMAS = Path(__file__).parent / "schemas"
KUBERNETES_VERSIONS = ("1.26", "1.37")
HTPASSWD = "edge:$2y$05$abcdefghijklmnopqrstuOabcdefghijklmnopqrstuvwxyz01234"


# A simulated Jetson on this x86_64 machine: its images are built for amd64 (no arm64 emulation
# needed), and webapp-l4t, which needs NVIDIA's L4T base and an arm64 builder, is the CPU webapp
# loaded under that name, as a site loads the one it built on a Jetson.
# This machine has no GPU device nodes: the site's GID of their group stands in (video, 44).
SIMULATED_JETSON = {
    "edge_profile": "jetson",
    "edge_profile_gpu_group_gid": "44",
    "edge_profile_image_architecture": "amd64",
    "deploy_prebuilt_images": {"webapp-l4t": f"{TREES_PREFIX}/amd64/webapp:0.1.0"},
}


# The Jetson site has two cameras (the NUC keeps the default one, `test`): each read from the
# device's RTMP server under its own name, each publishing with a key of its own.
CAMERAS = {"webapp_cameras": [{"name": "door"}, {"name": "hall"}]}
WEBHOOK = "https://hooks.example.com/edge"


def load_tree(tree: Path) -> dict[str, dict[str, Any]]:
    """Every object under the tree by '<folder>/<kind>/<name>' (kustomization files excluded)."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(tree.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for obj in yaml.safe_load_all(path.read_text()):
            if obj:
                objects[f"{path.parent.name}/{obj['kind']}/{obj['metadata']['name']}"] = obj
    return objects


@pytest.fixture(scope="module")
def jetson_tree(tmp_path_factory: pytest.TempPathFactory, device_registry: Registry) -> Path:
    # A Jetson without an LVM volume group (the example inventory): LVMS off, so the registry's
    # and the embedded S3 store's storage follow microshift_storage to host folders; with basic auth;
    # its events go to the embedded MQTT broker and a webhook.
    return render(
        tmp_path_factory.mktemp("jetson"),
        device_registry,
        microshift_storage="hostpath",
        registry_htpasswd=HTPASSWD,
        edge_s3="embedded",
        edge_mqtt="embedded",
        webapp_events_webhook_url=WEBHOOK,
        **SIMULATED_JETSON,
        **CAMERAS,
    )


def validate(obj: dict[str, Any]) -> None:
    if obj["kind"] == "Route":
        jsonschema.validate(obj, json.loads((SCHEMAS / "route.openshift.io-v1.json").read_text()))
    elif obj["kind"] == "Application":
        schema = json.loads((SCHEMAS / "argoproj.io-v1alpha1-application.json").read_text())
        jsonschema.validate(obj, schema)
    else:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("tree_name", ["nuc_tree", "jetson_tree"])
def test_every_object_passes_its_schema(tree_name: str, request: pytest.FixtureRequest) -> None:
    objects = load_tree(request.getfixturevalue(tree_name))
    kinds = sorted({obj["kind"] for obj in objects.values()})
    assert {"Deployment", "Service", "Route", "Namespace", "Application"} <= set(kinds)
    for key, obj in objects.items():
        try:
            validate(obj)
        except Exception as error:  # name the object in the failure
            raise AssertionError(f"{key}: {error}") from error


def test_the_validator_refuses_unknown_kinds_and_fields() -> None:
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"bogus": 1}},
            "1.26",
            strict=True,
        )
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(
            {"apiVersion": "v9", "kind": "Nope", "metadata": {"name": "x"}}, "1.26", strict=True
        )
    route = {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": "r"},
        "spec": {"too": {}},
    }
    with pytest.raises(jsonschema.ValidationError):
        validate(route)


def test_the_tree_builds_with_kustomize(nuc_tree: Path) -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(nuc_tree)], capture_output=True, text=True, check=True
    )
    objects = [obj for obj in yaml.safe_load_all(built.stdout) if obj]
    names = sorted(f"{obj['kind']}/{obj['metadata']['name']}" for obj in objects)
    assert names == sorted(
        [
            "Namespace/ai-for-edge",
            "PersistentVolumeClaim/registry-storage",
            "Deployment/registry",
            "Service/registry",
            "Route/registry",
            "Deployment/nginx-rtmp",
            "Service/nginx-rtmp",
            "Deployment/webapp",
            "Service/webapp",
            "Route/webapp",
        ]
    )
    assert all(obj["metadata"].get("namespace", "ai-for-edge") == "ai-for-edge" for obj in objects)


def webapp_pod(tree: Path) -> dict[str, Any]:
    pod: dict[str, Any] = load_tree(tree)["webapp/Deployment/webapp"]["spec"]["template"]["spec"]
    return pod


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


def test_nuc_webapp_is_unprivileged_cpu_hog(nuc_tree: Path, device_registry: Registry) -> None:
    pod = webapp_pod(nuc_tree)
    (app,) = pod["containers"]
    assert "runtimeClassName" not in pod
    digest = device_registry.manifest_digest("ai-for-edge/webapp", "0.1.0")
    assert app["image"] == f"default-registry.cluster.local/ai-for-edge/webapp@{digest}"
    assert env_of(app)["FACE_LOC_MODEL"] == "hog"
    assert env_of(app)["VIDEO_STREAM_URL"] == "rtmp://nginx-rtmp:1935/live/test"
    # No GPU on a NUC: nothing asked of a device plugin, no device group, no CUDA required.
    assert "nvidia.com/gpu" not in app["resources"]["limits"]
    assert "supplementalGroups" not in pod["securityContext"]
    assert "FACE_REQUIRE_CUDA" not in env_of(app) and "INFERENCE_WORKERS" not in env_of(app)
    # edge_mqtt: none and no webhook (the defaults): no event sink is configured.
    assert not [name for name in env_of(app) if name.startswith("EVENTS_")]
    assert not any(key.startswith("nvidia-device-plugin/") for key in load_tree(nuc_tree))
    assert app["securityContext"]["runAsNonRoot"] is True
    assert app["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert set(app["resources"]) == {"requests", "limits"}
    # The model arrives through the initContainer into an emptyDir the app reads.
    (init,) = pod["initContainers"]
    digest = device_registry.manifest_digest("ai-for-edge/model", "initial")
    assert init["image"] == f"default-registry.cluster.local/ai-for-edge/model@{digest}"
    # The users, tokens and session secret come from the Secret the site creates (GitOps).
    assert pod["volumes"] == [
        {"name": "model", "emptyDir": {"sizeLimit": "64Mi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        {"name": "auth", "secret": {"secretName": "webapp-auth"}},
    ]
    assert app["securityContext"]["readOnlyRootFilesystem"] is True
    assert env_of(app)["MODEL_FILENAME"] == "/model/model.data"
    assert env_of(app)["WEB_AUTH"] == "on"
    assert env_of(app)["WEB_USERS_FILE"] == "/etc/edgeface/auth/users"
    # Behind the router's TLS: Secure cookies, the router's X-Forwarded-* taken.
    assert env_of(app)["WEB_COOKIE_SECURE"] == "on"
    assert env_of(app)["WEB_TRUSTED_PROXY"] == "*"
    # The model's sha256 from the gate (the model image's label) is checked by the app.
    assert re.fullmatch(r"[0-9a-f]{64}", env_of(app)["MODEL_SHA256"])
    assert pod["automountServiceAccountToken"] is False
    # The images come from the device's registry with the site's pull secret.
    assert pod["imagePullSecrets"] == [{"name": "registry-pull"}]
    assert "hostPort" not in app["ports"][0]


def test_jetson_webapp_uses_the_nvidia_runtime_and_cnn(jetson_tree: Path, device_registry: Registry) -> None:
    pod = webapp_pod(jetson_tree)
    (app,) = pod["containers"]
    # The NVIDIA runtime is CRI-O's default (nvidia_runtime_set_default): no RuntimeClass needed.
    assert "runtimeClassName" not in pod
    assert not any(key.startswith("webapp/RuntimeClass/") for key in load_tree(jetson_tree))
    digest = device_registry.manifest_digest("ai-for-edge/webapp-l4t", "0.1.0")
    assert app["image"] == f"default-registry.cluster.local/ai-for-edge/webapp-l4t@{digest}"
    assert env_of(app)["FACE_LOC_MODEL"] == "cnn"
    assert app["securityContext"].get("privileged") is not True
    # The GPU: requested from NVIDIA's device plugin, its device nodes reached through their group
    # (the site's GID here), one CUDA worker, and no readiness without CUDA (a rollout whose pod did
    # not get the GPU fails and is rolled back).
    assert app["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["securityContext"]["supplementalGroups"] == [44]
    assert env_of(app)["FACE_REQUIRE_CUDA"] == "on"
    assert env_of(app)["INFERENCE_WORKERS"] == "1"
    assert app["resources"]["limits"]["memory"] == "4Gi"


def publish_keys(tree: Path) -> dict[str, str]:
    """nginx-rtmp's publish-keys as the site's Secret is made from it: {stream: key}."""
    text = (tree.parent / "credentials" / "localhost-nginx-rtmp-auth" / "publish-keys").read_text()
    return dict(line.split(" ") for line in text.splitlines())


def keys_from_their_files(tree: Path, files: dict[str, str]) -> list[str]:
    """The streams whose key in publish-keys is the one generated into `files[stream]` (names only:
    a failing assertion never shows a key)."""
    credentials = tree.parent / "credentials"
    keys = publish_keys(tree)
    generated = {name: (credentials / file).read_text().split()[0] for name, file in files.items()}
    return [name for name, key in generated.items() if keys.get(name) == key]


def printed(tree: Path) -> str:
    """What deploy.yml printed for `tree`, white space folded (the YAML callback wraps long lines)."""
    return " ".join((tree.parent / "deploy.out").read_text().split())


def test_each_camera_is_read_from_its_stream_and_published_with_its_own_key(
    nuc_tree: Path, jetson_tree: Path
) -> None:
    """Two cameras (the Jetson site): VIDEO_STREAM_URLS, a key per camera in its own file, a publish
    URL per camera printed with that file. One (the default site): VIDEO_STREAM_URL and the key in
    rtmp-publish-key, as before there were several. No key is printed, here or by the playbook."""
    (app,) = webapp_pod(jetson_tree)["containers"]
    env = env_of(app)
    live = "rtmp://nginx-rtmp:1935/live"
    assert env["VIDEO_STREAM_URLS"] == f"door={live}/door,hall={live}/hall"
    assert "VIDEO_STREAM_URL" not in env
    credentials = jetson_tree.parent / "credentials"
    keys = publish_keys(jetson_tree)
    assert list(keys) == ["door", "hall"]
    files = {name: f"rtmp-publish-key-{name}" for name in keys}
    assert keys_from_their_files(jetson_tree, files) == ["door", "hall"]
    assert len(set(keys.values())) == 2
    assert [path.name for path in (credentials / "localhost-nginx-rtmp-auth").iterdir()] == ["publish-keys"]
    out = printed(jetson_tree)
    for name, file in files.items():
        assert f":30935/live (stream key: {name}?key=<the key in {credentials}/{file}>)" in out
    assert not [name for name, key in keys.items() if key in out], "a key was printed"

    (app,) = webapp_pod(nuc_tree)["containers"]
    assert env_of(app)["VIDEO_STREAM_URL"] == f"{live}/test"
    assert "VIDEO_STREAM_URLS" not in env_of(app)
    assert list(publish_keys(nuc_tree)) == ["test"]
    assert keys_from_their_files(nuc_tree, {"test": "rtmp-publish-key"}) == ["test"]
    key_file = nuc_tree.parent / "credentials" / "rtmp-publish-key"
    assert f":30935/live (stream key: test?key=<the key in {key_file}>)" in printed(nuc_tree)


def test_jetson_tree_deploys_nvidia_device_plugin_in_its_own_privileged_namespace(jetson_tree: Path) -> None:
    objects = load_tree(jetson_tree)
    plugin = {key: obj for key, obj in objects.items() if key.startswith("nvidia-device-plugin/")}
    assert {obj["metadata"].get("namespace", obj["metadata"]["name"]) for obj in plugin.values()} == {
        "nvidia-device-plugin"
    }
    daemon = plugin["nvidia-device-plugin/DaemonSet/nvidia-device-plugin"]["spec"]["template"]["spec"]
    (container,) = daemon["containers"]
    assert container["image"].startswith("nvcr.io/nvidia/k8s-device-plugin:v")
    assert "--device-discovery-strategy=tegra" in container["args"]
    assert "--device-list-strategy=envvar" in container["args"]
    assert container["securityContext"] == {"privileged": True}
    assert daemon["volumes"][0]["hostPath"]["path"] == "/var/lib/kubelet/device-plugins"
    # The privileged SCC is granted to the plugin's account alone, in its namespace alone.
    binding = plugin["nvidia-device-plugin/RoleBinding/nvidia-device-plugin-privileged-scc"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": daemon["serviceAccountName"], "namespace": "nvidia-device-plugin"}
    ]
    role = plugin[f"nvidia-device-plugin/Role/{binding['roleRef']['name']}"]
    assert role["rules"] == [
        {
            "apiGroups": ["security.openshift.io"],
            "resources": ["securitycontextconstraints"],
            "resourceNames": ["privileged"],
            "verbs": ["use"],
        }
    ]
    assert f"nvidia-device-plugin/ServiceAccount/{daemon['serviceAccountName']}" in plugin
    namespace = plugin["nvidia-device-plugin/Namespace/nvidia-device-plugin"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    # kustomize keeps the plugin's namespace and the appliance's for the rest.
    built = subprocess.run(
        ["kubectl", "kustomize", str(jetson_tree)], capture_output=True, text=True, check=True
    )
    placed = {
        f"{obj['kind']}/{obj['metadata']['name']}": obj["metadata"].get("namespace")
        for obj in yaml.safe_load_all(built.stdout)
        if obj
    }
    assert placed["DaemonSet/nvidia-device-plugin"] == "nvidia-device-plugin"
    assert placed["RoleBinding/nvidia-device-plugin-privileged-scc"] == "nvidia-device-plugin"
    assert placed["Deployment/webapp"] == "ai-for-edge"


def test_routes_keep_the_original_demo_names(nuc_tree: Path) -> None:
    objects = load_tree(nuc_tree)
    assert objects["webapp/Route/webapp"]["spec"]["host"] == "webapp-ai-for-edge.cluster.local"
    assert objects["registry/Route/registry"]["spec"]["host"] == "default-registry.cluster.local"
    # HTTPS only: the router terminates the app's TLS (the GitOps tree names no certificate: the
    # router's default, or the site's added from edge_credentials_dir) and passes the registry's through.
    assert objects["webapp/Route/webapp"]["spec"]["tls"] == {
        "termination": "edge",
        "insecureEdgeTerminationPolicy": "Redirect",
    }
    assert objects["registry/Route/registry"]["spec"]["tls"] == {"termination": "passthrough"}
    rtmp = objects["nginx-rtmp/Service/nginx-rtmp"]["spec"]
    assert rtmp["type"] == "NodePort"
    assert rtmp["ports"][0]["nodePort"] == 30935


def test_registry_on_a_host_folder_is_a_static_volume_with_auth(jetson_tree: Path) -> None:
    objects = load_tree(jetson_tree)
    volume = objects["registry/PersistentVolume/ai-for-edge-registry-storage"]["spec"]
    assert volume["hostPath"] == {"path": "/var/lib/edgeai-appliance/volumes/registry", "type": "Directory"}
    assert volume["persistentVolumeReclaimPolicy"] == "Retain"
    claim = objects["registry/PersistentVolumeClaim/registry-storage"]["spec"]
    assert claim["volumeName"] == "ai-for-edge-registry-storage"
    pod = objects["registry/Deployment/registry"]["spec"]["template"]["spec"]
    storage = next(volume for volume in pod["volumes"] if volume["name"] == "storage")
    assert storage == {"name": "storage", "persistentVolumeClaim": {"claimName": "registry-storage"}}
    (registry,) = pod["containers"]
    env = env_of(registry)
    assert env["REGISTRY_AUTH"] == "htpasswd"
    assert env["REGISTRY_HTTP_TLS_CERTIFICATE"] == "/etc/registry/secret/tls.crt"
    assert env["REGISTRY_STORAGE_DELETE_ENABLED"] == "false"
    assert {"name": "secret", "secret": {"secretName": "registry"}} in pod["volumes"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert registry["securityContext"]["readOnlyRootFilesystem"] is True
    # The site's extra htpasswd line joins the pusher's, in the file beside the inventory.
    htpasswd = (jetson_tree.parent / "credentials" / "localhost-registry" / "htpasswd").read_text()
    assert htpasswd.splitlines()[0].startswith("edgeai:$2b$10$")
    assert htpasswd.splitlines()[1] == HTPASSWD


def test_the_embedded_store_is_a_static_volume_behind_a_node_port(jetson_tree: Path) -> None:
    objects = load_tree(jetson_tree)
    volume = objects["object-store/PersistentVolume/ai-for-edge-object-store-data"]["spec"]
    assert volume["hostPath"] == {
        "path": "/var/lib/edgeai-appliance/volumes/object-store",
        "type": "Directory",
    }
    service = objects["object-store/Service/object-store"]["spec"]
    assert service["type"] == "NodePort" and service["ports"][0]["nodePort"] == 30900
    pod = objects["object-store/Deployment/object-store"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (store,) = pod["containers"]
    assert store["securityContext"]["readOnlyRootFilesystem"] is True
    identities = next(v for v in pod["volumes"] if v["name"] == "identities")
    assert identities == {"name": "identities", "secret": {"secretName": "object-store-identities"}}


def test_the_embedded_broker_serves_tls_behind_a_node_port_to_the_apps_user(jetson_tree: Path) -> None:
    """edge_mqtt: embedded. Mosquitto behind NodePort 30883 with the Secret's certificate (from the
    site CA, valid for the names the app and watchers use), the password file's hashes of the
    generated passwords and an ACL; the app publishes there as edgeface with the site CA; the
    playbook prints the mosquitto_sub command that reads the password from its file."""
    objects = load_tree(jetson_tree)
    service = objects["mqtt-broker/Service/mqtt-broker"]["spec"]
    assert service["type"] == "NodePort"
    (port,) = service["ports"]
    assert port["port"] == 8883 and 30000 <= port["nodePort"] <= 32767 and port["nodePort"] == 30883
    pod = objects["mqtt-broker/Deployment/mqtt-broker"]["spec"]["template"]["spec"]
    (broker,) = pod["containers"]
    assert broker["readinessProbe"] == {"tcpSocket": {"port": "mqtts"}, "periodSeconds": 10}
    assert broker["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["volumes"] == [{"name": "secret", "secret": {"secretName": "mqtt-broker"}}]

    credentials = jetson_tree.parent / "credentials"
    files = credentials / "localhost-mqtt-broker"
    passwords = {
        user: (credentials / f"mqtt-{user}-password").read_text().split()[0]
        for user in ("edgeface", "events")
    }
    for line in (files / "passwd").read_text().splitlines():
        user, hashed = line.split(":")
        _, scheme, rounds, salt, key = hashed.split("$")
        expected = hashlib.pbkdf2_hmac(
            "sha512", passwords[user].encode(), base64.b64decode(salt), int(rounds)
        )
        assert scheme == "7" and base64.b64decode(key) == expected, f"{user}'s hash is not its password's"
    assert (files / "acl").read_text().split("\n\n") == [
        "user edgeface\ntopic readwrite edgeface/#\ntopic readwrite homeassistant/#",
        "user events\ntopic read edgeface/#\ntopic read homeassistant/#\n",
    ]
    certificate = x509.load_pem_x509_certificate((files / "tls.crt").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"mqtt-broker", "mqtt-broker.ai-for-edge.svc", "host.containers.internal"} <= set(
        names.get_values_for_type(x509.DNSName)
    )
    site_ca = x509.load_pem_x509_certificate((credentials / "ca" / "ca.crt").read_bytes())
    assert certificate.issuer == site_ca.subject

    (app,) = webapp_pod(jetson_tree)["containers"]
    env = {name: value for name, value in env_of(app).items() if name.startswith("EVENTS_")}
    assert env == {
        "EVENTS_MQTT_URL": "mqtts://mqtt-broker:8883",
        "EVENTS_MQTT_USERNAME": "edgeface",
        "EVENTS_MQTT_PASSWORD_FILE": "/etc/edgeface/events/mqtt-password",
        "EVENTS_MQTT_CA_FILE": "/etc/edgeface/events/mqtt-ca.crt",
        "EVENTS_MQTT_TOPIC": "edgeface",
        "EVENTS_WEBHOOK_URL": WEBHOOK,
        "EVENTS_WEBHOOK_SECRET_FILE": "/etc/edgeface/events/webhook-secret",
    }
    assert {"name": "events", "mountPath": "/etc/edgeface/events", "readOnly": True} in app["volumeMounts"]
    events = credentials / "localhost-webapp-events"
    assert sorted(path.name for path in events.iterdir()) == [
        "mqtt-ca.crt",
        "mqtt-password",
        "webhook-secret",
    ]
    assert (events / "mqtt-password").read_text() == passwords["edgeface"]
    assert (events / "mqtt-ca.crt").read_text().strip() == (credentials / "ca" / "ca.crt").read_text().strip()
    assert (events / "webhook-secret").read_text() == (credentials / "webhook-secret").read_text().split()[0]

    # Printed as lines joined by backslashes (it pastes into a shell as it is shown), for the
    # device's address (the one the store's endpoint names).
    address = re.findall(r"Model store \(S3\): http://([^:]+):30900", printed(jetson_tree))[0]
    script = credentials / "watch-events-localhost"
    assert f"Watch the events (MQTT over TLS) from the controller: sh {script}" in printed(jetson_tree)
    command = (
        f"exec mosquitto_sub -h {address} -p 30883 \\ --cafile {credentials}/ca/ca.crt \\ -u events"
        f' -P "$(cat {credentials}/mqtt-events-password)" \\ -t \'edgeface/#\' -v "$@"'
    )
    assert command in " ".join(script.read_text().split())
    assert script.stat().st_mode & 0o777 == 0o600
    assert passwords["events"] not in script.read_text()
    assert passwords["events"] not in printed(jetson_tree)


def test_the_app_reaches_the_people_store_with_a_key_of_its_own_from_a_secret(
    nuc_tree: Path, jetson_tree: Path
) -> None:
    """edge_s3: embedded (the Jetson): the app's PEOPLE_* variables name the store's Service, the
    models bucket and the files of the Secret webapp-store (its own key pair, generated once), and
    the command its page prints; the tree holds no key. external without a URL (the NUC): none."""
    (app,) = webapp_pod(jetson_tree)["containers"]
    env = {name: value for name, value in env_of(app).items() if name.startswith("PEOPLE_")}
    retrain = f"ansible-playbook playbooks/retrain.yml -i inventories/{jetson_tree.parent.name}"
    assert env == {
        "PEOPLE_S3_URL": "http://object-store:8333",
        "PEOPLE_S3_BUCKET": "models",
        "PEOPLE_S3_REGION": "us-east-1",
        "PEOPLE_S3_ACCESS_KEY_FILE": "/etc/edgeface/store/s3-access-key",
        "PEOPLE_S3_SECRET_KEY_FILE": "/etc/edgeface/store/s3-secret-key",
        "PEOPLE_RETRAIN_COMMAND": retrain,
    }
    assert {"name": "store", "mountPath": "/etc/edgeface/store", "readOnly": True} in app["volumeMounts"]
    assert {"name": "store", "secret": {"secretName": "webapp-store"}} in webapp_pod(jetson_tree)["volumes"]
    credentials = jetson_tree.parent / "credentials"
    store = credentials / "localhost-webapp-store"
    assert sorted(path.name for path in store.iterdir()) == ["s3-access-key", "s3-secret-key"]
    for name in ("access", "secret"):
        key = (credentials / f"s3-webapp-{name}-key").read_text().split()[0]
        assert (store / f"s3-{name}-key").read_text() == key
        assert key != (credentials / f"s3-{name}-key").read_text().split()[0], "retrain's key pair"
        assert not [path for path in jetson_tree.rglob("*") if path.is_file() and key in path.read_text()]

    (app,) = webapp_pod(nuc_tree)["containers"]
    assert not [name for name in env_of(app) if name.startswith("PEOPLE_")]
    assert all(volume["name"] != "store" for volume in webapp_pod(nuc_tree)["volumes"])


def test_the_apps_store_key_writes_only_the_people_prefixes_of_its_bucket(jetson_tree: Path) -> None:
    """The identities file the object_store role rendered, served by the real SeaweedFS: the app's
    key reads the models bucket and writes photos/, forget/ and audit/ only: no model version, no
    other bucket, no bucket made or removed. Retrain's key may do all of it."""
    credentials = jetson_tree.parent / "credentials"
    rendered = (credentials / "localhost-object-store-identities" / "s3.json").read_text()
    with S3Server(bucket=None, identities=rendered) as store:
        store.access_key = (credentials / "s3-access-key").read_text().split()[0]
        store.secret_key = (credentials / "s3-secret-key").read_text().split()[0]
        retrain = store.client()
        for bucket in ("models", "other"):
            retrain.create_bucket(Bucket=bucket)
        retrain.put_object(Bucket="models", Key="2412011200/model.data", Body=b"model")
        app = store.client(
            (credentials / "s3-webapp-access-key").read_text().split()[0],
            (credentials / "s3-webapp-secret-key").read_text().split()[0],
        )
        for prefix in ("photos/Ada Lovelace/", "forget/", "audit/2026/01/02/"):
            app.put_object(Bucket="models", Key=f"{prefix}x", Body=b"x")
            app.delete_object(Bucket="models", Key=f"{prefix}x")
        assert app.get_object(Bucket="models", Key="2412011200/model.data")["Body"].read() == b"model"
        assert app.list_objects_v2(Bucket="models")["KeyCount"] == 1
        refused = {
            "overwrite a model": lambda: app.put_object(
                Bucket="models", Key="2412011200/model.data", Body=b"x"
            ),
            "publish a version": lambda: app.put_object(
                Bucket="models", Key="2412011201/model.data", Body=b"x"
            ),
            "delete a model": lambda: app.delete_object(Bucket="models", Key="2412011200/model.data"),
            "read another bucket": lambda: app.list_objects_v2(Bucket="other"),
            "write another bucket": lambda: app.put_object(Bucket="other", Key="photos/x", Body=b"x"),
            "make a bucket": lambda: app.create_bucket(Bucket="made"),
            "remove the bucket": lambda: app.delete_bucket(Bucket="models"),
        }
        for what, attempt in refused.items():
            with pytest.raises(botocore.exceptions.ClientError) as error:
                attempt()
            assert error.value.response["Error"]["Code"] == "AccessDenied", what
        assert [bucket["Name"] for bucket in app.list_buckets()["Buckets"]] == ["models"]
        assert retrain.get_object(Bucket="models", Key="2412011200/model.data")["Body"].read() == b"model"


@pytest.mark.parametrize("tree_name", ["nuc_tree", "jetson_tree"])
def test_the_tree_names_each_secret_and_holds_none(tree_name: str, request: pytest.FixtureRequest) -> None:
    """GitOps: pods name their Secrets (the web app's users and tokens, the RTMP publish key, the
    store's key pair); the site creates them from the files written beside the inventory (0600).
    No generated credential is anywhere in the tree."""
    tree = request.getfixturevalue(tree_name)
    objects = load_tree(tree)
    assert not [key for key, obj in objects.items() if obj["kind"] == "Secret"]
    credentials = tree.parent / "credentials"
    named = {
        volume["secret"]["secretName"]
        for pod in pod_specs(objects).values()
        for volume in pod.get("volumes", [])
        if "secret" in volume
    }
    expected = {"webapp-auth", "nginx-rtmp-auth", "registry"} | (
        {"object-store-identities", "mqtt-broker", "webapp-events", "webapp-store"}
        if tree_name == "jetson_tree"
        else set()
    )
    assert named == expected
    pull_secrets = {
        item["name"] for pod in pod_specs(objects).values() for item in pod.get("imagePullSecrets", [])
    }
    assert pull_secrets == {"registry-pull"}
    for secret in expected | pull_secrets:
        folder = credentials / f"localhost-{secret}"
        assert folder.stat().st_mode & 0o777 == 0o700, folder
        assert all(path.stat().st_mode & 0o777 == 0o600 for path in folder.iterdir()), folder
    users = (credentials / "localhost-webapp-auth" / "users").read_text()
    assert users.startswith("operator:operator:scrypt$16384$8$1$")
    token = (credentials / "webapp-token").read_text().split()[0]
    tokens = (credentials / "localhost-webapp-auth" / "tokens").read_text()
    assert tokens == f"machines:viewer:{hashlib.sha256(token.encode()).hexdigest()}\n"
    if tree_name == "jetson_tree":
        identities = json.loads((credentials / "localhost-object-store-identities" / "s3.json").read_text())
        pairs = {identity["name"]: identity["credentials"] for identity in identities["identities"]}
        assert pairs == {
            name: [
                {
                    "accessKey": (credentials / f"s3{infix}-access-key").read_text().split()[0],
                    "secretKey": (credentials / f"s3{infix}-secret-key").read_text().split()[0],
                }
            ]
            for name, infix in (("retrain", ""), ("webapp", "-webapp"))
        }
    generated = [path.read_text().split()[0] for path in credentials.iterdir() if path.is_file()]
    assert len(generated) >= 5
    for path in tree.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not [secret for secret in generated if secret in text], path


def test_argocd_application_sync_options_sit_under_sync_policy(nuc_tree: Path) -> None:
    app = load_tree(nuc_tree)["argocd/Application/localhost-webapp"]
    assert app["spec"]["syncPolicy"]["syncOptions"] == ["CreateNamespace=true"]
    assert "syncOptions" not in app["spec"]["syncPolicy"]["automated"]
    assert app["spec"]["source"]["path"] == "devices/localhost/webapp"


def test_a_node_port_outside_the_range_names_the_variable(tmp_path: Path) -> None:
    result = run_playbook(
        "playbooks/deploy.yml",
        "-i",
        device_inventory(tmp_path),
        extra_vars={
            "edge_runtime": "manifests",
            "edge_manifests_dir": str(tmp_path),
            "nginx_rtmp_node_port": "1935",
            # Bad input is refused before anything is built or copied.
            "deploy_build_images": "false",
            "registry_image_sideload": "false",
        },
        check=False,
    )
    assert result.returncode != 0
    assert "nginx_rtmp_node_port" in result.stdout


ROLE_ALONE = """
- name: One workload role, without the play around it
  hosts: edge
  gather_facts: false
  tasks:
    - name: Run the role
      ansible.builtin.include_role:
        name: edgeai.appliance.{role}
"""


@pytest.mark.parametrize(
    ("role", "settings", "named"),
    [
        (
            "webapp",
            {
                "webapp_cameras": [
                    {"name": "door"},
                    {"name": "Hall"},
                    {"name": "door", "url": "rtsp://cam:Pa55word@cam/a,b"},
                ]
            },
            ['"Hall"', "names taken twice: door", "a comma in the url of door"],
        ),
        (
            "webapp",
            {
                "webapp_cameras": [{"name": "door"}, {"name": "hall"}],
                "webapp_video_stream_url": "rtsp://cam/one",
            },
            ["webapp_video_stream_url is the URL of a one-camera site: with 2 cameras"],
        ),
        ("nginx_rtmp", {"nginx_rtmp_streams": ["door", "door"]}, ["nginx_rtmp_streams", '["door", "door"]']),
        (
            "webapp",
            {"edge_mqtt": "external", "webapp_events_webhook_url": "ftp://Pa55word@hooks"},
            [
                "webapp_events_mqtt_url is required with edge_mqtt: external",
                "webapp_events_webhook_url is not",
            ],
        ),
        (
            "nginx_rtmp",
            {"nginx_rtmp_publish_keys": {"test": "Pa55word,short"}},
            ["nginx_rtmp_publish_keys", "the key of test"],
        ),
        (
            "webapp",
            {
                "webapp_people_s3_url": "https://app:Pa55word@s3.example.com/models",
                "webapp_people_s3_bucket": "Models",
            },
            [
                "webapp_people_s3_url is not http(s)://host[:port]",
                "webapp_people_s3_access_key and webapp_people_s3_secret_key are required",
                'webapp_people_s3_bucket: "Models" is not a bucket name',
            ],
        ),
    ],
)
def test_bad_cameras_are_refused_naming_the_variable_and_entry(
    tmp_path: Path, role: str, settings: dict[str, Any], named: list[str]
) -> None:
    """The role's checks come first: a bad camera or key stops it, naming the setting and the entry
    but never a URL (it may carry a password) or a key."""
    playbook = tmp_path / "role.yml"
    playbook.write_text(ROLE_ALONE.format(role=role))
    result = run_playbook(
        str(playbook),
        "-i",
        device_inventory(tmp_path),
        extra_vars={
            "edge_runtime": "manifests",
            "edge_manifests_dir": str(tmp_path),
            "edge_profile_address": "127.0.0.1",
            "webapp_profile": "nuc",
            **settings,
        },
        check=False,
    )
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert all(text in out for text in named), out[-3000:]
    assert "Pa55word" not in out
    assert not (tmp_path / "localhost").exists(), "the role wrote objects before its checks"


def render_webapp_alone(tmp: Path, **settings: Any) -> tuple[Path, str]:
    """The webapp role alone on the manifests runtime (no images, no registry: the tags stand in),
    into `tmp`: the device's tree and what the play printed."""
    playbook = tmp / "role.yml"
    playbook.write_text(ROLE_ALONE.format(role="webapp"))
    result = run_playbook(
        str(playbook),
        "-i",
        device_inventory(tmp),
        extra_vars={
            "edge_runtime": "manifests",
            "edge_manifests_dir": str(tmp),
            "edge_profile_address": "127.0.0.1",
            "webapp_profile": "nuc",
            **settings,
        },
    )
    return tmp / "localhost", result.stdout + result.stderr


def files_holding(tree: Path, *secrets: str) -> list[Path]:
    """The files of `tree` in which any of `secrets` appears."""
    files = [path for path in tree.rglob("*") if path.is_file()]
    return [path for path in files if any(secret in path.read_text() for secret in secrets)]


def test_a_camera_url_with_a_password_reaches_the_app_from_a_secret_never_the_tree(tmp_path: Path) -> None:
    """A camera URL with a password (or a token in its query) is no environment value: every camera
    goes to the app as a line of the file `urls` of the Secret webapp-cameras, which the tree names
    and never holds (its file is written beside the inventory); a changed URL restarts the pod."""
    door = "rtsp://admin:s3cret@10.0.0.5/stream"
    tree, out = render_webapp_alone(tmp_path, webapp_cameras=[{"name": "door", "url": door}])

    deployment = load_tree(tree)["webapp/Deployment/webapp"]
    validate(deployment)
    pod = deployment["spec"]["template"]["spec"]
    (app,) = pod["containers"]
    env = env_of(app)
    assert env["VIDEO_STREAM_URLS_FILE"] == "/etc/edgeface/cameras/urls"
    assert "VIDEO_STREAM_URL" not in env and "VIDEO_STREAM_URLS" not in env
    assert {"name": "cameras", "secret": {"secretName": "webapp-cameras"}} in pod["volumes"]
    assert {"name": "cameras", "mountPath": "/etc/edgeface/cameras", "readOnly": True} in app["volumeMounts"]
    folder = tmp_path / "credentials" / "localhost-webapp-cameras"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "urls").stat().st_mode & 0o777 == 0o600
    assert (folder / "urls").read_text() == f"door={door}\n"
    # The app reads that file as the role wrote it.
    cameras = load_config({"VIDEO_STREAM_URLS_FILE": str(folder / "urls")}).cameras
    assert [(camera.name, camera.url) for camera in cameras] == [("door", door)]
    assert not files_holding(tree, "s3cret")
    assert "s3cret" not in out
    restart = deployment["spec"]["template"]["metadata"]["annotations"]["edgeai.appliance/secret-sha256"]

    # A new password, and a camera whose token is in its query: both in the file, neither in the tree.
    hall = "rtsp://cam.example.com/live?token=t0ken"
    cameras_now = [{"name": "door", "url": door.replace("s3cret", "n3wer")}, {"name": "hall", "url": hall}]
    tree, out = render_webapp_alone(tmp_path, webapp_cameras=cameras_now)

    template = load_tree(tree)["webapp/Deployment/webapp"]["spec"]["template"]
    assert template["metadata"]["annotations"]["edgeai.appliance/secret-sha256"] != restart
    assert "VIDEO_STREAM_URLS" not in env_of(template["spec"]["containers"][0])
    assert (folder / "urls").read_text() == f"door={cameras_now[0]['url']}\nhall={hall}\n"
    secrets = ("s3cret", "n3wer", "t0ken")
    assert not files_holding(tree, *secrets)
    assert not [secret for secret in secrets if secret in out]


@pytest.mark.parametrize(("variable", "typo"), [("edge_runtime", "podmann"), ("edge_mqtt", "embeded")])
def test_a_typo_in_the_runtime_names_the_variable(tmp_path: Path, variable: str, typo: str) -> None:
    result = run_playbook(
        "playbooks/deploy.yml",
        "-i",
        device_inventory(tmp_path),
        extra_vars={variable: typo},
        check=False,
    )
    assert result.returncode != 0
    assert variable in result.stdout and typo in result.stdout


# What MicroShift's restricted-v2 SCC lets a pod mount (every workload runs under it).
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def pod_specs(objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        key: obj["spec"]["template"]["spec"] for key, obj in objects.items() if obj["kind"] == "Deployment"
    }


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


@pytest.mark.parametrize("tree_name", ["nuc_tree", "jetson_tree"])
def test_every_image_is_a_digest_the_device_registry_holds(
    tree_name: str, request: pytest.FixtureRequest, device_registry: Registry
) -> None:
    for key, pod in pod_specs(load_tree(request.getfixturevalue(tree_name))).items():
        for container in containers(pod):
            image = container["image"]
            if key == "registry/Deployment/registry":
                # Side-loaded into the device's storage (it cannot pull itself): never pulled.
                assert container["imagePullPolicy"] == "Never", key
                exists = subprocess.run(["podman", "image", "exists", image], check=False)
                assert exists.returncode == 0, f"{image} is not in local storage"
                continue
            repository, _, digest = image.partition("@")
            assert digest.startswith("sha256:"), f"{key}: {image} is not pinned by digest"
            host, _, name = repository.partition("/")
            assert host == "default-registry.cluster.local", image
            held = device_registry.manifest_digest(name, digest)
            assert held == digest, f"{key}: {image} is not in the registry"


@pytest.mark.parametrize("tree_name", ["nuc_tree", "jetson_tree"])
def test_every_reference_has_its_object(tree_name: str, request: pytest.FixtureRequest) -> None:
    """What a cluster would refuse or leave Pending: runtime classes, claims, services, routes."""
    objects = load_tree(request.getfixturevalue(tree_name))
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for obj in objects.values():
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    for key, pod in pod_specs(objects).items():
        if "runtimeClassName" in pod:
            runtime_class = by_kind.get("RuntimeClass", {}).get(pod["runtimeClassName"])
            assert runtime_class is not None, f"{key}: no RuntimeClass {pod['runtimeClassName']}"
            assert runtime_class["handler"] == "nvidia"
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                claim = by_kind["PersistentVolumeClaim"][volume["persistentVolumeClaim"]["claimName"]]
                if "volumeName" in claim["spec"]:
                    pv = by_kind["PersistentVolume"][claim["spec"]["volumeName"]]
                    claim_ref = {"namespace": "ai-for-edge", "name": claim["metadata"]["name"]}
                    assert pv["spec"]["claimRef"] == claim_ref
                    assert pv["spec"]["storageClassName"] == claim["spec"]["storageClassName"] == ""
                else:
                    # Left to the cluster's default StorageClass: TopoLVM's, only with LVMS on.
                    assert tree_name == "nuc_tree", f"{key}: a claim nothing can bind with LVMS off"
    for service in by_kind["Service"].values():
        selector = service["spec"]["selector"]
        assert any(
            selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
            for deployment in by_kind["Deployment"].values()
        ), f"Service {service['metadata']['name']} selects no pod"
    for route in by_kind["Route"].values():
        service = by_kind["Service"][route["spec"]["to"]["name"]]
        assert route["spec"]["port"]["targetPort"] in {port["name"] for port in service["spec"]["ports"]}


@pytest.mark.parametrize("tree_name", ["nuc_tree", "jetson_tree"])
def test_every_pod_fits_the_restricted_scc(tree_name: str, request: pytest.FixtureRequest) -> None:
    """No SCC grant is rendered, so every pod must pass restricted-v2 as it is."""
    for key, pod in pod_specs(load_tree(request.getfixturevalue(tree_name))).items():
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), key
        for volume in pod.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUME_TYPES, f"{key}: volume {volume['name']} is {kinds}"
        for container in containers(pod):
            security = container.get("securityContext", {})
            assert security.get("allowPrivilegeEscalation") is False, f"{key}/{container['name']}"
            assert security.get("capabilities", {}).get("drop") == ["ALL"], f"{key}/{container['name']}"
            assert not security.get("privileged"), f"{key}/{container['name']}"
            assert "runAsUser" not in security, f"{key}/{container['name']}: restricted-v2 picks the UID"
            assert all("hostPort" not in port for port in container.get("ports", [])), key


@pytest.mark.slow  # a render of its own beyond the two trees
def test_a_jetson_without_the_nvidia_default_gets_its_runtime_class(
    tmp_path: Path, device_registry: Registry
) -> None:
    tree = render(tmp_path, device_registry, nvidia_runtime_set_default="false", **SIMULATED_JETSON)
    objects = load_tree(tree)
    runtime_class = objects["webapp/RuntimeClass/nvidia"]
    assert runtime_class["handler"] == "nvidia"
    assert "namespace" not in runtime_class["metadata"]  # cluster-scoped
    validate(runtime_class)
    assert webapp_pod(tree)["runtimeClassName"] == "nvidia"


TWO_DEVICES = """
edge:
  hosts:
    device-a: {{ansible_connection: local, edge_registry_push_host: "{a}"}}
    device-b: {{ansible_connection: local, edge_registry_push_host: "{b}"}}
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
"""


@pytest.mark.slow  # a render of its own beyond the two trees
def test_two_devices_build_once_and_each_gets_the_images_in_its_own_registry(tmp_path: Path) -> None:
    """Also a lab's choice: registries without TLS or a password (edge_registry_tls/auth off)."""
    with Registry() as registry_a, Registry() as registry_b:
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(TWO_DEVICES.format(a=registry_a.host, b=registry_b.host))
        result = run_playbook(
            "playbooks/deploy.yml",
            "-i",
            str(inventory),
            extra_vars={
                "edge_runtime": "manifests",
                "edge_manifests_dir": str(tmp_path / "tree"),
                "edge_profile": "nuc",
                "edge_registry_tls": "false",
                "edge_registry_auth": "false",
                **OFFLINE,
            },
        )
        builds = result.stdout.split("TASK [edgeai.appliance.images : Build the images with podman]")
        assert len(builds) == 2, "the build task ran more than once"
        assert builds[1].split("TASK [")[0].count("[device-") == 1, "built for more than one device"
        for host, registry in (("device-a", registry_a), ("device-b", registry_b)):
            assert registry.repositories() == [
                "ai-for-edge/model",
                "ai-for-edge/nginx-rtmp",
                "ai-for-edge/webapp",
            ]
            for key, pod in pod_specs(load_tree(tmp_path / "tree" / host)).items():
                for container in containers(pod):
                    repository, _, digest = container["image"].partition("@")
                    if digest:
                        name = repository.partition("/")[2]
                        assert registry.manifest_digest(name, digest) == digest, f"{host} {key}"


@pytest.mark.slow  # a render of its own beyond the two trees
def test_tags_webapp_redeploys_the_webapp_alone(nuc_tree: Path, device_registry: Registry) -> None:
    result = run_playbook(
        "playbooks/deploy.yml",
        "-i",
        device_inventory(nuc_tree.parent),
        "--tags",
        "webapp",
        extra_vars={
            "edge_runtime": "manifests",
            "edge_manifests_dir": str(nuc_tree.parent),
            "edge_registry_push_host": device_registry.host,
            "edge_profile": "nuc",
            "webapp_loglevel": "DEBUG",
        },
    )
    assert "edgeai.appliance.webapp : Render the webapp objects" in result.stdout
    for other in ("images : Build", "registry : Render", "nginx_rtmp : Render", "images : Push"):
        assert other not in result.stdout, f"--tags webapp ran {other}"
    (app,) = webapp_pod(nuc_tree)["containers"]
    assert env_of(app)["WEB_LOGLEVEL"] == "DEBUG"
    assert "@sha256:" in app["image"]


def tree_files(tree: Path) -> dict[str, str]:
    return {str(path.relative_to(tree)): path.read_text() for path in sorted(tree.rglob("*.yaml"))}


@pytest.mark.slow  # a render of its own beyond the two trees
def test_retrain_without_podman_changes_only_the_model_in_the_tree(
    jetson_tree: Path, device_registry: Registry, sample_photos: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(sample_photos / "biden.jpg", photos / "Joe Biden.jpg")
    before = tree_files(jetson_tree)
    with S3Server() as s3:
        result = run_playbook(
            "playbooks/retrain.yml",
            "-i",
            device_inventory(jetson_tree.parent),
            "--tags",
            "retrain",
            extra_vars={
                "edge_runtime": "manifests",
                "edge_manifests_dir": str(jetson_tree.parent),
                "edge_registry_push_host": device_registry.host,
                "microshift_storage": "hostpath",
                "retrain_photos_dir": str(photos),
                "retrain_work_dir": str(tmp_path / "work"),
                "retrain_s3_endpoint_url": s3.url,
                **OFFLINE,
                **SIMULATED_JETSON,
                **CAMERAS,
            },
            env={
                "AWS_ACCESS_KEY_ID": s3.access_key,
                "AWS_SECRET_ACCESS_KEY": s3.secret_key,
                "PATH": path_without_container_engines(tmp_path / "bin"),
            },
        )
    match = re.search(r"s3://models/(\d{10})/model\.data", result.stdout)
    assert match, result.stdout[-3000:]
    version = match.group(1)
    model_digest = device_registry.manifest_digest("ai-for-edge/model", version)
    # The image was made and pushed through the registry's API, on the device's architecture.
    assert model_digest and "edgeai.appliance.model_image" not in result.stderr
    after = tree_files(jetson_tree)
    changed = sorted(name for name in after if after[name] != before.get(name))
    assert changed == ["webapp/deployment-webapp.yaml"], changed
    old, new = (yaml.safe_load(text["webapp/deployment-webapp.yaml"]) for text in (before, after))
    old_pod, new_pod = old["spec"]["template"]["spec"], new["spec"]["template"]["spec"]
    (init,) = new_pod["initContainers"]
    (app,) = new_pod["containers"]
    assert init["image"] == f"default-registry.cluster.local/ai-for-edge/model@{model_digest}"
    model_sha = hashlib.sha256((tmp_path / "work" / version / "model.data").read_bytes()).hexdigest()
    assert env_of(app)["MODEL_SHA256"] == model_sha
    assert new["metadata"]["annotations"]["edgeai.appliance/model-version"] == version
    # Nothing else: the L4T app image, its settings and every other field stay as deployed.
    assert app["image"].startswith("default-registry.cluster.local/ai-for-edge/webapp-l4t@sha256:")
    assert app["image"] == old_pod["containers"][0]["image"]
    for pod in (old_pod, new_pod):
        pod["initContainers"][0].pop("image")
        for entry in pod["containers"][0]["env"]:
            if entry["name"] == "MODEL_SHA256":
                entry.pop("value")
    for obj in (old, new):
        obj["metadata"]["annotations"].pop("edgeai.appliance/model-version")
        obj["spec"]["template"]["metadata"]["annotations"].pop("edgeai.appliance/model-version")
    assert old == new


def copy_of_the_checkout(destination: Path) -> Path:
    """The project as a fresh clone has it (tracked and new files, nothing ignored: no credentials,
    no build output), with the collection linked as `make setup` links it."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name.decode()
        if source.is_file():
            target = destination / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    link = destination / ".collections" / "ansible_collections" / "edgeai" / "appliance"
    link.parent.mkdir(parents=True)
    link.symlink_to(destination)
    return destination


def nothing_listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow  # a render of its own in a copy of the project
def test_the_readme_gitops_command_works_from_zero(tmp_path: Path) -> None:
    """A GitOps site before Argo CD has deployed its registry: the README's command, as pasted, in
    a fresh copy of the project with nothing listening where the registry will be: the tree names
    the images by tag. Once a registry answers, the same command pushes them and pins digests: that
    is every other render of this module (`render`, against a real registry)."""
    clone = copy_of_the_checkout(tmp_path / "clone")
    assert nothing_listens(30500)  # the registry's NodePort, where the controller pushes
    # As a user runs it from the clone: its ansible.cfg and its .collections link.
    env = {key: value for key, value in ansible_env().items() if key != "ANSIBLE_COLLECTIONS_PATH"}
    env.update(ANSIBLE_CONFIG=str(clone / "ansible.cfg"), ANSIBLE_ROLES_PATH=str(clone / "roles"))
    command = (
        "ansible-playbook playbooks/deploy.yml -i inventories/local"
        " -e edge_runtime=manifests -e edge_manifests_dir=gitops"
    )
    readme = (clone / "README.md").read_text()
    assert command in readme
    # The trees' image names (conftest.TREES_PREFIX) beside the site's settings; the command is the README's.
    (clone / "inventories" / "local" / "group_vars" / "edge" / "zz-tests.yml").write_text(
        f"edge_images_prefix: {TREES_PREFIX}\n"
    )

    result = subprocess.run(command.split(), cwd=clone, env=env, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert "No registry answers at 127.0.0.1:30500 yet" in " ".join(result.stdout.split())
    tree = clone / "gitops" / "localhost"
    webapp = webapp_pod(tree)
    assert webapp["containers"][0]["image"] == "127.0.0.1:5000/ai-for-edge/webapp:0.1.0"
    assert webapp["initContainers"][0]["image"] == "127.0.0.1:5000/ai-for-edge/model:initial"
    for obj in load_tree(tree).values():
        validate(obj)


def test_podman_gives_the_jetson_pod_the_device_group(jetson_tree: Path, tmp_path: Path) -> None:
    """On JetPack the app runs under podman: `kube play` must hand the rendered pod's supplemental
    group to its non-root process, as CRI-O does (here the base image, as a random user)."""
    security = webapp_pod(jetson_tree)["securityContext"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "device-group"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": security,
            "containers": [
                {
                    "name": "id",
                    "image": "localhost/debian:bookworm",
                    "command": ["id", "-G"],
                    "securityContext": {"runAsUser": 1000870000, "allowPrivilegeEscalation": False},
                }
            ],
        },
    }
    kube = tmp_path / "pod.yaml"
    kube.write_text(yaml.safe_dump(pod))
    subprocess.run(["podman", "kube", "play", str(kube)], check=True, capture_output=True)
    try:
        wait_until(
            lambda: (
                subprocess.run(
                    ["podman", "wait", "device-group-id"], capture_output=True, check=False
                ).returncode
                == 0
            ),
            30,
            "the pod's process to end",
        )
        groups = subprocess.run(
            ["podman", "logs", "device-group-id"], capture_output=True, text=True, check=True
        ).stdout.split()
    finally:
        subprocess.run(["podman", "kube", "down", str(kube)], check=False, capture_output=True)
    assert security["supplementalGroups"] == [44]
    assert "44" in groups
