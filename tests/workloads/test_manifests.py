"""The workload manifests: rendered by the real roles, checked against the Kubernetes schemas.

The microshift runtime sends these very objects to the API (kubernetes.core.k8s), which no
machine here has; the manifests runtime writes them to disk, so we render with it and validate.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from playbook import run_playbook

SCHEMAS = Path(__file__).parent / "schemas"
KUBERNETES_VERSIONS = ("1.26", "1.37")
HTPASSWD = "edge:$2y$05$abcdefghijklmnopqrstuOabcdefghijklmnopqrstuvwxyz01234"


DEVICE_INVENTORY = """
edge:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""


def device_inventory(tmp: Path) -> str:
    """This machine as a device with the roles' defaults (what a site gets unless it overrides)."""
    path = tmp / "hosts.yml"
    path.write_text(DEVICE_INVENTORY)
    return str(path)


def render(tmp: Path, **extra: str) -> Path:
    run_playbook(
        "playbooks/deploy.yml",
        "-i",
        device_inventory(tmp),
        extra_vars={
            "edge_runtime": "manifests",
            "edge_manifests_dir": str(tmp),
            "edge_argocd_application": "true",
            "edge_argocd_repo_url": "https://git.example.com/edge/gitops.git",
            "edge_argocd_repo_path": "devices",
            **extra,
        },
    )
    return tmp / "localhost"


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
def nuc_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("nuc"), edge_profile="nuc")


@pytest.fixture(scope="module")
def jetson_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A Jetson without an LVM volume group: registry on a host directory, with basic auth.
    return render(
        tmp_path_factory.mktemp("jetson"),
        edge_profile="jetson",
        registry_storage="hostpath",
        registry_htpasswd=HTPASSWD,
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


def test_nuc_webapp_is_unprivileged_cpu_hog(nuc_tree: Path) -> None:
    pod = webapp_pod(nuc_tree)
    (app,) = pod["containers"]
    assert "runtimeClassName" not in pod
    assert app["image"] == "default-registry.cluster.local/ai-for-edge/webapp:0.1.0"
    assert env_of(app)["FACE_LOC_MODEL"] == "hog"
    assert env_of(app)["VIDEO_STREAM_URL"] == "rtmp://nginx-rtmp:1935/live/test"
    assert app["securityContext"]["runAsNonRoot"] is True
    assert app["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert set(app["resources"]) == {"requests", "limits"}
    # The model arrives through the initContainer into an emptyDir the app reads.
    (init,) = pod["initContainers"]
    assert init["image"] == "default-registry.cluster.local/ai-for-edge/model:initial"
    assert pod["volumes"] == [{"name": "model", "emptyDir": {"sizeLimit": "64Mi"}}]
    assert env_of(app)["MODEL_FILENAME"] == "/model/model.data"
    assert "hostPort" not in app["ports"][0]


def test_jetson_webapp_uses_the_nvidia_runtime_and_cnn(jetson_tree: Path) -> None:
    pod = webapp_pod(jetson_tree)
    (app,) = pod["containers"]
    assert pod["runtimeClassName"] == "nvidia"
    assert app["image"] == "default-registry.cluster.local/ai-for-edge/webapp-l4t:0.1.0"
    assert env_of(app)["FACE_LOC_MODEL"] == "cnn"
    assert app["securityContext"].get("privileged") is not True


def test_routes_keep_the_original_demo_names(nuc_tree: Path) -> None:
    objects = load_tree(nuc_tree)
    assert objects["webapp/Route/webapp"]["spec"]["host"] == "webapp-ai-for-edge.cluster.local"
    assert objects["registry/Route/registry"]["spec"]["host"] == "default-registry.cluster.local"
    rtmp = objects["nginx-rtmp/Service/nginx-rtmp"]["spec"]
    assert rtmp["type"] == "NodePort"
    assert rtmp["ports"][0]["nodePort"] == 30935


def test_registry_on_a_host_directory_with_auth(jetson_tree: Path) -> None:
    objects = load_tree(jetson_tree)
    assert not any(key.startswith("registry/PersistentVolumeClaim") for key in objects)
    pod = objects["registry/Deployment/registry"]["spec"]["template"]["spec"]
    storage = next(volume for volume in pod["volumes"] if volume["name"] == "storage")
    assert storage["hostPath"]["path"] == "/var/lib/edgeai-appliance/volumes/registry"
    assert env_of(pod["containers"][0])["REGISTRY_AUTH"] == "htpasswd"
    assert "registry/Secret/registry-htpasswd" in objects


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
        },
        check=False,
    )
    assert result.returncode != 0
    assert "nginx_rtmp_node_port" in result.stdout


def test_a_typo_in_the_runtime_names_the_variable(tmp_path: Path) -> None:
    result = run_playbook(
        "playbooks/deploy.yml",
        "-i",
        device_inventory(tmp_path),
        extra_vars={"edge_runtime": "podmann"},
        check=False,
    )
    assert result.returncode != 0
    assert "edge_runtime" in result.stdout
