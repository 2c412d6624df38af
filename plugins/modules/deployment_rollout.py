# SPDX-License-Identifier: Apache-2.0
"""Wait for a Deployment's rollout on Kubernetes (MicroShift) and judge it by its new pods."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deployment_rollout
short_description: Wait for a Deployment's rollout and judge it by the new ReplicaSet's pods
version_added: 0.1.0
description:
  - Polls a Deployment, its ReplicaSets and their pods with the C(kubernetes) Python client until the
    rollout is complete, has failed, or O(timeout) seconds have passed.
  - Complete means the controller has observed the current spec, every replica belongs to the new
    ReplicaSet (the Deployment's current revision) and is available, no old replica is left, and the
    C(Progressing) condition says C(NewReplicaSetAvailable). C(Available=True) alone proves nothing
    during a rolling update, because the old ReplicaSet's pods keep it true.
  - Fails as soon as a container or init container of a new pod waits in C(ImagePullBackOff),
    C(ErrImagePull), C(InvalidImageName), C(CrashLoopBackOff), C(CreateContainerConfigError),
    C(CreateContainerError) or C(RunContainerError), when C(Progressing) turns False with
    C(ProgressDeadlineExceeded), or when a new pod is still not Ready after O(timeout) seconds.
  - A failure's message names the new ReplicaSet and pods, their containers' waiting or terminated
    reasons and messages, the last events about them, and what O(readiness_path) answered on an
    un-Ready new pod through the API server's pod proxy.
  - A Deployment that does not exist yet (MicroShift applies C(manifests.d) when it starts) is waited
    for like a rollout that has not started.
  - Never changes anything.
author: edgeai.appliance maintainers (!UNKNOWN)
requirements:
  - kubernetes (the Python client) on the host that runs the module
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the rollout once and reports it without waiting; only a failed rollout fails.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file to reach the API server with.
    type: path
    required: true
  context:
    description:
      - Context of O(kubeconfig) to use; its current context when unset.
    type: str
  namespace:
    description:
      - Namespace of the Deployment.
    type: str
    required: true
  name:
    description:
      - Name of the Deployment.
    type: str
    required: true
  timeout:
    description:
      - Seconds to wait for the rollout to complete. A new pod that is not Ready by then fails the
        rollout with reason C(NotReady).
    type: int
    default: 300
  poll_interval:
    description:
      - Seconds between two reads of the rollout.
    type: int
    default: 2
  readiness_path:
    description:
      - HTTP path asked on an un-Ready new pod, through the pod proxy, when the rollout fails; its answer
        is added to the failure message. A plain path, without a query string.
    type: str
    default: /readyz
  readiness_port:
    description:
      - Container port, by name or number, that O(readiness_path) and O(status_path) are asked on.
    type: raw
    default: http
  status_path:
    description:
      - When set and the rollout is complete, HTTP path asked on a Ready new pod through the pod proxy;
        its JSON answer is returned as RV(app_status). The module fails if it does not answer JSON.
      - A plain path, without a query string.
    type: str
    default: ""
notes:
  - "Run it where the kubeconfig is, usually with C(delegate_to: localhost)."
  - The pod proxy needs the C(get) permission on C(pods/proxy) in the namespace.
seealso:
  - module: kubernetes.core.k8s_info
"""

EXAMPLES = r"""
- name: Wait for the webapp's rollout and read the model version it serves
  edgeai.appliance.deployment_rollout:
    kubeconfig: "{{ edge_kubeconfig }}"
    namespace: ai-for-edge
    name: webapp
    timeout: 300
    status_path: /api/status
  delegate_to: localhost
  register: webapp_rollout

- name: Report what the rollout ended with, without waiting
  edgeai.appliance.deployment_rollout:
    kubeconfig: "{{ edge_kubeconfig }}"
    namespace: ai-for-edge
    name: nginx-rtmp
    readiness_port: 1935
  delegate_to: localhost
  check_mode: true
"""

