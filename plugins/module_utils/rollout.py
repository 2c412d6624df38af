# SPDX-License-Identifier: Apache-2.0
"""Whether a Deployment's rollout is complete, still progressing, or failed.

Pure functions over the API's own JSON shapes (camelCase dicts, as `kubectl get -o json` or
`ApiClient.sanitize_for_serialization` give them), so every decision is unit-tested on recorded
objects; the deployment_rollout module only fetches and polls. Standard library only.

A Deployment's `Available=True` is no verdict on a rollout: with maxUnavailable 0 the old
ReplicaSet keeps it True while the new pods crash. Only the new ReplicaSet's pods tell.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone  # not datetime.UTC: target hosts may run Python < 3.11
from typing import Any

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"

COMPLETE = "complete"
PROGRESSING = "progressing"
FAILED = "failed"

# Waiting reasons that the kubelet retries forever but that only a new image or spec can fix.
FATAL_WAITING_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)

EVENTS_IN_MESSAGE = 8
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)  # noqa: UP017


@dataclasses.dataclass(frozen=True)
class Decision:
    """The verdict on one snapshot of a rollout."""

    state: str
    reason: str
    message: str
    replicaset: str = ""
    pods: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        return self.state != PROGRESSING

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "message": self.message,
            "replicaset": self.replicaset,
            "pods": list(self.pods),
        }


def _dig(obj: Any, *keys: str, default: Any = None) -> Any:
    """obj[k1][k2]… where any missing level (or an explicit null) gives default."""
    for key in keys:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(key)
        if obj is None:
            return default
    return obj


def _name(obj: dict[str, Any]) -> str:
    return str(_dig(obj, "metadata", "name", default=""))


def revision_of(obj: dict[str, Any]) -> int:
    """The revision annotation the deployment controller puts on Deployments and ReplicaSets; 0 if none."""
    value = _dig(obj, "metadata", "annotations", REVISION_ANNOTATION, default="")
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _owned_by(obj: dict[str, Any], owner: dict[str, Any], owner_kind: str) -> bool:
    owner_uid = _dig(owner, "metadata", "uid", default="")
    owner_name = _name(owner)
    for reference in _dig(obj, "metadata", "ownerReferences", default=[]):
        if reference.get("kind") != owner_kind:
            continue
        if owner_uid and reference.get("uid"):
            if reference["uid"] == owner_uid:
                return True
        elif reference.get("name") == owner_name:
            return True
    return False


def find_new_replicaset(
    deployment: dict[str, Any], replicasets: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The ReplicaSet of the Deployment's current revision (the highest revision if it has none yet)."""
    owned = [rs for rs in replicasets if rs and _owned_by(rs, deployment, "Deployment")]
    if not owned:
        return None
    wanted = revision_of(deployment)
    if wanted:
        matching = [rs for rs in owned if revision_of(rs) == wanted]
        return matching[0] if matching else None
    return max(owned, key=revision_of)


