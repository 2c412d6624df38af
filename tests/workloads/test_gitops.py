"""GitOps on the manifests runtime: the gitops role's checkout and publish around the trees the
edge_workload role writes, for three devices, against a real Git server (`git daemon`) on loopback.
The Argo CD ApplicationSet it commits is checked against a schema of the fields we use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from git_server import GitDaemon, bare_repository, git
from playbook import run_playbook

SCHEMAS = Path(__file__).parent / "schemas"
DEVICES = ("dev1", "dev2", "dev3")
# dev2's Application deploys to a cluster of its own, as its inventory says.
DEV2_SERVER = "https://dev2.example.com:6443"


def inventory(tmp: Path) -> Path:
    hosts: dict[str, Any] = {name: {"ansible_connection": "local"} for name in DEVICES}
    hosts["dev2"]["edge_argocd_destination_server"] = DEV2_SERVER
    path = tmp / "hosts.yml"
    local = {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    path.write_text(yaml.safe_dump({"devices": {"hosts": hosts, "vars": local}}))
    return path


# What a deploy or retrain does around its writes: check out, write each device's tree (the real
# edge_workload role on the manifests runtime; the object stands for the webapp's Deployment), publish.
PLAYBOOK = [
    {
        "name": "A wave on the manifests runtime with GitOps",
        "vars": {"wave_devices": "{{ ansible_play_hosts | join(', ') }}"},
        "hosts": "devices",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Check out the repository",
                "ansible.builtin.include_role": {"name": "edgeai.appliance.gitops", "tasks_from": "checkout"},
            },
            {
                "name": "Write the device's tree",
                "ansible.builtin.include_role": {
                    "name": "edgeai.appliance.edge_workload",
                    "tasks_from": "apply",
                },
                "vars": {
                    "edge_workload_name": "webapp",
                    "edge_workload_objects": [
                        {
                            "apiVersion": "v1",
                            "kind": "ConfigMap",
                            "metadata": {"name": "model"},
                            "data": {"version": "{{ model_version }}"},
                        }
                    ],
                },
            },
            {
                "name": "Commit and push the wave",
                "ansible.builtin.include_role": {"name": "edgeai.appliance.gitops", "tasks_from": "publish"},
                "vars": {
                    "gitops_wave_hosts": "{{ ansible_play_hosts }}",
                    "gitops_message": "retrain: model {{ model_version }} to {{ wave_devices }}",
                },
            },
            {
                "name": "Keep each device's gitops_commit",
                "ansible.builtin.copy": {
                    "content": "{{ gitops_commit }}",
                    "dest": "{{ facts_dir }}/{{ inventory_hostname }}",
                },
                "delegate_to": "localhost",
            },
        ],
    }
]


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A repository on a git daemon holding the tree of a device of an earlier run (dev9)."""
    base = tmp_path / "served"
    base.mkdir()
    bare = bare_repository(base / "devices.git")
    with GitDaemon(base) as daemon:
        seed = tmp_path / "seed"
        git("clone", "-q", daemon.url("devices.git"), str(seed))
        (seed / "dev9").mkdir()
        (seed / "dev9" / "kustomization.yaml").write_text("resources: []\n")
        git("add", "-A", cwd=seed)
        git("commit", "-q", "-m", "dev9 from an earlier run", cwd=seed)
        git("push", "-q", "origin", "HEAD:main", cwd=seed)
        yield daemon.url("devices.git"), bare


def deploy(tmp: Path, url: str, model: str) -> str:
    playbook = tmp / "wave.yml"
    playbook.write_text(yaml.safe_dump(PLAYBOOK, sort_keys=False))
    facts = tmp / "facts"
    facts.mkdir(exist_ok=True)
    result = run_playbook(
        str(playbook),
        "-i",
        str(inventory(tmp)),
        extra_vars={
            "edge_runtime": "manifests",
            "edge_manifests_dir": str(tmp / "gitops"),
            "edge_gitops_repo": url,
            "edge_argocd_applicationset": "true",
            "model_version": model,
            "facts_dir": str(facts),
        },
    )
    return result.stdout


