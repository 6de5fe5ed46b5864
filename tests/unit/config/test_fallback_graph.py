"""The one fallback graph both the sidecar and the operator walk."""

from __future__ import annotations

import yaml

from echelon_sidecar.config import EchelonConfig, FallbackGraph, Resolver, heads

CONFIG = """
task_groups:
  a:
    echelon1: {models: [m]}
    fallback_config: {fallback_groups: [b.echelon1, missing_group.e1], last_resort: c}
  b:
    echelon1: {models: [m]}
    fallback_config: {fallback_groups: [a]}
  c:
    echelon1: {models: [m]}
  lonely:
    echelon1: {models: [m]}
models:
  m: {provider: openai, model: gpt-4o, api_key_env: K}
"""


def _graph() -> FallbackGraph:
    config = EchelonConfig.model_validate(yaml.safe_load(CONFIG))  # no cross-checks
    return FallbackGraph(Resolver(config))


def test_a_walk_expands_each_group_once_and_reports_what_names_nothing() -> None:
    visits = list(_graph().walk([("pool p", "a")]))
    assert [(v.where, v.ref, v.target is not None) for v in visits] == [
        ("pool p", "a", True),
        ("TaskGroup a spec.fallbackConfig.fallbackGroups[0]", "b.echelon1", True),
        ("TaskGroup a spec.fallbackConfig.fallbackGroups[1]", "missing_group.e1", False),
        ("TaskGroup a spec.fallbackConfig.lastResort", "c", True),
    ]  # b's edge back to a is met but not expanded again


def test_reachable_groups_follow_fallback_groups_and_last_resorts() -> None:
    assert _graph().reachable(["b"]) == {"a", "b", "c"}
    assert _graph().reachable(["lonely"]) == {"lonely"}


def test_reaching_walks_the_edges_backwards_missing_groups_included() -> None:
    graph = _graph()
    assert graph.reaching("c") == {"a", "b", "c"}
    assert graph.reaching("missing-group") == {"missing_group", "a", "b"}


def test_a_reference_that_names_nothing_stands_for_itself_and_its_head() -> None:
    resolver = _graph().resolver
    assert heads("missing-group.e1", resolver) == {"missing_group.e1", "missing_group"}
    assert heads("b.echelon1", resolver) == {"b"}
