"""Rollout decisions (plugins/module_utils/rollout.py) on recorded API objects of six rollouts."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest

from .conftest import RECORDED, ROLLOUT_PATH

# MicroShift 4.18 ships Kubernetes 1.31.
KUBERNETES_VERSION = "1.31"

CRASHLOOP = "crashloop_during_rolling_update"
IMAGE_PULL = "init_image_pull_failure"
SUCCESS = "successful_rollout"
STALE = "stale_observed_generation"
DEADLINE = "progress_deadline_exceeded"
NEVER_READY = "running_never_ready"


def judge(rollout: ModuleType, snapshot: dict[str, Any], **options: Any) -> Any:
    options.setdefault("elapsed", snapshot["elapsed"])
    return rollout.decide(
        snapshot["deployment"], snapshot["replicasets"], snapshot["pods"], snapshot["events"], **options
    )


def condition(obj: dict[str, Any], condition_type: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == condition_type)


def event_lines(message: str) -> list[str]:
    lines = message.splitlines()
    if "Recent events:" not in lines:
        return []
    start = lines.index("Recent events:") + 1
    return [line for line in lines[start:] if line.startswith("  ")]


@pytest.mark.parametrize("path", sorted(RECORDED.glob("*.yaml")), ids=lambda path: path.stem)
def test_recorded_objects_pass_the_kubernetes_schemas(path: Path, recorded: Any) -> None:
    """Strict schemas refuse unknown fields, status included: the recordings are real API shapes."""
    for index, snapshot in enumerate(recorded(path.stem)):
        objects = [snapshot["deployment"], *snapshot["replicasets"], *snapshot["pods"], *snapshot["events"]]
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                raise AssertionError(
                    f"snapshot {index} {obj['kind']}/{obj['metadata']['name']}: {error}"
                ) from error


@pytest.mark.parametrize("path", sorted(RECORDED.glob("*.yaml")), ids=lambda path: path.stem)
def test_the_client_s_models_give_the_same_decisions(path: Path, recorded: Any, rollout: ModuleType) -> None:
    """The module feeds decide() the client's objects through sanitize_for_serialization: same verdicts."""
    client = pytest.importorskip("kubernetes.client")
    api_client = client.ApiClient()

    def through_client(model: Any, obj: dict[str, Any]) -> dict[str, Any]:
        converted: dict[str, Any] = api_client.sanitize_for_serialization(model.from_dict(obj))
        return converted

    for snapshot in recorded(path.stem):
        converted = {
            "deployment": through_client(client.V1Deployment, snapshot["deployment"]),
            "replicasets": [through_client(client.V1ReplicaSet, rs) for rs in snapshot["replicasets"]],
            "pods": [through_client(client.V1Pod, pod) for pod in snapshot["pods"]],
            "events": [through_client(client.CoreV1Event, event) for event in snapshot["events"]],
            "elapsed": snapshot["elapsed"],
        }
        assert judge(rollout, converted) == judge(rollout, snapshot)


def test_crashloop_is_progressing_until_the_kubelet_backs_off(rollout: ModuleType, recorded: Any) -> None:
    first, first_exit, _ = recorded(CRASHLOOP)
    for snapshot in (first, first_exit):
        decision = judge(rollout, snapshot)
        assert (decision.state, decision.reason) == ("progressing", "AvailableReplicasPending")
        assert decision.replicaset == "webapp-7b4d9c8f6"
        assert decision.pods == ("webapp-7b4d9c8f6-m9vzt",)


def test_crashloop_fails_although_the_deployment_says_available(rollout: ModuleType, recorded: Any) -> None:
    snapshot = recorded(CRASHLOOP)[-1]
    # The trap: the old pod keeps the Deployment Available, with as many available replicas as wanted.
    assert condition(snapshot["deployment"], "Available")["status"] == "True"
    assert snapshot["deployment"]["status"]["availableReplicas"] == snapshot["deployment"]["spec"]["replicas"]

    decision = judge(rollout, snapshot)

    assert (decision.state, decision.reason) == ("failed", "CrashLoopBackOff")
    assert decision.replicaset == "webapp-7b4d9c8f6"
    assert decision.pods == ("webapp-7b4d9c8f6-m9vzt",)
    first_line = decision.message.splitlines()[0]
    assert first_line.startswith(
        "Deployment ai-for-edge/webapp: the new ReplicaSet webapp-7b4d9c8f6 (revision 2)"
    )
    for expected in (
        "pod webapp-7b4d9c8f6-m9vzt container webapp",
        "default-registry.cluster.local/ai-for-edge/webapp:0.1.1",
        "waiting: CrashLoopBackOff: back-off 20s restarting failed container=webapp",
        "last terminated: Error (exit code 1)",
        "restarts: 2",
        "Available=True",
    ):
        assert expected in decision.message
    assert "webapp-6d8f7c9b54-k2xqp" not in decision.message, "the old pod is not the news"