def pods_of_replicaset(replicaset: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods the ReplicaSet owns, by ownerReferences or, for pods without any, by pod-template-hash."""
    template_hash = _dig(replicaset, "metadata", "labels", POD_TEMPLATE_HASH_LABEL, default="")
    owned = []
    for pod in pods:
        if not pod:
            continue
        has_replicaset_owner = any(
            reference.get("kind") == "ReplicaSet"
            for reference in _dig(pod, "metadata", "ownerReferences", default=[])
        )
        if has_replicaset_owner:
            if _owned_by(pod, replicaset, "ReplicaSet"):
                owned.append(pod)
        elif template_hash and _dig(pod, "metadata", "labels", POD_TEMPLATE_HASH_LABEL) == template_hash:
            owned.append(pod)
    return sorted(owned, key=_name)


def _is_terminating(pod: dict[str, Any]) -> bool:
    return bool(_dig(pod, "metadata", "deletionTimestamp"))


def _condition(obj: dict[str, Any], condition_type: str) -> dict[str, Any]:
    for condition in _dig(obj, "status", "conditions", default=[]):
        if condition.get("type") == condition_type:
            found: dict[str, Any] = condition
            return found
    return {}


def is_pod_ready(pod: dict[str, Any]) -> bool:
    return _condition(pod, "Ready").get("status") == "True"


def _container_statuses(pod: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(kind, status) of every container, init containers first: a failing one is why the others wait."""
    return [
        ("init container", status) for status in _dig(pod, "status", "initContainerStatuses", default=[])
    ] + [("container", status) for status in _dig(pod, "status", "containerStatuses", default=[])]


def _has_running_container(pod: dict[str, Any]) -> bool:
    return any(_dig(status, "state", "running") is not None for _kind, status in _container_statuses(pod))


def _describe_state(state: dict[str, Any] | None) -> str:
    state = state or {}
    if state.get("waiting") is not None:
        waiting = state["waiting"]
        reason = waiting.get("reason") or "waiting"
        return f"waiting: {reason}: {waiting['message']}" if waiting.get("message") else f"waiting: {reason}"
    if state.get("terminated") is not None:
        terminated = state["terminated"]
        text = (
            f"terminated: {terminated.get('reason') or 'Terminated'} (exit code {terminated.get('exitCode')})"
        )
        return f"{text}: {terminated['message'].strip()}" if terminated.get("message") else text
    if state.get("running") is not None:
        return "running"
    return "no state yet"


def _describe_container(kind: str, status: dict[str, Any]) -> str:
    state = _describe_state(status.get("state"))
    text = f"{kind} {status.get('name')} (image {status.get('image')}) is {state}"
    last = _dig(status, "lastState")
    if last and last.get("terminated"):
        text += f"; last {_describe_state(last)}"
    if status.get("restartCount"):
        text += f"; restarts: {status['restartCount']}"
    return text


def _container_failures(pods: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(reason, description) for every container of these pods stuck in a fatal waiting reason."""
    failures = []
    for pod in pods:
        for kind, status in _container_statuses(pod):
            reason = _dig(status, "state", "waiting", "reason", default="")
            if reason in FATAL_WAITING_REASONS:
                failures.append((reason, f"pod {_name(pod)} {_describe_container(kind, status)}"))
    return failures


def _describe_pod(pod: dict[str, Any]) -> str:
    phase = _dig(pod, "status", "phase", default="Unknown")
    parts = [f"{_name(pod)}: {phase}, {'Ready' if is_pod_ready(pod) else 'not Ready'}"]
    for condition in _dig(pod, "status", "conditions", default=[]):
        # ContainersReady only repeats what Ready says.
        if condition.get("type") == "ContainersReady":
            continue
        if condition.get("status") != "True" and (condition.get("reason") or condition.get("message")):
            detail = ": ".join(
                str(part) for part in (condition.get("reason"), condition.get("message")) if part
            )
            parts.append(f"{condition.get('type')} {detail}")
    parts.extend(
        f"{kind} {status.get('name')} {_describe_state(status.get('state'))}"
        for kind, status in _container_statuses(pod)
    )
    return "; ".join(parts)


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        return _EARLIEST
    try:
        # fromisoformat takes a trailing Z only from Python 3.11 on.
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return _EARLIEST
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)  # noqa: UP017


def _event_time(event: dict[str, Any]) -> datetime:
    for value in (
        event.get("lastTimestamp"),
        _dig(event, "series", "lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        _dig(event, "metadata", "creationTimestamp"),
    ):
        parsed = _parse_time(value)
        if parsed != _EARLIEST:
            return parsed
    return _EARLIEST


def _event_subject(event: dict[str, Any]) -> tuple[str, str]:
    """(kind, name) of the object the event is about, in core/v1 or events.k8s.io/v1 shape."""
    subject = event.get("involvedObject") or event.get("regarding") or {}
    return str(subject.get("kind", "")), str(subject.get("name", ""))


def recent_events(
    events: list[dict[str, Any]], subjects: set[tuple[str, str]], limit: int = EVENTS_IN_MESSAGE
) -> list[dict[str, Any]]:
    """The last `limit` events about these (kind, name) objects, oldest first."""
    about = [event for event in events if event and _event_subject(event) in subjects]
    return sorted(about, key=_event_time)[-limit:]


def format_event(event: dict[str, Any]) -> str:
    kind, name = _event_subject(event)
    when = _event_time(event)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ") if when != _EARLIEST else "-"
    count = event.get("count") or _dig(event, "series", "count", default=0)
    text = f"{stamp} {kind}/{name}: {event.get('type', 'Normal')} {event.get('reason', '')}: "
    text += str(event.get("message") or event.get("note") or "").strip()
    return f"{text} (x{count})" if count and count > 1 else text


def label_selector(selector: dict[str, Any] | None) -> str:
    """A LabelSelector object as the label_selector query string the list calls take."""
    selector = selector or {}
    terms = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = ",".join(expression.get("values") or [])
        if operator == "In":
            terms.append(f"{key} in ({values})")
        elif operator == "NotIn":
            terms.append(f"{key} notin ({values})")
        elif operator == "Exists":
            terms.append(key)
        elif operator == "DoesNotExist":
            terms.append(f"!{key}")
        else:
            raise ValueError(f"unknown label selector operator {operator!r}")
    return ",".join(terms)


def resolve_port(pod: dict[str, Any], port: int | str) -> int | None:
    """A container port name (or number) as the number the pod proxy needs; None if there is no such port."""
    if isinstance(port, int):
        return port
    if str(port).isdigit():
        return int(port)
    for container in _dig(pod, "spec", "containers", default=[]):
        for container_port in container.get("ports") or []:
            if container_port.get("name") == port:
                return int(container_port["containerPort"])
    return None


def pick_pod(
    pods: list[dict[str, Any]], names: list[str] | tuple[str, ...], *, ready: bool
) -> dict[str, Any] | None:
    """The first named pod that is Ready (ready=True), or Running with a live container but not Ready.

    These are the pods whose HTTP endpoints can answer through the pod proxy.
    """
    for pod in sorted(pods, key=_name):
        if _name(pod) not in names or _is_terminating(pod):
            continue
        if ready and is_pod_ready(pod):
            return pod
        if not ready and not is_pod_ready(pod) and _has_running_container(pod):
            return pod
    return None


def proxy_path(path: str) -> str:
    """The pod proxy URL already ends in /proxy/: the path goes without its leading slash."""
    return path.lstrip("/")


def _int_field(obj: dict[str, Any], *keys: str) -> int:
    """Replica counts: the API omits the zeros."""
    return int(_dig(obj, *keys, default=0))


@dataclasses.dataclass(frozen=True)
class _Rollout:
    """What every message about one snapshot is told from."""

    title: str
    deployment_name: str
    replicaset: dict[str, Any] | None
    new_pods: list[dict[str, Any]]
    events: list[dict[str, Any]]
    readiness_detail: str

    def verdict(self, state: str, reason: str, summary: str, details: list[str] | None = None) -> Decision:
        lines = [f"{self.title}: {summary}", *(details or [])]
        if state != COMPLETE:
            lines.extend(self._evidence())
        return Decision(
            state=state,
            reason=reason,
            message="\n".join(lines),
            replicaset=_name(self.replicaset) if self.replicaset else "",
            pods=tuple(_name(pod) for pod in self.new_pods),
        )

    def _evidence(self) -> list[str]:
        lines = []
        if self.new_pods:
            lines.append("New pods:")
            lines.extend(f"  {_describe_pod(pod)}" for pod in self.new_pods)
        subjects = {("Deployment", self.deployment_name)}
        if self.replicaset:
            subjects.add(("ReplicaSet", _name(self.replicaset)))
        subjects.update(("Pod", _name(pod)) for pod in self.new_pods)
        about = recent_events(self.events, subjects)
        if about:
            lines.append("Recent events:")
            lines.extend(f"  {format_event(event)}" for event in about)
        if self.readiness_detail:
            lines.append(f"Readiness: {self.readiness_detail.strip()}")
        return lines


def decide(
    deployment: dict[str, Any],
    replicasets: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    events: list[dict[str, Any]] | None = None,
    *,
    elapsed: float = 0.0,
    ready_timeout: float = 300.0,
    readiness_detail: str = "",
) -> Decision:
    """Judge one snapshot of a rollout.

    complete: the controller saw the current spec, every replica is of the new ReplicaSet and
    available, none of the old is left, and Progressing says NewReplicaSetAvailable.
    failed: Progressing is ProgressDeadlineExceeded, a new pod's container is stuck in a reason
    only a new image or spec fixes, or a new pod is still not Ready after ready_timeout seconds.
    progressing: anything else, with the reason naming what it waits for.

    events and readiness_detail only add to the message of a rollout that is not complete.
    """
    name = _name(deployment)
    namespace = _dig(deployment, "metadata", "namespace", default="")
    title = f"Deployment {namespace}/{name}" if namespace else f"Deployment {name}"
    generation = _int_field(deployment, "metadata", "generation")
    observed = _int_field(deployment, "status", "observedGeneration")
    if observed < generation:
        # The status and the revision annotation still describe the previous spec.
        stale = _Rollout(title, name, None, [], events or [], readiness_detail)
        summary = f"waiting for the controller to observe generation {generation} (status is of {observed})"
        return stale.verdict(PROGRESSING, "ObservedGenerationStale", summary)

    new_replicaset = find_new_replicaset(deployment, replicasets)
    owned_pods = pods_of_replicaset(new_replicaset, pods) if new_replicaset else []
    # A terminating pod is on its way out: it neither serves the rollout nor fails it.
    new_pods = [pod for pod in owned_pods if not _is_terminating(pod)]
    rollout = _Rollout(title, name, new_replicaset, new_pods, events or [], readiness_detail)
    new_label = "the new ReplicaSet"
    if new_replicaset:
        new_label = f"the new ReplicaSet {_name(new_replicaset)} (revision {revision_of(new_replicaset)})"
    old_pods_note = []
    if _condition(deployment, "Available").get("status") == "True":
        old_pods_note.append(
            "The Deployment says Available=True: that is the old ReplicaSet's pods, not this rollout."
        )

    failures = _container_failures(new_pods)
    if failures:
        details = [f"  {description}" for _reason, description in failures]
        return rollout.verdict(FAILED, failures[0][0], f"{new_label} is failing:", details + old_pods_note)

    progressing = _condition(deployment, "Progressing")
    if progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
        deadline = _dig(deployment, "spec", "progressDeadlineSeconds")
        summary = f"no progress within progressDeadlineSeconds ({deadline}): {progressing.get('message', '')}"
        return rollout.verdict(FAILED, "ProgressDeadlineExceeded", summary, old_pods_note)

    unready = [
        pod
        for pod in new_pods
        if not is_pod_ready(pod) and _dig(pod, "status", "phase") not in ("Succeeded", "Failed")
    ]
    if unready and elapsed >= ready_timeout:
        names = ", ".join(_name(pod) for pod in unready)
        summary = f"new pod {names} of {new_label} not Ready after {elapsed:.0f} s"
        summary += f" (ready timeout {ready_timeout:.0f} s)"
        return rollout.verdict(FAILED, "NotReady", summary, old_pods_note)

    if _dig(deployment, "spec", "paused"):
        return rollout.verdict(PROGRESSING, "Paused", "the rollout is paused (spec.paused)")
    if new_replicaset is None:
        summary = f"waiting for the ReplicaSet of revision {revision_of(deployment) or '(none yet)'}"
        return rollout.verdict(PROGRESSING, "WaitingForNewReplicaSet", summary)

    desired = int(_dig(deployment, "spec", "replicas", default=1))
    updated = _int_field(deployment, "status", "updatedReplicas")
    replicas = _int_field(deployment, "status", "replicas")
    available = _int_field(deployment, "status", "availableReplicas")
    new_available = _int_field(new_replicaset, "status", "availableReplicas")
    # The new ReplicaSet's own availability comes before the old pods: it is why they are kept.
    if updated < desired:
        summary = f"{updated} of {desired} replicas updated to {new_label}"
        return rollout.verdict(PROGRESSING, "UpdatedReplicasPending", summary)
    if new_available < desired:
        summary = f"{new_available} of {desired} pods of {new_label} available"
        return rollout.verdict(PROGRESSING, "AvailableReplicasPending", summary)
    if replicas > updated:
        summary = f"{replicas - updated} old replica(s) pending termination"
        return rollout.verdict(PROGRESSING, "OldReplicasPending", summary)
    if available < desired or replicas != desired:
        summary = f"{available} of {desired} replicas available ({replicas} exist)"
        return rollout.verdict(PROGRESSING, "AvailableReplicasPending", summary)
    if progressing.get("reason") != "NewReplicaSetAvailable":
        reported = progressing.get("reason") or "not reported yet"
        summary = f"Progressing is {reported}, not NewReplicaSetAvailable"
        return rollout.verdict(PROGRESSING, "ProgressingConditionPending", summary)

    summary = f"{new_label} is rolled out: {available} of {desired} replicas available"
    return rollout.verdict(COMPLETE, "NewReplicaSetAvailable", summary)


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """Whether a device's app serves the model a rollout intended, and why not."""

    ok: bool
    version: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def serves_model(answer: Any, intended: str, status: int | None = None) -> ServedModel:
    """Judge the app's /readyz answer (its JSON body; `status` its HTTP code when known).

    The rollout is done only when the app answers, is ready and names the intended version: a
    ready app with another version is the old pod (or a rollout that never happened), a not ready
    one with the intended version is the new pod failing (its reasons say why). Both runtimes ask
    this question the same way: podman of the device's loopback, MicroShift through the new pod.
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("model"), dict):
        detail = f" (HTTP {status})" if status else ""
        return ServedModel(False, "", f"the app gave no readiness answer{detail}")
    version = str(answer["model"].get("version") or "")
    reasons = [str(reason) for reason in answer.get("reasons") or []]
    ready = bool(answer.get("ready", not reasons)) and status in (None, 200)
    if version != intended:
        why = f" (not ready: {'; '.join(reasons)})" if reasons else ""
        return ServedModel(False, version, f"the app serves model {version or 'none'}, not {intended}{why}")
    if not ready:
        why = "; ".join(reasons) or f"HTTP {status}"
        return ServedModel(False, version, f"the app serves model {intended} but is not ready: {why}")
    return ServedModel(True, version, f"model {intended} in service")


# A fleet rolls out in waves (playbooks/waves.yml): a play per wave, at most this many; the last
# one takes every device left.
MAX_WAVES = 10

RESULTS_OK = ("updated", "unchanged", "deployed")
RESULT_NOT_REACHED = "not reached"


def _wave_size(entry: Any, total: int) -> int:
    text = str(entry).strip()
    try:
        if text.endswith("%"):
            return max(1, int(total * float(text[:-1]) / 100))
        size = int(text)
    except ValueError:
        raise ValueError(
            f"edge_rollout_waves: {entry!r} is neither a number of devices nor a percentage"
        ) from None
    if size < 1:
        raise ValueError(f"edge_rollout_waves: {entry!r} is not a wave (1 device or more)")
    return size


def plan_waves(hosts: list[str], waves: list[Any]) -> dict[str, int]:
    """Each host's wave (1, 2, …), as Ansible's `serial` cuts a list: an entry is a number of hosts
    or a percentage of all of them (at least 1); the last entry repeats until every host has a
    wave; the MAX_WAVES-th wave takes the rest."""
    if not isinstance(waves, list) or not waves:
        raise ValueError(
            f"edge_rollout_waves: {waves!r} is not a list of wave sizes, e.g. [1, '25%', '100%']"
        )
    sizes = [_wave_size(entry, len(hosts)) for entry in waves]
    plan: dict[str, int] = {}
    start = 0
    for wave in range(1, MAX_WAVES + 1):
        if start >= len(hosts):
            break
        size = len(hosts) - start if wave == MAX_WAVES else sizes[min(wave, len(sizes)) - 1]
        plan.update({host: wave for host in hosts[start : start + size]})
        start += size
    return plan


def wave_verdict(results: list[str], max_fail_percentage: float) -> dict[str, Any]:
    """Whether the waves after this one go on: the share of its devices that failed must not pass
    max_fail_percentage (0: any failure stops them)."""
    done = [result for result in results if result != RESULT_NOT_REACHED]
    failed = [result for result in done if result not in RESULTS_OK]
    share = 100.0 * len(failed) / len(done) if done else 0.0
    stop = share > float(max_fail_percentage)
    reason = (
        f"{len(failed)} of {len(done)} devices failed ({share:.0f} %, edge_rollout_max_fail_percentage "
        f"{float(max_fail_percentage):g}): the waves after this one are stopped"
        if stop
        else ""
    )
    return {"stop": stop, "failed": len(failed), "devices": len(done), "reason": reason}
