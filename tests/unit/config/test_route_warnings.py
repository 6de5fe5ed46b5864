"""Warnings about pools and nodes whose behaviour depends on the request: tiers with different
request settings in one pool or node route, and a weighted pool without any weight."""

from __future__ import annotations

import pytest

from echelon_sidecar.config import load_config, load_config_text

from .conftest import CATALOG, REPO

MIXED_SETTINGS = (
    "request settings"  # "... whose request settings differ" / "differ in request settings"
)
UNWEIGHTED = "no weights are given"

GROUPS = """
task_groups:
  execute_group:
    echelon1: {models: [m-openai], priority: 1, function_calling: required}
    echelon2: {models: [m-claude], priority: 2, function_calling: auto}
  json_group:
    echelon1: {models: [m-openai], priority: 1, response_format: json}
    echelon2: {models: [m-gemini], priority: 2}
  think_group:
    echelon1: {models: [m-claude], priority: 1, thinking_config: {enabled: true}}
    echelon2: {models: [m-gemini], priority: 2, thinking_config: {enabled: false}}
  plain_group:
    echelon1: {models: [m-openai], priority: 1}
    echelon2: {models: [m-openai-mini], priority: 2, function_calling: auto}
"""


def warnings_of(text: str) -> list[str]:
    return [str(w) for w in load_config_text(text + CATALOG, "x.yaml").warnings]


def about(warnings: list[str], where: str, what: str) -> list[str]:
    return [w for w in warnings if f": {where}" in w and what in w]


@pytest.mark.parametrize(("group", "setting", "on", "off"), [
    ("execute_group", "function_calling: required", "execute_group.echelon1",
     "execute_group.echelon2"),
    ("json_group", "response_format: json", "json_group.echelon1", "json_group.echelon2"),
    ("think_group", "thinking_config enabled", "think_group.echelon1", "think_group.echelon2"),
])
def test_pool_mixing_tiers_with_different_request_settings_warns_naming_tiers_and_setting(
        group: str, setting: str, on: str, off: str) -> None:
    warnings = warnings_of(GROUPS + f"""
polling_pools:
  mixed_pool: {{task_groups: [{group}]}}
""")
    (warning,) = about(warnings, "polling_pools.mixed_pool.task_groups", "pool mixes tiers")
    assert "x.yaml:" in warning and "warning:" in warning
    assert f"{setting} on {on} but not on {off}" in warning
    assert "effective rotation therefore depends on the request" in warning


def test_mixed_function_calling_warning_says_a_request_without_tools_skips_that_tier() -> None:
    warnings = warnings_of(GROUPS + """
polling_pools:
  execute_pool: {task_groups: [execute_group]}
""")
    (warning,) = about(warnings, "polling_pools.execute_pool", "pool mixes tiers")
    assert "a request without tools skips the function_calling: required tier's instances" \
        in warning.lower()


def test_pool_of_tiers_with_the_same_request_settings_gets_no_mixed_settings_warning() -> None:
    warnings = warnings_of(GROUPS + """
polling_pools:
  plain_pool: {task_groups: [plain_group]}
  one_tier_pool: {task_groups: [execute_group.echelon1]}
  same_setting_pool: {task_groups: [execute_group.echelon2, plain_group.echelon2]}
""")
    assert not [w for w in warnings if "polling_pools" in w and MIXED_SETTINGS in w]


def test_node_chain_mixing_request_settings_warns_naming_the_node() -> None:
    warnings = warnings_of(GROUPS + """
workflow_nodes:
  exec_node:
    llm_group: plain_group.echelon2
    fallback_groups: [execute_group.echelon1]
""")
    (warning,) = about(warnings, "workflow_nodes.exec_node", "differ in request settings")
    assert "the node's fallback chain" in warning
    assert "function_calling: required on execute_group.echelon1 but not on " \
        "plain_group.echelon2" in warning


def test_node_reports_only_what_its_chain_adds_to_its_pools_own_mix() -> None:
    warnings = warnings_of(GROUPS + """
polling_pools:
  execute_pool: {task_groups: [execute_group]}
workflow_nodes:
  same_node:
    llm_group: execute_group.echelon1
    polling_pool: execute_pool
    fallback_groups: [plain_group.echelon2]
  adds_json_node:
    llm_group: execute_group.echelon1
    polling_pool: execute_pool
    fallback_groups: [json_group.echelon1]
""")
    assert about(warnings, "polling_pools.execute_pool", "pool mixes tiers")
    assert not about(warnings, "workflow_nodes.same_node", "")
    (warning,) = about(warnings, "workflow_nodes.adds_json_node", "differ in request settings")
    assert "pool execute_pool and its fallback chain" in warning
    assert "response_format: json on json_group.echelon1" in warning
    assert "function_calling" not in warning.split(". ")[0]