def test_a_failure_names_the_last_eight_events_of_the_rollout_oldest_first(
    rollout: ModuleType, recorded: Any
) -> None:
    snapshot = recorded(CRASHLOOP)[-1]
    lines = event_lines(judge(rollout, snapshot).message)

    assert len(lines) == rollout.EVENTS_IN_MESSAGE < len(snapshot["events"]) - 1
    stamps = [line.split()[0] for line in lines]
    assert stamps == sorted(stamps)
    assert "Warning BackOff: Back-off restarting failed container webapp" in lines[-1]
    assert lines[-1].endswith("(x3)")
    # The rollout's first events are the oldest, and the old pod's probe blip is no part of it.
    assert not any("ScalingReplicaSet" in line or "Unhealthy" in line for line in lines)


def test_an_init_container_that_cannot_be_pulled_fails_the_rollout(
    rollout: ModuleType, recorded: Any
) -> None:
    not_pulled_yet, err_image_pull, back_off = recorded(IMAGE_PULL)
    image = "default-registry.cluster.local/ai-for-edge/model:2501151230"

    assert judge(rollout, not_pulled_yet).state == "progressing"
    for snapshot, reason, detail in (
        (err_image_pull, "ErrImagePull", "manifest unknown"),
        (back_off, "ImagePullBackOff", f'Back-off pulling image "{image}"'),
    ):
        decision = judge(rollout, snapshot)
        assert (decision.state, decision.reason) == ("failed", reason)
        assert decision.pods == ("webapp-84d6c7f9b5-h7kzw",)
        assert f"pod webapp-84d6c7f9b5-h7kzw init container model (image {image}) is waiting: {reason}" in (
            decision.message
        )
        assert detail in decision.message
        assert "Error: ErrImagePull" in decision.message


def test_a_good_rollout_waits_for_the_new_pod_then_for_the_old_one_to_go(
    rollout: ModuleType, recorded: Any
) -> None:
    decisions = [judge(rollout, snapshot) for snapshot in recorded(SUCCESS)]

    assert [(d.state, d.reason) for d in decisions] == [
        ("progressing", "AvailableReplicasPending"),
        ("progressing", "AvailableReplicasPending"),
        ("progressing", "OldReplicasPending"),
        ("complete", "NewReplicaSetAvailable"),
    ]
    done = decisions[-1]
    assert done.replicaset == "webapp-6f9c8b7d45"
    assert done.pods == ("webapp-6f9c8b7d45-w5rlx",)
    assert done.message == (
        "Deployment ai-for-edge/webapp: the new ReplicaSet webapp-6f9c8b7d45 (revision 2) is rolled out: "
        "1 of 1 replicas available"
    )
    assert done.to_dict() == {
        "state": "complete",
        "reason": "NewReplicaSetAvailable",
        "message": done.message,
        "replicaset": "webapp-6f9c8b7d45",
        "pods": ["webapp-6f9c8b7d45-w5rlx"],
    }


def test_details_go_only_into_a_rollout_that_is_not_complete(rollout: ModuleType, recorded: Any) -> None:
    done = judge(rollout, recorded(SUCCESS)[-1], readiness_detail="GET /readyz: HTTP 200")
    assert done.state == "complete"
    assert "Readiness" not in done.message
    assert "Recent events" not in done.message


def test_a_stale_observed_generation_is_not_complete(rollout: ModuleType, recorded: Any) -> None:
    just_applied, caught_up, done = recorded(STALE)
    status = just_applied["deployment"]["status"]
    # Every count and condition describes generation 2, complete.
    assert just_applied["deployment"]["metadata"]["generation"] == 3
    assert status["observedGeneration"] == 2
    assert status["updatedReplicas"] == status["replicas"] == status["availableReplicas"] == 1
    assert condition(just_applied["deployment"], "Progressing")["reason"] == "NewReplicaSetAvailable"

    decision = judge(rollout, just_applied, elapsed=1000.0)
    assert (decision.state, decision.reason) == ("progressing", "ObservedGenerationStale")
    assert (decision.replicaset, decision.pods) == ("", ())
    assert "generation 3" in decision.message

    decision = judge(rollout, caught_up)
    assert (decision.state, decision.reason) == ("progressing", "UpdatedReplicasPending")
    assert decision.replicaset == "webapp-58c6f9d7b4"

    decision = judge(rollout, done)
    assert (decision.state, decision.replicaset) == ("complete", "webapp-58c6f9d7b4")
    assert decision.pods == ("webapp-58c6f9d7b4-b6pkd",)


