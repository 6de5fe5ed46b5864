"""Validation names the file, the line, the field path and what is expected."""

from __future__ import annotations

import pytest

from echelon_sidecar.config import ConfigError, load_config, load_config_text

from .conftest import CATALOG


def problems_of(text: str, source: str = "x.yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, source)
    return [str(p) for p in info.value.problems if p.is_error]


def test_unknown_key_is_an_error_with_a_suggestion() -> None:
    (problem,) = problems_of("""
task_groups:
  g:
    e1:
      models: [m-openai]
      timout: 30
""" + CATALOG)
    assert problem.startswith("x.yaml:6: error: task_groups.g.e1.timout: unknown key 'timout'")
    assert "did you mean 'timeout'?" in problem


def test_typo_of_a_group_setting_is_not_mistaken_for_a_tier() -> None:
    (problem,) = problems_of("""
task_groups:
  g:
    e1: {models: [m-openai]}
    circuit_breakr: {failure_threshold: 3}
""" + CATALOG)
    assert "unknown key 'circuit_breakr'" in problem and "circuit_breaker" in problem


def test_wrong_type_names_the_expected_type() -> None:
    (problem,) = problems_of("""
task_groups:
  g:
    e1: {models: [m-openai], concurrency_limit: lots}
""" + CATALOG)
    assert "task_groups.g.e1.concurrency_limit" in problem
    assert "'lots' has the wrong type: expected an integer" in problem


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("timeout", "-1", "expected a number > 0"),
        ("concurrency_limit", "0", "expected a number >= 1"),
        ("temperature", "3", "expected a number <= 2"),
    ],
)
def test_out_of_range_numbers_say_the_bound(field: str, value: str, expected: str) -> None:
    (problem,) = problems_of(f"""
task_groups:
  g:
    e1: {{models: [m-openai], {field}: {value}}}
""" + CATALOG)
    assert f"task_groups.g.e1.{field}: {value} is out of range: {expected}" in problem


def test_refill_rate_must_be_positive() -> None:
    (problem,) = problems_of("""
polling_pools:
  p:
    task_groups: [g]
    rate_limiting: {algorithm: token_bucket, bucket_size: 10, refill_rate: 0}
task_groups:
  g: {e1: {models: [m-openai]}}
""" + CATALOG)
    assert "polling_pools.p.rate_limiting.refill_rate: 0 is out of range" in problem


def test_enum_values_are_listed() -> None:
    (problem,) = problems_of("""
polling_pools:
  p: {task_groups: [g], rotation_strategy: sideways}
task_groups:
  g: {e1: {models: [m-openai]}}
""" + CATALOG)
    assert (
        "'sideways' is not allowed: expected 'round_robin', 'least_recently_used' or 'weighted'"
        in problem
    )


def test_dangling_references_are_reported_with_the_closest_name() -> None:
    problems = problems_of("""
task_groups:
  plan_group:
    echelon1: {models: [m-openai]}
    fallback_config: {fallback_groups: [thinkng_group, plan_group.echelon9]}
  thinking_group:
    echelon1: {models: [m-claude]}
polling_pools:
  p: {task_groups: [missing_group]}
workflow_nodes:
  n: {llm_group: plan_group.echelon1, polling_pool: nowhere}
""" + CATALOG)
    text = "\n".join(problems)
    assert (
        "fallback_groups[0]: reference 'thinkng_group' names no task group "
        "(did you mean 'thinking_group'?)"
        in text
    )
    assert "reference 'plan_group.echelon9': group 'plan_group' has no tier 'echelon9'" in text
    assert "polling_pools.p.task_groups[0]: reference 'missing_group' names no task group" in text
    assert "workflow_nodes.n.polling_pool: polling pool 'nowhere' does not exist" in text