def commits(bare: Path) -> list[tuple[str, str, list[str]]]:
    """The branch's commits, newest first: (sha, subject, files)."""
    log = git("--git-dir", str(bare), "log", "--format=%x00%H%x01%s", "--name-only", "main")
    found = []
    for entry in log.split("\0")[1:]:
        head, _, files = entry.partition("\n")
        sha, _, subject = head.partition("\x01")
        found.append((sha, subject, sorted(filter(None, files.splitlines()))))
    return found


def applicationset_schema() -> dict[str, Any]:
    """Our schema of the ApplicationSet, its template's spec being the Application's spec."""
    schema: dict[str, Any] = json.loads((SCHEMAS / "argoproj.io-v1alpha1-applicationset.json").read_text())
    application = json.loads((SCHEMAS / "argoproj.io-v1alpha1-application.json").read_text())
    schema["properties"]["spec"]["properties"]["template"]["properties"]["spec"] = application["properties"][
        "spec"
    ]
    return schema


def test_a_wave_is_one_commit_of_its_devices_trees_with_an_applicationset_for_every_tree(
    tmp_path: Path, remote: tuple[str, Path]
) -> None:
    url, bare = remote
    output = " ".join(deploy(tmp_path, url, "2612051330").split())

    ours, seed = commits(bare)
    sha, subject, files = ours
    assert subject == "retrain: model 2612051330 to dev1, dev2, dev3"
    assert seed[1] == "dev9 from an earlier run"
    assert {path.split("/")[0] for path in files} == {*DEVICES, "applicationset.yaml"}
    assert "dev1/webapp/configmap-model.yaml" in files
    assert {(tmp_path / "facts" / name).read_text() for name in DEVICES} == {sha}
    assert f"pushed {sha} to {url} main: retrain: model 2612051330" in output

    appset = yaml.safe_load(git("--git-dir", str(bare), "show", "main:applicationset.yaml"))
    jsonschema.validate(appset, applicationset_schema())
    (generator,) = appset["spec"]["generators"]
    elements = {element["name"]: element for element in generator["list"]["elements"]}
    # The play's devices, and the one an earlier run left in the repository (a --limit keeps it).
    assert sorted(elements) == ["dev1", "dev2", "dev3", "dev9"]
    assert elements["dev2"]["server"] == DEV2_SERVER
    assert elements["dev1"]["server"] == "https://kubernetes.default.svc"
    assert {element["path"] for element in elements.values()} == {"dev1", "dev2", "dev3", "dev9"}
    assert {element["namespace"] for element in elements.values()} == {"ai-for-edge"}
    source = appset["spec"]["template"]["spec"]["source"]
    assert (source["repoURL"], source["targetRevision"], source["path"]) == (url, "main", "{{path}}")


def test_the_schema_refuses_what_argo_cd_would() -> None:
    """The schema is not a formality: a misplaced or missing field fails it."""
    base = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "edgeai-appliance", "namespace": "openshift-gitops"},
        "spec": {
            "generators": [{"list": {"elements": [{"name": "dev1", "path": "dev1"}]}}],
            "template": {
                "metadata": {"name": "{{name}}"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": "git@git.example.com:edge/devices.git", "path": "{{path}}"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": "ai-for-edge"},
                },
            },
        },
    }
    schema = applicationset_schema()
    jsonschema.validate(base, schema)
    no_generators = json.loads(json.dumps(base))
    del no_generators["spec"]["generators"]
    misplaced = json.loads(json.dumps(base))
    misplaced["spec"]["template"]["spec"]["syncOptions"] = ["CreateNamespace=true"]
    bad_list = json.loads(json.dumps(base))
    bad_list["spec"]["generators"] = [{"list": {"items": []}}]
    for wrong in (no_generators, misplaced, bad_list):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema)