def test_node_thinking_config_applies_to_every_tier_so_thinking_does_not_differ() -> None:
    warnings = warnings_of(GROUPS + """
workflow_nodes:
  thinking_node:
    llm_group: think_group.echelon1
    thinking_config: {enabled: true, budget_tokens: 4000}
  task_thinking_node:
    llm_group: think_group.echelon1
    task_config: {thinking_config: {enabled: false}}
  plain_node:
    llm_group: think_group.echelon1
""")
    assert not about(warnings, "workflow_nodes.thinking_node", "")
    assert not about(warnings, "workflow_nodes.task_thinking_node", "")
    (warning,) = about(warnings, "workflow_nodes.plain_node", "thinking_config enabled")
    assert "think_group.echelon1 but not on think_group.echelon2" in warning


def test_source_documents_pools_and_nodes_get_the_mixed_settings_warning() -> None:
    combined = [str(w) for w in load_config(REPO / "configs/_task_groups.yaml").warnings]
    for pool, setting in [
        ("single_turn_pool", "function_calling: required"),
        ("single_turn_pool", "response_format: json"),
        ("execute_pool", "function_calling: required on execute_group.echelon1"),
        ("multi_turn_pool", "thinking_config enabled on thinking_group.echelon1"),
    ]:
        assert about(combined, f"polling_pools.{pool}.task_groups", setting), (pool, setting)
    assert about(combined, "workflow_nodes.execution_node", "response_format: json")
    tree = [str(w) for w in load_config(REPO / "configs/llms").warnings]
    assert any("execute_pool.yaml" in w and "pool mixes tiers" in w for w in tree)


def test_weighted_pool_without_any_weight_warns_that_it_behaves_like_round_robin() -> None:
    warnings = warnings_of(GROUPS + """
polling_pools:
  weighted_pool: {task_groups: [plain_group], rotation_strategy: weighted}
""")
    (warning,) = about(warnings, "polling_pools.weighted_pool.rotation_strategy", UNWEIGHTED)
    assert "behaves like round_robin" in warning and "m-openai, m-openai-mini" in warning
    assert "give the pool weights:" in warning and "weight: in the catalog" in warning


@pytest.mark.parametrize("pool", [
    "{task_groups: [plain_group], rotation_strategy: weighted, weights: {m-openai: 3}}",
    "{task_groups: [plain_group], rotation_strategy: round_robin}",
])
def test_weighted_pool_with_pool_weights_or_another_strategy_gets_no_weight_warning(
        pool: str) -> None:
    warnings = warnings_of(GROUPS + f"""
polling_pools:
  weighted_pool: {pool}
""")
    assert not [w for w in warnings if UNWEIGHTED in w]


def test_catalog_weight_of_one_of_the_pools_models_counts_as_a_weight() -> None:
    text = GROUPS + """
polling_pools:
  weighted_pool: {task_groups: [plain_group], rotation_strategy: weighted}
""" + CATALOG.replace("model: gpt-4o-mini,", "model: gpt-4o-mini, weight: 2,")
    assert not [str(w) for w in load_config_text(text).warnings if UNWEIGHTED in str(w)]


def test_seed_high_concurrency_pool_warns_weighted_without_weights() -> None:
    warnings = [str(w) for w in load_config(REPO / "configs/_task_groups.yaml").warnings]
    (warning,) = about(warnings, "polling_pools.high_concurrency_pool", UNWEIGHTED)
    assert "round_robin" in warning
    tree = [str(w) for w in load_config(REPO / "configs/llms").warnings]
    assert not [w for w in tree if UNWEIGHTED in w]  # high_payload_pool gives its weights


def test_weighted_pool_manifest_warning_names_the_camel_case_field() -> None:
    loaded = load_config_text("""
apiVersion: echelon.dev/v1alpha1
kind: TaskGroup
metadata: {name: plain-group}
spec:
  echelons:
    echelon1: {models: [m-openai]}
---
apiVersion: echelon.dev/v1alpha1
kind: PollingPool
metadata: {name: weighted-pool}
spec: {taskGroups: [plain-group], rotationStrategy: weighted}
---
""" + CATALOG, "pools.yaml")
    (warning,) = [str(w) for w in loaded.warnings if UNWEIGHTED in str(w)]
    assert "(PollingPool weighted-pool)" in warning and "spec.rotationStrategy" in warning
