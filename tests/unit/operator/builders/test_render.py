"""render_pool_config: what a pool's sidecars get (and never get)."""

from __future__ import annotations

import yaml

from echelon_operator.builders import (
    GlobalConfig,
    render_group_config,
    render_pool_config,
    secret_env_name,
    secret_refs,
)
from echelon_operator.builders.render import resolver_for, touched_groups
from echelon_sidecar.config import PollingPoolSpec, TaskGroupSpec, load_config_text


def test_pool_config_holds_its_groups_and_the_groups_reachable_through_fallback(
    pools, groups, global_cfg
) -> None:
    config = render_pool_config("thinking-pool", pools["thinking-pool"], groups, global_cfg, 2)
    # thinking-group falls back to plan-group.echelon2; fast-small-group is unrelated
    assert list(config["task_groups"]) == ["plan-group", "thinking-group"]
    assert list(config["polling_pools"]) == ["thinking-pool"]
    assert config["sidecar"] == {"pool": "thinking-pool", "sidecars": 2}
    loaded = load_config_text(yaml.safe_dump(config)).config
    assert loaded.task_groups["thinking-group"].echelons["echelon1"].rpm_limit == 30


def test_models_are_the_ones_the_groups_use_with_secrets_replaced_by_env_names(
    pools, groups, global_cfg
) -> None:
    config = render_pool_config("translation-pool", pools["translation-pool"], groups,
                                global_cfg, 1)
    assert set(config["models"]) == {"openai-gpt3.5-turbo", "gemini-pro",
                                     "anthropic-claude-3-haiku"}
    for model_id, entry in config["models"].items():
        assert "api_key_secret" not in entry
        assert entry["api_key_env"] == secret_env_name(model_id)
    text = yaml.safe_dump(config)
    assert "llm-credentials" not in text  # not even the Secret's name


def test_secret_env_names_are_valid_env_vars() -> None:
    assert secret_env_name("openai-gpt3.5-turbo") == "ECHELON_KEY_OPENAI_GPT3_5_TURBO"
    assert secret_env_name("gemini-pro") == "ECHELON_KEY_GEMINI_PRO"


def test_secret_refs_name_the_secret_keys_for_the_env_vars(pools, groups, global_cfg) -> None:
    config = render_pool_config("translation-pool", pools["translation-pool"], groups,
                                global_cfg, 1)
    refs = secret_refs(global_cfg, config)
    assert [(r.env, r.name, r.key) for r in refs] == [
        ("ECHELON_KEY_ANTHROPIC_CLAUDE_3_HAIKU", "llm-credentials", "anthropic"),
        ("ECHELON_KEY_GEMINI_PRO", "llm-credentials", "gemini"),
        ("ECHELON_KEY_OPENAI_GPT3_5_TURBO", "llm-credentials", "openai"),
    ]


def test_workflow_nodes_are_those_of_the_pool_or_fully_included(pools, groups) -> None:
    cfg = GlobalConfig(
        models={"m": {"provider": "openai", "model": "x", "api_key_env": "K"}},
        workflow_nodes={
            "mine": {"llm_group": "thinking-group", "polling_pool": "thinking-pool"},
            "other_pool": {"llm_group": "thinking-group", "polling_pool": "translation-pool"},
            "free_included": {"llm_group": "plan-group.echelon2"},
            "free_outside": {"llm_group": "fast-small-group"},
        },
    )
    config = render_pool_config("thinking-pool", pools["thinking-pool"], groups, cfg, 1)
    assert set(config["workflow_nodes"]) == {"mine", "free_included"}


def test_a_nodes_fallback_groups_are_rendered_with_its_pool(pools, groups) -> None:
    cfg = GlobalConfig(workflow_nodes={
        "n": {"llm_group": "thinking-group", "fallback_groups": ["fast-small-group"],
              "polling_pool": "thinking-pool"},
    })
    config = render_pool_config("thinking-pool", pools["thinking-pool"], groups, cfg, 1)
    assert "fast-small-group" in config["task_groups"]


def test_global_sections_and_sidecar_count_at_least_one(pools, groups) -> None:
    cfg = GlobalConfig(concurrency_control={"levels": {"node": {"limit": 3}}},
                       rate_limiting={"algorithm": "token_bucket", "bucket_size": 10,
                                      "refill_rate": 1})
    config = render_pool_config("thinking-pool", pools["thinking-pool"], groups, cfg, 0)
    assert config["concurrency_control"] == {"levels": {"node": {"limit": 3}}}
    assert config["rate_limiting"]["bucket_size"] == 10
    assert config["sidecar"]["sidecars"] == 1


def test_group_config_holds_the_group_first_and_its_fallback_closure(groups, global_cfg) -> None:
    config = render_group_config("thinking-group", groups, global_cfg)
    assert list(config["task_groups"]) == ["thinking-group", "plan-group"]
    assert "polling_pools" not in config


def test_touched_groups_include_missing_references() -> None:
    spec = TaskGroupSpec.model_validate({
        "echelons": {"e1": {"models": ["m"]}},
        "fallbackConfig": {"fallbackGroups": ["missing-group.e1", "b"]},
    })
    other = TaskGroupSpec.model_validate({"echelons": {"e1": {"models": ["m"]}}})
    resolver = resolver_for({"a": spec, "b": other})
    assert touched_groups(["a"], resolver) == {"a", "b", "missing_group", "missing_group.e1"}


def test_pool_config_of_a_pool_serving_one_tier_still_carries_its_group(groups) -> None:
    pool = PollingPoolSpec.model_validate({"taskGroups": ["fast-small-group.translation"]})
    config = render_pool_config("p", pool, groups, GlobalConfig(), 1)
    assert list(config["task_groups"]) == ["fast-small-group"]


def _g(*fallback: str) -> TaskGroupSpec:
    spec: dict = {"echelons": {"e1": {"models": ["m"]}}}
    if fallback:
        spec["fallbackConfig"] = {"fallbackGroups": list(fallback)}
    return TaskGroupSpec.model_validate(spec)


def test_users_of_a_group_are_found_backwards_through_fallback_even_if_it_is_missing() -> None:
    from echelon_operator.builders.render import root_heads, users_of

    groups = {"a": _g("b"), "b": _g("c.e1"), "x": _g(), "y": _g("gone")}
    resolver = resolver_for(groups)
    roots = {pool: root_heads(refs, resolver) for pool, refs in
             {"pool-a": ["a"], "pool-x": ["x"], "pool-gone": ["gone.e1"]}.items()}
    assert users_of("c", resolver, roots) == ({"a", "b"}, {"pool-a"})
    assert users_of("gone", resolver, roots) == ({"y"}, {"pool-gone"})
    assert users_of("x", resolver, roots) == (set(), {"pool-x"})


def test_unresolved_refs_walk_the_closure_and_name_the_field() -> None:
    from echelon_operator.builders.render import unresolved_refs

    groups = {"a": _g("b", "a-missing"), "b": _g("a.nope")}
    missing = unresolved_refs([("PollingPool p spec.taskGroups[0]", "a"),
                               ("PollingPool p spec.taskGroups[1]", "zzz")], resolver_for(groups))
    assert sorted(missing) == [
        ("PollingPool p spec.taskGroups[1]", "zzz", None),
        ("TaskGroup a spec.fallbackConfig.fallbackGroups[1]", "a-missing", None),
        ("TaskGroup b spec.fallbackConfig.fallbackGroups[0]", "a.nope", "a"),
    ]
