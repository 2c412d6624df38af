"""A model rollout's two decisions, shared by every runtime: which fields change (the with_model
filter, on the objects a device runs) and whether the app serves the intended model (the
serves_model predicate of module_utils/rollout.py, on /readyz answers recorded from the app)."""

from __future__ import annotations

import copy
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from collection_code import REPO_ROOT, load_by_path

from .conftest import RECORDED

IMAGE = "default-registry.cluster.local/ai-for-edge/model@sha256:" + "b" * 64
SHA = "c" * 64


@pytest.fixture(scope="module")
def with_model() -> Any:
    return load_by_path(
        "edgeai_appliance_with_model", REPO_ROOT / "plugins" / "filter" / "with_model.py"
    ).with_model


@pytest.fixture(scope="module")
def answers() -> dict[str, dict[str, Any]]:
    answers_file = RECORDED / "app" / "readyz.yaml"
    recorded: dict[str, dict[str, Any]] = yaml.safe_load(answers_file.read_text())["answers"]
    return recorded


def played_objects() -> list[dict[str, Any]]:
    """A webapp as a kube file holds it: a Secret, a ConfigMap and the Deployment."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "webapp", "annotations": {"edgeai.appliance/model-version": "2612040900"}},
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        "edgeai.appliance/model-version": "2612040900",
                        "edgeai.appliance/secrets": "abc",
                    }
                },
                "spec": {
                    "initContainers": [
                        {
                            "name": "model",
                            "image": "r/ai-for-edge/model@sha256:" + "a" * 64,
                            "args": ["/model"],
                        }
                    ],
                    "containers": [
                        {
                            "name": "webapp",
                            "image": "r/ai-for-edge/webapp@sha256:" + "d" * 64,
                            "env": [
                                {"name": "WEB_LOGLEVEL", "value": "INFO"},
                                {"name": "MODEL_SHA256", "value": "a" * 64},
                            ],
                        },
                        {"name": "tls", "image": "r/ai-for-edge/nginx@sha256:" + "e" * 64},
                    ],
                },
            }
        },
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "webapp-auth"},
        "data": {"users": "dXNlcg=="},
    }
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "webapp-tls"}, "data": {"a": "b"}}
    return [secret, config, deployment]


def paths_that_differ(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            p
            for key in sorted(set(before) | set(after))
            for p in paths_that_differ(before.get(key), after.get(key), f"{path}/{key}")
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            p
            for index, (b, a) in enumerate(zip(before, after, strict=True))
            for p in paths_that_differ(b, a, f"{path}/{index}")
        ]
    return [] if before == after else [path]


def test_only_the_model_image_its_checksum_and_the_version_change(with_model: Any) -> None:
    before = played_objects()
    after = with_model(before, IMAGE, SHA, "2612051330")
    assert before == played_objects(), "the filter changed its input"
    assert paths_that_differ(before, after) == [
        "/2/metadata/annotations/edgeai.appliance/model-version",
        "/2/spec/template/metadata/annotations/edgeai.appliance/model-version",
        "/2/spec/template/spec/containers/0/env/1/value",
        "/2/spec/template/spec/initContainers/0/image",
    ]
    pod = after[2]["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["image"] == IMAGE
    assert pod["containers"][0]["env"][1] == {"name": "MODEL_SHA256", "value": SHA}
    assert after[2]["metadata"]["annotations"]["edgeai.appliance/model-version"] == "2612051330"


def test_objects_without_a_model_copying_deployment_are_refused_naming_them(with_model: Any) -> None:
    objects = played_objects()[:2]
    with pytest.raises(
        Exception, match=r"0 Deployments copy a model.*Secret/webapp-auth, ConfigMap/webapp-tls"
    ):
        with_model(objects, IMAGE, SHA, "v")
    no_checksum = played_objects()
    no_checksum[2]["spec"]["template"]["spec"]["containers"][0]["env"] = []
    with pytest.raises(Exception, match="MODEL_SHA256"):
        with_model(no_checksum, IMAGE, SHA, "v")


@pytest.mark.parametrize(
    ("case", "intended", "ok", "reason"),
    [
        ("ready", "2612051123", True, "model 2612051123 in service"),
        ("ready", "2612051330", False, "the app serves model 2612051123, not 2612051330"),
        (
            "worker_starting",
            "2612051123",
            False,
            "serves model none, not 2612051123 (not ready: inference worker starting)",
        ),
        ("model_corrupt", "2612051123", False, "not ready: model not loaded: /model/model.data: file sha256"),
        ("no_gpu", "2612051123", False, "serves model 2612051123 but is not ready: FACE_REQUIRE_CUDA=on"),
        ("refused", "2612051123", False, "the app gave no readiness answer (HTTP -1)"),
        ("proxy_error", "2612051123", False, "the app gave no readiness answer (HTTP 502)"),
    ],
)
def test_the_app_serves_the_intended_model_only_when_ready_with_its_version(
    rollout: ModuleType, answers: dict[str, dict[str, Any]], case: str, intended: str, ok: bool, reason: str
) -> None:
    answer = answers[case]
    served = rollout.serves_model(copy.deepcopy(answer["json"]), intended, answer["status"])
    assert served.ok is ok
    assert reason in served.reason, served.reason


def test_an_answer_without_its_status_is_judged_by_its_body(
    rollout: ModuleType, answers: dict[str, Any]
) -> None:
    # MicroShift's deployment_rollout hands over the new pod's body alone.
    assert rollout.serves_model(answers["ready"]["json"], "2612051123").ok
    assert not rollout.serves_model(answers["no_gpu"]["json"], "2612051123").ok


def test_the_recorded_answers_are_what_the_app_answers(answers: dict[str, dict[str, Any]]) -> None:
    """The recordings keep the app's shape: the keys /readyz sends (app/src/edgeface/web.py)."""
    source = (Path(REPO_ROOT) / "app" / "src" / "edgeface" / "web.py").read_text()
    for key in ('"ready"', '"reasons"', '"model": {"version"'):
        assert key in source
    for name, answer in answers.items():
        if answer.get("json") is not None:
            assert set(answer["json"]) >= {"ready", "reasons", "model"}, name