RETURN = r"""
rollout:
  description: The verdict on the last snapshot read.
  returned: always
  type: dict
  contains:
    state:
      description: C(complete), C(progressing) or C(failed).
      returned: always
      type: str
      sample: failed
    reason:
      description:
        - One word. C(NewReplicaSetAvailable) when complete; a container's waiting reason,
          C(ProgressDeadlineExceeded) or C(NotReady) when failed; what it waits for when progressing
          (C(ObservedGenerationStale), C(WaitingForNewReplicaSet), C(UpdatedReplicasPending),
          C(AvailableReplicasPending), C(OldReplicasPending), C(ProgressingConditionPending), C(Paused));
          C(NotFound) when the Deployment does not exist (in check mode, or still at the timeout).
      returned: always
      type: str
      sample: CrashLoopBackOff
    message:
      description: What was found, for people; on failure with the new pods, recent events and readiness.
      returned: always
      type: str
      sample: "Deployment ai-for-edge/webapp: the new ReplicaSet webapp-7b4d9c8f6 (revision 2) is failing:"
    replicaset:
      description: Name of the new ReplicaSet; empty while it is not known yet.
      returned: always
      type: str
      sample: webapp-7b4d9c8f6
    pods:
      description: Names of the new ReplicaSet's pods that are not terminating.
      returned: always
      type: list
      elements: str
      sample: [webapp-7b4d9c8f6-m9vzt]
app_status:
  description: The JSON a Ready new pod answered at O(status_path).
  returned: when O(status_path) is set and the rollout is complete
  type: dict
  sample: {"model": {"version": "2501151230"}}
elapsed:
  description: Seconds spent reading and waiting.
  returned: always
  type: float
  sample: 42.1
timed_out:
  description: Whether O(timeout) ran out while the rollout was still progressing.
  returned: failure
  type: bool
  sample: false
"""

import json  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.edgeai.appliance.plugins.module_utils.rollout import (  # noqa: E402
    COMPLETE,
    PROGRESSING,
    Decision,
    decide,
    label_selector,
    pick_pod,
    proxy_path,
    resolve_port,
)

KUBERNETES_IMPORT_ERROR: str | None
try:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException
    from urllib3.exceptions import HTTPError
except ImportError:
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()
else:
    KUBERNETES_IMPORT_ERROR = None

ARGUMENT_SPEC = {
    "kubeconfig": {"type": "path", "required": True},
    "context": {"type": "str"},
    "namespace": {"type": "str", "required": True},
    "name": {"type": "str", "required": True},
    "timeout": {"type": "int", "default": 300},
    "poll_interval": {"type": "int", "default": 2},
    "readiness_path": {"type": "str", "default": "/readyz"},
    "readiness_port": {"type": "raw", "default": "http"},
    "status_path": {"type": "str", "default": ""},
}

Snapshot = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]

# The API server restarts with MicroShift: these answers are worth another poll.
TRANSIENT_STATUSES = frozenset({0, 429, 500, 502, 503, 504})
PROXY_REQUEST_TIMEOUT = 5
BODY_IN_MESSAGE = 1000