def test_underscore_and_dash_are_equivalent_in_references() -> None:
    loaded = load_config_text("""
task_groups:
  thinking_group:
    echelon1: {models: [m-claude]}
polling_pools:
  thinking-pool: {task_groups: [thinking-group.echelon1]}
workflow_nodes:
  n: {llm_group: thinking-group.echelon1, polling_pool: thinking_pool}
""" + CATALOG)
    assert loaded.config.polling_pools


def test_fallback_cycles_are_errors() -> None:
    problems = problems_of("""
task_groups:
  a:
    e1: {models: [m-openai]}
    fallback_config: {fallback_groups: [b]}
  b:
    e1: {models: [m-openai]}
    fallback_config: {fallback_groups: [c]}
  c:
    e1: {models: [m-openai]}
    fallback_config: {fallback_groups: [a]}
""" + CATALOG)
    assert any("fallback cycle: a -> b -> c -> a" in p for p in problems)


def test_tier_references_do_not_make_cycles() -> None:
    load_config_text("""
task_groups:
  a:
    e1: {models: [m-openai]}
    fallback_config: {fallback_groups: [b.e1]}
  b:
    e1: {models: [m-openai]}
    fallback_config: {fallback_groups: [a.e1]}
""" + CATALOG)


def test_missing_model_is_reported_against_the_catalog() -> None:
    (problem,) = problems_of("""
task_groups:
  g:
    e1: {models: [m-openai, m-claud]}
""" + CATALOG)
    assert "task_groups.g.e1.models[1]: model 'm-claud' is not in the model catalog" in problem
    assert "did you mean 'm-claude'?" in problem


def test_no_catalog_at_all_is_one_clear_error() -> None:
    (problem,) = problems_of("""
task_groups:
  g:
    e1: {models: [a, b]}
""")
    assert "no model catalog was given" in problem and "(a, b)" in problem


def test_pool_mixing_task_types_is_a_warning_not_an_error() -> None:
    loaded = load_config_text("""
task_groups:
  fast_group: {e1: {models: [m-openai]}}
  plan_group: {e1: {models: [m-openai]}}
  small_group:
    translation: {models: [m-openai]}
    high_payload: {models: [m-openai]}
  high_payload_group: {e1: {models: [m-openai]}}
polling_pools:
  mixed: {task_groups: [fast_group, plan_group]}
  dedicated: {task_groups: [high_payload_group, small_group.high_payload]}
""" + CATALOG)
    warnings = [str(w) for w in loaded.warnings]
    assert any("polling_pools.mixed" in w and "mixes task types" in w for w in warnings)
    assert not any("polling_pools.dedicated" in w for w in warnings)


def test_node_must_use_a_pool_that_serves_its_group() -> None:
    problems = problems_of("""
task_groups:
  execute_group: {echelon2: {models: [m-openai]}}
  high_payload_group: {e1: {models: [m-openai]}}
polling_pools:
  high_concurrency_pool: {task_groups: [high_payload_group]}
workflow_nodes:
  execution_node:
    llm_group: execute_group.echelon2
    task_type: execute
    polling_pool: high_concurrency_pool
""" + CATALOG)
    text = "\n".join(problems)
    assert "llm_group 'execute_group.echelon2' is not served by polling pool" in text
    assert "task_type 'execute' does not match" in text


def test_names_must_not_collide_across_spellings() -> None:
    (problem,) = problems_of("""
task_groups:
  a_b: {e1: {models: [m-openai]}}
  a-b: {e1: {models: [m-openai]}}
""" + CATALOG)
    assert "task group 'a-b' is declared twice" in problem
    assert "'_' and '-' are the same in names" in problem


def test_names_must_not_collide_across_kinds() -> None:
    (problem,) = problems_of("""
task_groups:
  shared: {e1: {models: [m-openai]}}
polling_pools:
  shared: {task_groups: [shared]}
""" + CATALOG)
    assert "polling pool 'shared' has the same name as task group 'shared'" in problem