def test_an_exceeded_progress_deadline_fails_with_the_scheduler_s_reason(
    rollout: ModuleType, recorded: Any
) -> None:
    pending, exceeded = recorded(DEADLINE)

    decision = judge(rollout, pending)
    assert (decision.state, decision.reason) == ("progressing", "AvailableReplicasPending")

    decision = judge(rollout, exceeded)
    assert (decision.state, decision.reason) == ("failed", "ProgressDeadlineExceeded")
    assert decision.pods == ("webapp-9c7d5f8b64-t6gnd",)
    assert 'ReplicaSet "webapp-9c7d5f8b64" has timed out progressing.' in decision.message
    assert "progressDeadlineSeconds (120)" in decision.message
    assert "PodScheduled Unschedulable: 0/1 nodes are available: 1 Insufficient memory." in decision.message
    scheduling = [line for line in event_lines(decision.message) if "FailedScheduling" in line]
    assert len(scheduling) == 1
    assert scheduling[0].startswith(
        "  2025-01-18T16:22:01Z Pod/webapp-9c7d5f8b64-t6gnd: Warning FailedScheduling"
    )
    assert scheduling[0].endswith("(x4)")


def test_a_new_pod_never_ready_fails_after_the_ready_timeout(rollout: ModuleType, recorded: Any) -> None:
    early, late = recorded(NEVER_READY)
    readyz = (
        'GET /readyz on pod webapp-7f5b8d9c46-z8hjq port 5000: HTTP 503 {"ready":false,"reasons":["model"]}'
    )

    assert judge(rollout, early, ready_timeout=300.0).state == "progressing"
    assert judge(rollout, late, ready_timeout=600.0).reason == "AvailableReplicasPending"

    decision = judge(rollout, late, ready_timeout=300.0, readiness_detail=readyz)
    assert (decision.state, decision.reason) == ("failed", "NotReady")
    assert (decision.replicaset, decision.pods) == ("webapp-7f5b8d9c46", ("webapp-7f5b8d9c46-z8hjq",))
    assert "new pod webapp-7f5b8d9c46-z8hjq of the new ReplicaSet webapp-7f5b8d9c46 (revision 2)" in (
        decision.message
    )
    assert "not Ready after 305 s (ready timeout 300 s)" in decision.message
    assert "Ready ContainersNotReady: containers with unready status: [webapp]" in decision.message
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503 (x60)" in decision.message
    assert decision.message.splitlines()[-1] == f"Readiness: {readyz}"


def test_a_terminating_new_pod_neither_fails_nor_counts(rollout: ModuleType, recorded: Any) -> None:
    snapshot = copy.deepcopy(recorded(CRASHLOOP)[-1])
    snapshot["pods"][1]["metadata"]["deletionTimestamp"] = "2025-01-15T12:30:50Z"
    decision = judge(rollout, snapshot)
    assert (decision.state, decision.pods) == ("progressing", ())


def test_the_new_replicaset_is_found_by_owner_name_without_uids(rollout: ModuleType, recorded: Any) -> None:
    snapshot = copy.deepcopy(recorded(CRASHLOOP)[-1])
    del snapshot["deployment"]["metadata"]["uid"]
    for replicaset in snapshot["replicasets"]:
        del replicaset["metadata"]["ownerReferences"][0]["uid"]
    assert judge(rollout, snapshot).replicaset == "webapp-7b4d9c8f6"


def test_replicasets_of_another_deployment_are_not_the_new_one(rollout: ModuleType, recorded: Any) -> None:
    snapshot = recorded(CRASHLOOP)[-1]
    foreign = copy.deepcopy(snapshot["replicasets"][1])
    foreign["metadata"]["name"] = "webapp-canary-7b4d9c8f6"
    foreign["metadata"]["ownerReferences"][0].update(
        name="webapp-canary", uid="11111111-2222-4333-9444-555555555555"
    )
    assert rollout.find_new_replicaset(snapshot["deployment"], [foreign]) is None


def test_without_a_revision_the_highest_revision_is_the_new_replicaset(
    rollout: ModuleType, recorded: Any
) -> None:
    snapshot = copy.deepcopy(recorded(CRASHLOOP)[-1])
    del snapshot["deployment"]["metadata"]["annotations"][rollout.REVISION_ANNOTATION]
    new = rollout.find_new_replicaset(snapshot["deployment"], list(reversed(snapshot["replicasets"])))
    assert new["metadata"]["name"] == "webapp-7b4d9c8f6"


def test_pods_without_owner_references_belong_by_pod_template_hash(
    rollout: ModuleType, recorded: Any
) -> None:
    snapshot = copy.deepcopy(recorded(CRASHLOOP)[-1])
    for pod in snapshot["pods"]:
        del pod["metadata"]["ownerReferences"]
    new_replicaset = snapshot["replicasets"][1]
    owned = rollout.pods_of_replicaset(new_replicaset, snapshot["pods"])
    assert [pod["metadata"]["name"] for pod in owned] == ["webapp-7b4d9c8f6-m9vzt"]


