"""Loading: the combined file, per-group / per-pool trees and manifests give the same model."""

from __future__ import annotations

from pathlib import Path

import pytest

from echelon_sidecar.config import (
    ConfigError,
    Resolver,
    load_config,
    load_config_text,
)

from .conftest import CATALOG, REPO

COMBINED = """
task_groups:
  thinking_group:
    echelon1:
      models: [m-claude, m-gemini]
      priority: 1
      timeout: 120
      max_retries: 1
      thinking_config: {enabled: true, budget_tokens: 4000}
    echelon2:
      models: [m-openai]
      priority: 2
      timeout: 90
    fallback_config:
      strategy: echelon_down
      max_attempts: 3
      retry_delay: 1.0
polling_pools:
  thinking_pool:
    task_groups: [thinking_group]
    rotation_strategy: round_robin
    fallback_strategy: instance_rotation
    max_instance_attempts: 2
""" + CATALOG


def test_combined_file_tree_and_manifests_load_into_the_same_model(write) -> None:
    combined = write("combined.yaml", COMBINED)
    write("tree/groups/thinking_group.yaml", """
        name: thinking_group
        echelon1:
          models: [m-claude, m-gemini]
          priority: 1
          timeout: 120
          max_retries: 1
          thinking_config: {enabled: true, budget_tokens: 4000}
        echelon2:
          models: [m-openai]
          priority: 2
          timeout: 90
        fallback_config: {strategy: echelon_down, max_attempts: 3, retry_delay: 1.0}
    """)
    write("tree/polling_pools/thinking_pool.yaml", """
        name: thinking_pool
        task_groups: [thinking_group]
        rotation_strategy: round_robin
        fallback_strategy: instance_rotation
        max_instance_attempts: 2
    """)
    write("tree/models.yaml", CATALOG)
    manifests = write(
        "k8s/all.yaml",
        """
        apiVersion: echelon.dev/v1alpha1
        kind: TaskGroup
        metadata: {name: thinking_group}
        spec:
          echelons:
            echelon1:
              models: [m-claude, m-gemini]
              priority: 1
              timeout: 120
              maxRetries: 1
              thinkingConfig: {enabled: true, budgetTokens: 4000}
            echelon2: {models: [m-openai], priority: 2, timeout: 90}
          fallbackConfig: {strategy: echelon_down, maxAttempts: 3, retryDelay: 1.0}
        ---
        apiVersion: echelon.dev/v1alpha1
        kind: PollingPool
        metadata: {name: thinking_pool}
        spec:
          taskGroups: [thinking_group]
          rotationStrategy: round_robin
          fallbackStrategy: instance_rotation
          maxInstanceAttempts: 2
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: globals
          labels: {echelon.dev/config: global}
        data:
          models.yaml: |
            models:
              m-openai: {provider: openai, model: gpt-4o, api_key_env: OPENAI_API_KEY}
              m-openai-mini: {provider: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}
              m-claude:
                provider: anthropic
                model: claude-3-haiku-20240307
                api_key_env: ANTHROPIC_API_KEY
              m-gemini: {provider: gemini, model: gemini-1.5-pro, api_key_env: GEMINI_API_KEY}
    """,
    )
    a = load_config(combined).config
    b = load_config(combined.parent / "tree").config
    c = load_config(manifests).config

    def canon(cfg):
        data = cfg.model_dump(exclude_none=True)
        for group in data["task_groups"].values():
            group.pop("name", None)
        for pool in data["polling_pools"].values():
            pool.pop("name", None)
        return data

    assert canon(a) == canon(b) == canon(c)
    tier = a.task_groups["thinking_group"].echelons["echelon1"]
    assert tier.thinking_config is not None and tier.thinking_config.budget_tokens == 4000


