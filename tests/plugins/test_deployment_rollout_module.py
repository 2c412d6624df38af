"""The deployment_rollout module's documentation says what its argument_spec does.

Read from the file's syntax tree: the module itself imports the kubernetes client and the
collection by its ansible_collections name, neither of which these checks need.
"""

from __future__ import annotations

import ast
from typing import Any

import pytest
import yaml

from .conftest import MODULE_PATH


@pytest.fixture(scope="module")
def module_constants() -> dict[str, Any]:
    tree = ast.parse(MODULE_PATH.read_text())
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in {"DOCUMENTATION", "EXAMPLES", "RETURN", "ARGUMENT_SPEC"}:
                constants[name] = ast.literal_eval(node.value)
    return constants


def test_the_documented_options_are_the_argument_spec(module_constants: dict[str, Any]) -> None:
    documentation = yaml.safe_load(module_constants["DOCUMENTATION"])
    spec = module_constants["ARGUMENT_SPEC"]

    assert documentation["module"] == "deployment_rollout"
    options = documentation["options"]
    assert sorted(options) == sorted(spec)
    for name, option in options.items():
        argument = spec[name]
        assert option["type"] == argument.get("type", "str"), name
        assert option.get("required", False) == argument.get("required", False), name
        assert option.get("default") == argument.get("default"), name
        assert option.get("choices") == argument.get("choices"), name
        assert option.get("elements") == argument.get("elements"), name
        assert option["description"], name


def test_the_examples_use_only_documented_options(module_constants: dict[str, Any]) -> None:
    options = set(yaml.safe_load(module_constants["DOCUMENTATION"])["options"])
    tasks = yaml.safe_load(module_constants["EXAMPLES"])
    assert tasks
    for task in tasks:
        arguments = task["edgeai.appliance.deployment_rollout"]
        assert set(arguments) <= options
        assert {"kubeconfig", "namespace", "name"} <= set(arguments)


def test_the_returned_rollout_has_the_decision_s_fields(
    module_constants: dict[str, Any], rollout: Any
) -> None:
    returned = yaml.safe_load(module_constants["RETURN"])
    fields = set(returned["rollout"]["contains"])
    decision = rollout.Decision(state="complete", reason="NewReplicaSetAvailable", message="m")
    assert fields == set(decision.to_dict())
    assert {"app_status", "elapsed", "timed_out"} <= set(returned)
