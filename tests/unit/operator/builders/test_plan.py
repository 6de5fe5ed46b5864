"""plan_pool / plan_group: invalid configs are refused with the resource and field named."""

from __future__ import annotations

from echelon_operator.builders import GlobalConfig, dump_config, plan_group, plan_pool
from echelon_sidecar.config import PollingPoolSpec, TaskGroupSpec, load_config_text

MODELS = GlobalConfig(models={
    "m1": {"provider": "openai", "model": "gpt-4o", "api_key_secret": {"name": "s", "key": "k"}},
    "m2": {"provider": "anthropic", "model": "claude", "api_key_env": "ANTHROPIC_API_KEY"},
})


def group(models: list[str], fallback: list[str] | None = None, **extra: object) -> TaskGroupSpec:
    spec: dict[str, object] = {"echelons": {"echelon1": {"models": models, "priority": 1}}}
    if fallback is not None:
        spec["fallbackConfig"] = {"fallbackGroups": fallback}
    spec.update(extra)
    return TaskGroupSpec.model_validate(spec)


def pool(*refs: str) -> PollingPoolSpec:
    return PollingPoolSpec.model_validate({"taskGroups": list(refs)})


def test_a_valid_pool_plan_loads_as_the_sidecar_would_load_it() -> None:
    plan = plan_pool("p", pool("a"), {"a": group(["m1", "m2"])}, MODELS, 3, header="# hi\n")
    assert plan.valid and plan.errors == ()
    assert plan.text is not None and plan.text.startswith("# hi\n")
    loaded = load_config_text(plan.text)
    assert loaded.version == plan.version
    assert loaded.config.sidecar.sidecars == 3
    assert [r.env for r in plan.secret_refs] == ["ECHELON_KEY_M1"]
    assert plan.instances == (("a", "m1"), ("a", "m2"))


def test_the_pods_seen_share_the_budgets_by_name() -> None:
    plan = plan_pool("p", pool("a"), {"a": group(["m1"])}, MODELS, 3,
                     pods=("web-c", "web-a", "web-b"))
    assert plan.valid and plan.text is not None and plan.sidecars == 3
    settings = load_config_text(plan.text).config.sidecar
    assert settings.pods == ["web-a", "web-b", "web-c"]
    assert [settings.slot(p) for p in ("web-a", "web-b", "web-c")] == [0, 1, 2]
    # scaling up: 4 replicas wanted, 3 pods seen: split over 4 (the new pod takes the floor)
    assert plan_pool("p", pool("a"), {"a": group(["m1"])}, MODELS, 4,
                     pods=("web-a", "web-b", "web-c")).sidecars == 4
    # scaling down: 2 wanted, 3 still running: split over 3 until they are gone
    assert plan_pool("p", pool("a"), {"a": group(["m1"])}, MODELS, 2,
                     pods=("web-a", "web-b", "web-c")).sidecars == 3
    assert "pods" not in plan_pool("p", pool("a"), {"a": group(["m1"])}, MODELS, 2
                                   ).config["sidecar"]


def test_a_pool_naming_a_missing_group_is_invalid_and_says_which_field() -> None:
    plan = plan_pool("p", pool("a", "nope"), {"a": group(["m1"])}, MODELS, 1)
    assert not plan.valid and plan.text is None
    assert any(e.startswith("PollingPool p spec.taskGroups[1]: reference 'nope' names no task "
                            "group") for e in plan.errors), plan.errors


def test_a_fallback_cycle_is_invalid_and_names_the_cycle() -> None:
    groups = {"a": group(["m1"], ["b"]), "b": group(["m2"], ["a"])}
    plan = plan_pool("p", pool("a"), groups, MODELS, 1)
    assert not plan.valid
    assert any("fallback cycle: a -> b -> a" in e for e in plan.errors), plan.errors
    group_plan = plan_group("b", groups, MODELS)
    assert any(e.startswith("TaskGroup b: fallback cycle: b -> a -> b") for e in group_plan.errors)


def test_a_model_missing_from_the_catalog_names_the_tier_field() -> None:
    plan = plan_group("a", {"a": group(["m1", "ghost"])}, MODELS)
    assert plan.errors == (
        "TaskGroup a spec.echelons.echelon1.models[1]: model 'ghost' is not in the model catalog "
        "(did you mean 'm1'?)",
    ) or plan.errors[0].startswith("TaskGroup a spec.echelons.echelon1.models[1]: model 'ghost'")


def test_a_group_using_only_unknown_models_names_them_not_a_missing_catalog() -> None:
    plan = plan_group("a", {"a": group(["m-1"])}, MODELS)
    assert plan.errors[0].startswith(
        "TaskGroup a spec.echelons.echelon1.models[0]: model 'm-1' is not in the model catalog")


def test_no_catalog_at_all_is_explained() -> None:
    plan = plan_group("a", {"a": group(["m1"])}, GlobalConfig())
    assert not plan.valid
    assert "no model catalog was given" in plan.errors[0]


def test_a_missing_fallback_group_makes_the_group_invalid_naming_the_field() -> None:
    plan = plan_group("a", {"a": group(["m1"], ["b"])}, MODELS)
    assert plan.errors[0].startswith(
        "TaskGroup a spec.fallbackConfig.fallbackGroups[0]: reference 'b' names no task group")


def test_a_group_that_does_not_parse_invalidates_the_pools_that_use_it() -> None:
    plan = plan_pool("p", pool("a"), {}, MODELS, 1,
                     broken_groups={"a": ("TaskGroup a spec.echelons: required key is missing",)})
    assert not plan.valid
    assert plan.errors[0] == ("TaskGroup a (referenced as 'a') is invalid: TaskGroup a "
                              "spec.echelons: required key is missing")


def test_a_pool_whose_spec_does_not_parse_is_invalid_with_its_problems() -> None:
    plan = plan_pool("p", None, {}, MODELS, 1, pool_problems=("PollingPool p spec: bad",))
    assert not plan.valid and plan.errors == ("PollingPool p spec: bad",)


def test_a_pool_mixing_task_types_is_valid_but_not_dedicated() -> None:
    groups = {"fast-group": group(["m1"]), "plan-group": group(["m2"])}
    plan = plan_pool("p", pool("fast-group", "plan-group"), groups, MODELS, 1)
    assert plan.valid
    assert plan.mixed_task_types is not None
    assert plan.mixed_task_types.startswith("PollingPool p spec.taskGroups: pool mixes task types")


def test_global_config_problems_are_named_as_global_config() -> None:
    bad = GlobalConfig(models={"m1": {"provider": "nope", "model": "x"}})
    plan = plan_pool("p", pool("a"), {"a": group(["m1"])}, bad, 1)
    assert not plan.valid
    assert plan.errors[0].startswith("global config models.m1.provider:"), plan.errors


def test_group_plan_reports_tiers_strategy_and_priority_warning() -> None:
    spec = TaskGroupSpec.model_validate({
        "echelons": {"b": {"models": ["m1"]}, "a": {"models": ["m2"]}},
        "fallbackConfig": {"strategy": "model_rotate"},
    })
    plan = plan_group("g", {"g": spec}, MODELS)
    assert plan.valid and plan.tiers == 2 and plan.strategy == "model_rotate"
    assert any("have no priority" in w for w in plan.warnings)


def test_dump_config_is_stable() -> None:
    config = {"b": 1, "a": {"y": 2, "x": 1}}
    assert dump_config(config) == dump_config(dict(config))
