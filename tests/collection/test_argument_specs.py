"""Every task file one role or playbook includes from another role (`tasks_from:`) has its entry in
that role's meta/argument_specs.yml: the entry point is declared (types, required, descriptions),
ansible-doc -t role renders it, and Ansible validates its inputs at include time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
INCLUDE_ACTIONS = {
    f"{prefix}{verb}_role"
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for verb in ("include", "import")
}
# The values a templated tasks_from can take: "model-in-service-{{ edge_runtime }}" is one entry per runtime.
TEMPLATE_VALUES = {"edge_runtime": ("podman", "microshift", "manifests")}
COLLECTION = "edgeai.appliance."


def tasks(node: Any) -> Iterator[dict[str, Any]]:
    """Every task of a task list or playbook, those in blocks and plays included."""
    if isinstance(node, list):
        for item in node:
            yield from tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from tasks(node.get(key))


def expand(tasks_from: str) -> list[str]:
    """A tasks_from with its templates expanded over their known values (one name if none)."""
    match = re.search(r"\{\{\s*(\w+)\s*\}\}", tasks_from)
    if not match:
        if "{" in tasks_from:
            raise ValueError(f"tasks_from {tasks_from!r}: a template the check cannot expand")
        return [tasks_from.removesuffix(".yml").removesuffix(".yaml")]
    if match.group(1) not in TEMPLATE_VALUES:
        raise ValueError(
            f"tasks_from {tasks_from!r}: no known values for {match.group(1)} (add them to TEMPLATE_VALUES)"
        )
    return [
        name
        for value in TEMPLATE_VALUES[match.group(1)]
        for name in expand(tasks_from[: match.start()] + value + tasks_from[match.end() :])
    ]


def included_entry_points(root: Path = REPO_ROOT) -> dict[tuple[str, str], list[str]]:
    """(role, entry point) -> the files that include it, for every tasks_from in roles/ and playbooks/."""
    found: dict[tuple[str, str], list[str]] = {}
    files = sorted(
        [
            *root.glob("roles/*/tasks/**/*.yml"),
            *root.glob("roles/*/handlers/*.yml"),
            *root.glob("playbooks/*.yml"),
        ]
    )
    for path in files:
        for task in tasks(yaml.safe_load(path.read_text())):
            # playbooks/waves.yml's wave plays include the role and tasks their importer names.
            wave_work = task.get("vars") or {} if "import_playbook" in str(task) else {}
            if "waves_role" in wave_work:
                role = str(wave_work["waves_role"]).removeprefix(COLLECTION)
                found.setdefault((role, str(wave_work["waves_tasks"])), []).append(
                    str(path.relative_to(root))
                )
            for action in INCLUDE_ACTIONS & task.keys():
                args = task[action]
                if (
                    not isinstance(args, dict)
                    or "tasks_from" not in args
                    or args["name"] == "{{ waves_role }}"
                ):
                    continue
                role = str(args["name"]).removeprefix(COLLECTION)
                for entry in expand(str(args["tasks_from"])):
                    found.setdefault((role, entry), []).append(str(path.relative_to(root)))
    return found


def missing_entries(root: Path = REPO_ROOT) -> list[str]:
    """One message per included entry point without its argument_specs entry (or without its task file)."""
    problems = []
    for (role, entry), callers in sorted(included_entry_points(root).items()):
        role_dir = root / "roles" / role
        specs_file = role_dir / "meta" / "argument_specs.yml"
        specs = yaml.safe_load(specs_file.read_text())["argument_specs"] if specs_file.exists() else {}
        if not (role_dir / "tasks" / f"{entry}.yml").exists():
            problems.append(f"{role}: {entry}: no tasks/{entry}.yml (included by {', '.join(callers)})")
        if entry not in specs:
            where = f"roles/{role}/meta/argument_specs.yml"
            problems.append(f"{role}: {entry}: no entry in {where} (included by {', '.join(callers)})")
    return problems


def test_every_included_task_file_has_its_argument_specs_entry() -> None:
    assert missing_entries() == []


def test_the_known_entry_points_are_found() -> None:
    found = included_entry_points()
    for known in [
        ("edge_workload", "image"),
        ("edge_workload", "pull"),
        ("edge_workload", "secret"),
        ("edge_workload", "apply"),
        ("edge_workload", "reset"),
        ("edge_hosts", "reset"),
        ("microshift", "reset"),
        ("images", "push"),
        ("webapp", "model-in-service-podman"),
        ("webapp", "model-in-service-microshift"),
        ("webapp", "model-in-service-manifests"),
    ]:
        assert known in found, known


def test_the_check_names_the_role_and_entry_point_without_an_entry(tmp_path: Path) -> None:
    (tmp_path / "roles" / "webapp" / "meta").mkdir(parents=True)
    (tmp_path / "roles" / "webapp" / "tasks").mkdir()
    (tmp_path / "roles" / "webapp" / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main: {options: {}}\n  model-in-service-podman: {options: {}}\n"
    )
    for runtime in TEMPLATE_VALUES["edge_runtime"]:
        (tmp_path / "roles" / "webapp" / "tasks" / f"model-in-service-{runtime}.yml").write_text("---\n[]\n")
    (tmp_path / "roles" / "retrain" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "retrain" / "tasks" / "main.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Read the model in service",
                    "block": [
                        {
                            "ansible.builtin.include_role": {
                                "name": "edgeai.appliance.webapp",
                                "tasks_from": "model-in-service-{{ edge_runtime }}",
                            }
                        }
                    ],
                }
            ]
        )
    )
    assert missing_entries(tmp_path) == [
        "webapp: model-in-service-manifests: no entry in roles/webapp/meta/argument_specs.yml"
        " (included by roles/retrain/tasks/main.yml)",
        "webapp: model-in-service-microshift: no entry in roles/webapp/meta/argument_specs.yml"
        " (included by roles/retrain/tasks/main.yml)",
    ]


def test_a_template_the_check_cannot_expand_is_an_error() -> None:
    with pytest.raises(ValueError, match="edge_profile_name"):
        expand("setup-{{ edge_profile_name }}")


@pytest.mark.parametrize(
    "path", sorted(REPO_ROOT.glob("roles/*/meta/argument_specs.yml")), ids=lambda p: p.parts[-3]
)
def test_every_entry_point_has_a_task_file_and_typed_options(path: Path) -> None:
    role_dir = path.parent.parent
    for entry, spec in yaml.safe_load(path.read_text())["argument_specs"].items():
        assert (role_dir / "tasks" / f"{entry}.yml").exists(), (
            f"{role_dir.name}: {entry}: no tasks/{entry}.yml"
        )
        assert spec.get("short_description"), f"{role_dir.name}: {entry}: no short_description"
        for name, option in (spec.get("options") or {}).items():
            assert option.get("type") and option.get("description"), f"{role_dir.name}: {entry}: {name}"