def test_duplicate_priorities_and_contradicting_strategies_are_errors() -> None:
    problems = problems_of("""
task_groups:
  g:
    e1: {models: [m-openai], priority: 1}
    e2: {models: [m-openai], priority: 1}
  h:
    e1: {models: [m-openai]}
    fallback_strategy: echelon_down
    fallback_config: {strategy: model_rotate}
""" + CATALOG)
    text = "\n".join(problems)
    assert "share priority 1" in text
    assert "contradicts fallback_config.strategy" in text


def test_rate_limiting_needs_the_parameters_of_its_algorithm() -> None:
    (problem,) = problems_of("""
rate_limiting: {algorithm: sliding_window, bucket_size: 5, refill_rate: 1}
""")
    assert "bucket_size/refill_rate belong to token_bucket" in problem


def test_global_fallback_groups_are_rejected_with_the_reason() -> None:
    (problem,) = problems_of("""
global_fallback: {fallback_groups: [a]}
""")
    assert "global_fallback.fallback_groups is not supported" in problem


def test_manifest_problems_name_the_resource_and_camel_case_fields(write) -> None:
    path = write("k8s/tg.yaml", """
        apiVersion: echelon.dev/v1alpha1
        kind: TaskGroup
        metadata: {name: plan-group}
        spec:
          echelons:
            echelon1: {models: [m-openai], maxRetries: -2}
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = [str(p) for p in info.value.problems if p.is_error and "maxRetries" in str(p)]
    assert (
        "tg.yaml (TaskGroup plan-group):6: error: spec.echelons.echelon1.maxRetries: -2" in problem
    )


def test_invalid_yaml_reports_the_line() -> None:
    (problem,) = problems_of("task_groups:\n  g: [unclosed\n")
    assert problem.startswith("x.yaml:3: error:") and "not valid YAML" in problem


def test_unknown_top_level_key_and_document_kind() -> None:
    (problem,) = problems_of("task_group: {}\n")
    assert "unknown top-level key 'task_group'" in problem and "task_groups" in problem


def test_one_run_lists_schema_and_reference_problems_together() -> None:
    problems = problems_of("""
task_groups:
  g:
    e1:
      models: [m-openai, m-nope]
      timout: 30
    fallback_config:
      fallback_groups: [nowhere]
  h:
    e1: {models: [m-claude]}
    fallback_config: {fallback_groups: [also_nowhere]}
""" + CATALOG)
    joined = "\n".join(problems)
    assert len(problems) == 4, joined
    assert "g.e1.timout: unknown key" in joined
    assert "x.yaml:5: error: task_groups.g.e1.models[1]: model 'm-nope' is not in" in joined
    assert "reference 'nowhere' names no task group" in joined
    assert "reference 'also_nowhere' names no task group" in joined


def test_a_reference_to_a_group_with_schema_errors_is_not_called_dangling() -> None:
    problems = problems_of("""
task_groups:
  g:
    e1: {models: [m-openai]}
    fallback_config: {fallback_groups: [broken]}
  broken: [not, a, mapping]
polling_pools:
  p: {task_groups: [broken, g]}
""" + CATALOG)
    assert len(problems) == 1, problems
    assert "task_groups.broken" in problems[0]


def test_explicit_echelons_key_in_the_source_format_keeps_paths_and_lines() -> None:
    (problem,) = problems_of("""
task_groups:
  g:
    echelons:
      e1:
        models: [m-openai, m-nope]
""" + CATALOG)
    assert problem.startswith(
        "x.yaml:6: error: task_groups.g.echelons.e1.models[1]: model 'm-nope'"
    )


def test_no_warning_comes_from_the_defaults_a_bad_field_was_replaced_with() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("""
task_groups:
  g: {e1: {models: [m-openai, m-claude]}}
polling_pools:
  p: {task_groups: [g], rotation_strategy: sideways, weights: {m-openai: 3, m-claude: 1}}
""" + CATALOG, "x.yaml")
    problems = [str(p) for p in info.value.problems]
    assert len(problems) == 1, problems  # not "weights are only used with ... weighted"
    assert "'sideways' is not allowed" in problems[0]