def test_tiers_are_ordered_by_priority_not_declaration() -> None:
    loaded = load_config_text("""
task_groups:
  g:
    later: {models: [m-openai], priority: 2}
    first: {models: [m-claude], priority: 1}
""" + CATALOG)
    assert [n for n, _ in loaded.config.task_groups["g"].ordered_tiers()] == ["first", "later"]


def test_legacy_group_level_strategy_and_breaker_mean_the_same_as_fallback_config() -> None:
    old = load_config_text("""
task_groups:
  g:
    e1: {models: [m-openai]}
    fallback_strategy: provider_failover
    circuit_breaker: {failure_threshold: 7, recovery_time: 30, half_open_requests: 2}
""" + CATALOG)
    new = load_config_text("""
task_groups:
  g:
    e1: {models: [m-openai]}
    fallback_config:
      strategy: provider_failover
      circuit_breaker: {failure_threshold: 7, recovery_time: 30, half_open_requests: 2}
""" + CATALOG)
    a = Resolver(old.config).effective_fallback("g")
    b = Resolver(new.config).effective_fallback("g")
    assert (a.strategy, a.circuit_breaker) == (b.strategy, b.circuit_breaker)
    assert a.circuit_breaker.failure_threshold == 7


def test_global_fallback_fills_only_what_a_group_does_not_set_and_warns() -> None:
    loaded = load_config_text("""
task_groups:
  own:
    e1: {models: [m-openai]}
    fallback_config: {max_attempts: 5}
  bare:
    e1: {models: [m-openai]}
global_fallback:
  max_attempts: 3
  retry_delay: 1.5
  circuit_breaker: {failure_threshold: 9, recovery_time: 10}
""" + CATALOG)
    resolver = Resolver(loaded.config)
    own, bare = resolver.effective_fallback("own"), resolver.effective_fallback("bare")
    assert own.max_attempts == 5 and own.retry_delay == 1.5
    assert bare.max_attempts == 3 and bare.circuit_breaker.failure_threshold == 9
    assert dict(own.origins)["max_attempts"] == "group"
    assert dict(own.origins)["retry_delay"] == "global_fallback"
    assert any("global_fallback is deprecated" in w.message for w in loaded.warnings)


def test_concurrency_levels_accept_the_source_list_form() -> None:
    loaded = load_config_text("""
concurrency_control:
  enabled: true
  levels:
    - group_level: {limit: 1000, queue_size: 10000}
    - node_level: {limit: 50, queue_size: 500}
""")
    levels = loaded.config.concurrency_control.levels
    assert levels["group"].limit == 1000 and levels["node"].queue_size == 500


def test_rate_limiting_accepts_flat_and_nested_parameters() -> None:
    loaded = load_config_text("""
rate_limiting:
  algorithm: sliding_window
  sliding_window: {window_size: 60, max_requests: 10}
polling_pools: {}
""")
    spec = loaded.config.rate_limiting.spec()
    assert (spec.window_size, spec.max_requests) == (60, 10)


def test_configmap_volume_symlinks_are_followed_and_dot_entries_skipped(tmp_path: Path) -> None:
    real = tmp_path / "..2026_11_22_00_00_00.000"
    real.mkdir()
    (real / "config.yaml").write_text(COMBINED)
    (tmp_path / "..data").symlink_to(real.name)
    (tmp_path / "config.yaml").symlink_to("..data/config.yaml")
    loaded = load_config(tmp_path)
    assert list(loaded.config.task_groups) == ["thinking_group"]


def test_every_example_config_in_the_repository_validates() -> None:
    from echelon_sidecar.config import discover_units

    units = discover_units(REPO / "configs")
    assert {u.kind for u in units} >= {"tree", "manifests", "file"}
    for unit in units:
        load_config(unit.path)


def test_version_changes_with_content_only() -> None:
    a = load_config_text(COMBINED).version
    b = load_config_text("# a comment\n" + COMBINED).version
    c = load_config_text(COMBINED.replace("timeout: 90", "timeout: 91")).version
    assert a == b != c


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope")