class Cluster:
    """The API calls the module makes, answering plain API-shaped dicts."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    def _plain(self, obj: Any) -> Any:
        return self.api_client.sanitize_for_serialization(obj)

    def snapshot(self, name: str) -> Snapshot:
        """The Deployment with the ReplicaSets and pods its selector matches."""
        deployment = self._plain(self.apps.read_namespaced_deployment(name=name, namespace=self.namespace))
        selector = label_selector((deployment.get("spec") or {}).get("selector"))
        replicasets = self._plain(
            self.apps.list_namespaced_replica_set(namespace=self.namespace, label_selector=selector)
        )
        pods = self._plain(self.core.list_namespaced_pod(namespace=self.namespace, label_selector=selector))
        return deployment, replicasets.get("items") or [], pods.get("items") or []

    def events(self) -> list[dict[str, Any]]:
        return self._plain(self.core.list_namespaced_event(namespace=self.namespace)).get("items") or []

    def get_from_pod(self, pod: str, port: int, path: str) -> tuple[int, str]:
        """(HTTP status, body) of a GET on the pod's port through the API server's pod proxy."""
        try:
            # Unpreloaded: the answer's own bytes, not the client's guess at a model.
            response = self.core.connect_get_namespaced_pod_proxy_with_path(
                name=f"{pod}:{port}",
                namespace=self.namespace,
                path=proxy_path(path),
                _preload_content=False,
                _request_timeout=PROXY_REQUEST_TIMEOUT,
            )
        except ApiException as error:
            return int(error.status or 0), str(error.body or error.reason or "")
        return int(response.status), response.data.decode("utf-8", "replace")


def describe_error(error: Exception) -> str:
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}: {str(error.body or '').strip()[:BODY_IN_MESSAGE]}"
    return str(error)


def is_transient(error: Exception) -> bool:
    if isinstance(error, ApiException):
        return int(error.status or 0) in TRANSIENT_STATUSES
    return isinstance(error, HTTPError)


def readiness_detail(
    cluster: Cluster, pods: list[dict[str, Any]], decision: Decision, params: dict[str, Any]
) -> str:
    """What readiness_path answers on an un-Ready new pod; empty when none can answer (best effort)."""
    pod = pick_pod(pods, decision.pods, ready=False)
    port = resolve_port(pod, params["readiness_port"]) if pod else None
    if pod is None or port is None:
        return ""
    pod_name = pod["metadata"]["name"]
    try:
        status, body = cluster.get_from_pod(pod_name, port, params["readiness_path"])
    except (HTTPError, OSError, ValueError):
        return ""
    answer = body.strip()[:BODY_IN_MESSAGE]
    return f"GET {params['readiness_path']} on pod {pod_name} port {port}: HTTP {status} {answer}"


def app_status(
    cluster: Cluster, pods: list[dict[str, Any]], decision: Decision, params: dict[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    """(the JSON object status_path answers on a Ready new pod, None) or (None, why there is none)."""
    pod = pick_pod(pods, decision.pods, ready=True)
    port = resolve_port(pod, params["readiness_port"]) if pod else None
    if pod is None or port is None:
        return None, f"no Ready new pod has the port {params['readiness_port']!r}"
    pod_name = pod["metadata"]["name"]
    try:
        status, body = cluster.get_from_pod(pod_name, port, params["status_path"])
        answer = json.loads(body) if status == 200 else None
    except (HTTPError, OSError, ValueError) as error:
        status, body, answer = 0, str(error), None
    if isinstance(answer, dict):
        return answer, ""
    answered = body.strip()[:BODY_IN_MESSAGE]
    return None, f"pod {pod_name} port {port} answered HTTP {status}, not a JSON object: {answered}"


def wait_for_rollout(module: AnsibleModule, cluster: Cluster) -> tuple[Decision, Snapshot | None, float]:
    """Polls until the rollout is decided or the timeout passes; in check mode reads once.

    The snapshot is None while the Deployment does not exist (yet: manifests.d applies it when
    MicroShift starts).
    """
    params = module.params
    timeout, poll_interval = params["timeout"], params["poll_interval"]
    title = f"Deployment {params['namespace']}/{params['name']}"
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        out_of_time = module.check_mode or elapsed >= timeout
        try:
            snapshot = cluster.snapshot(params["name"])
        except (ApiException, HTTPError) as error:
            if isinstance(error, ApiException) and error.status == 404:
                if out_of_time:
                    return Decision(PROGRESSING, "NotFound", f"{title} does not exist"), None, elapsed
            elif out_of_time or not is_transient(error):
                module.fail_json(
                    msg=f"cannot read {title}: {describe_error(error)}", elapsed=round(elapsed, 1)
                )
        else:
            decision = decide(*snapshot, elapsed=elapsed, ready_timeout=timeout)
            if decision.finished or out_of_time:
                return decision, snapshot, elapsed
        # The last poll lands on the deadline, where a new pod still not Ready is a verdict.
        time.sleep(min(poll_interval, max(timeout - elapsed, 0.1)))


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if KUBERNETES_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    params = module.params
    if params["timeout"] < 0 or params["poll_interval"] < 1:
        module.fail_json(msg="timeout must be >= 0 and poll_interval >= 1")
    try:
        api_client = config.new_client_from_config(
            config_file=params["kubeconfig"], context=params["context"]
        )
    except (ConfigException, OSError, ValueError) as error:
        module.fail_json(msg=f"cannot use the kubeconfig {params['kubeconfig']}: {error}")
    # The pod proxy's path (api/status) and pod:port must reach the API server as written, not
    # percent-encoded as the client does with path parameters by default.
    api_client.configuration.safe_chars_for_path_param = "/:"
    cluster = Cluster(api_client, params["namespace"])

    decision, snapshot, elapsed = wait_for_rollout(module, cluster)
    result: dict[str, Any] = {"changed": False, "elapsed": round(elapsed, 1)}
    if decision.state == PROGRESSING and module.check_mode:
        module.exit_json(rollout=decision.to_dict(), **result)
    if snapshot is None:
        message = f"Timed out after {params['timeout']} s (timeout). {decision.message}"
        module.fail_json(msg=message, rollout=decision.to_dict(), timed_out=True, **result)
        return
    deployment, replicasets, pods = snapshot
    if decision.state == COMPLETE:
        if params["status_path"]:
            answer, problem = app_status(cluster, pods, decision, params)
            if answer is None:
                module.fail_json(
                    msg=f"the rollout is complete but GET {params['status_path']} failed: {problem}",
                    rollout=decision.to_dict(),
                    **result,
                )
            result["app_status"] = answer
        module.exit_json(rollout=decision.to_dict(), **result)

    # Failed or out of time: the evidence is read once, not on every poll.
    try:
        events = cluster.events()
    except (ApiException, HTTPError):
        events = []
    detail = readiness_detail(cluster, pods, decision, params) if params["readiness_path"] else ""
    decision = decide(
        deployment,
        replicasets,
        pods,
        events,
        elapsed=elapsed,
        ready_timeout=params["timeout"],
        readiness_detail=detail,
    )
    timed_out = decision.state == PROGRESSING
    message = decision.message
    if timed_out:
        message = f"Timed out after {params['timeout']} s (timeout). {message}"
    module.fail_json(msg=message, rollout=decision.to_dict(), timed_out=timed_out, **result)


if __name__ == "__main__":
    main()