def test_which_pod_the_proxy_asks(rollout: ModuleType, recorded: Any) -> None:
    _, running_unready, _, done = recorded(SUCCESS)
    new_pod = "webapp-6f9c8b7d45-w5rlx"

    unready = rollout.pick_pod(running_unready["pods"], [new_pod], ready=False)
    assert unready["metadata"]["name"] == new_pod
    assert rollout.pick_pod(running_unready["pods"], [new_pod], ready=True) is None

    assert rollout.pick_pod(done["pods"], [new_pod], ready=True)["metadata"]["name"] == new_pod
    assert rollout.pick_pod(done["pods"], [new_pod], ready=False) is None
    # An old pod is never asked, Ready or not.
    assert rollout.pick_pod(done["pods"], ["webapp-6d8f7c9b54-k2xqp"], ready=True) is None
    # Nothing runs in a pod whose init container is not pulled: nothing to ask.
    pull_failure = recorded(IMAGE_PULL)[-1]
    assert rollout.pick_pod(pull_failure["pods"], ["webapp-84d6c7f9b5-h7kzw"], ready=False) is None


@pytest.mark.parametrize(
    ("port", "number"), [("http", 5000), (5000, 5000), ("8080", 8080), ("metrics", None)]
)
def test_ports_are_resolved_by_name_or_number(
    rollout: ModuleType, recorded: Any, port: int | str, number: int | None
) -> None:
    pod = recorded(SUCCESS)[-1]["pods"][1]
    assert rollout.resolve_port(pod, port) == number


def test_proxy_paths_lose_their_leading_slash(rollout: ModuleType) -> None:
    assert rollout.proxy_path("/readyz") == "readyz"
    assert rollout.proxy_path("api/status") == "api/status"


def test_label_selectors_become_query_strings(rollout: ModuleType) -> None:
    selector = {
        "matchLabels": {"app.kubernetes.io/name": "webapp", "app.kubernetes.io/part-of": "edgeai-appliance"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["edge", "lab"]},
            {"key": "canary", "operator": "NotIn", "values": ["true"]},
            {"key": "model", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    assert rollout.label_selector(selector) == (
        "app.kubernetes.io/name=webapp,app.kubernetes.io/part-of=edgeai-appliance,"
        "tier in (edge,lab),canary notin (true),model,!legacy"
    )
    assert rollout.label_selector(None) == ""
    with pytest.raises(ValueError, match="Gt"):
        rollout.label_selector({"matchExpressions": [{"key": "x", "operator": "Gt", "values": ["1"]}]})


def test_events_in_both_api_shapes_sort_by_their_own_time(rollout: ModuleType) -> None:
    core = {
        "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": "BackOff",
        "message": "m",
        "lastTimestamp": "2025-01-15T12:30:41Z",
        "count": 2,
    }
    scheduler = {
        "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": "Scheduled",
        "eventTime": "2025-01-15T12:30:01.200000Z",
        "lastTimestamp": None,
    }
    new_style = {
        "regarding": {"kind": "Pod", "name": "p"},
        "reason": "Pulled",
        "note": "n",
        "eventTime": None,
    }
    new_style["metadata"] = {"creationTimestamp": "2025-01-15T12:30:20Z"}
    other = {
        "involvedObject": {"kind": "Pod", "name": "q"},
        "reason": "X",
        "lastTimestamp": "2025-01-15T12:31:00Z",
    }

    about = rollout.recent_events([core, other, new_style, scheduler], {("Pod", "p")})

    assert [event["reason"] for event in about] == ["Scheduled", "Pulled", "BackOff"]
    assert rollout.format_event(core) == "2025-01-15T12:30:41Z Pod/p: Normal BackOff: m (x2)"


def test_the_decision_logic_needs_only_the_standard_library() -> None:
    tree = ast.parse(ROLLOUT_PATH.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "dataclasses", "datetime", "typing"}


def test_every_fatal_waiting_reason_fails_a_new_pod(rollout: ModuleType, recorded: Any) -> None:
    snapshot = copy.deepcopy(recorded(CRASHLOOP)[-1])
    state = snapshot["pods"][1]["status"]["containerStatuses"][0]["state"]
    for reason in sorted(rollout.FATAL_WAITING_REASONS):
        state["waiting"] = {"reason": reason, "message": f"{reason} happened"}
        decision = judge(rollout, snapshot)
        assert (decision.state, decision.reason) == ("failed", reason)
        assert re.search(rf"is waiting: {reason}: {reason} happened", decision.message)
