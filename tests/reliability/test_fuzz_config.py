"""Fuzzing the config model: random and mutated configs are accepted or refused cleanly.

The repository's example configs (the combined source-document file, the Kubernetes manifests
and the per-group / per-pool tree) are mutated — keys dropped, values replaced by other types,
out-of-range numbers, dangling references, broken YAML text — and loaded the way the sidecar
and the operator load them. Every outcome is either a config, or the project's own
:class:`ConfigError` whose problems say where (a field path or a line): never another
exception. A mutated config that loads also survives ``echelon migrate`` unchanged in
behaviour (its manifests load again, with the same tier order).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echelon_operator.migrate import migrate
from echelon_sidecar.config import LoadedConfig, Problem, load_config, load_config_text
from echelon_sidecar.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
COMBINED = yaml.safe_load((CONFIGS / "_task_groups.yaml").read_text(encoding="utf-8"))
MANIFESTS = [doc for name in ("00-global-config.yaml", "10-taskgroups.yaml", "20-pollingpools.yaml")
             for doc in yaml.safe_load_all((CONFIGS / "k8s" / name).read_text(encoding="utf-8"))
             if doc]
TREE = {p.relative_to(CONFIGS): yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((CONFIGS / "llms").rglob("*.yaml"))}

FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# values that are wrong in some place of every config: other types, bounds, bad references
ODD_VALUES = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 1, 1001, 10**12, -(10**12), 0.0, -0.5, 1e308,
                     float("inf"), float("nan"), "", " ", "x", "fast_group.echelon9",
                     "no_such_group", "no-such-model", "a.b.c", "../etc/passwd", "é" * 3,
                     "x" * 300, [], {}, [None], {"": None}, ["fast_group"],
                     "echelon_down", "instance_rotation", "token_bucket", "round_robin"]),
    st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
KEYS = st.sampled_from(["zz", "models", "echelon1", "echelon2", "priority", "task_groups",
                        "polling_pools", "fallback_config", "circuit_breaker", "rate_limiting",
                        "apiVersion", "kind", "metadata", "spec", "data", "items", "name", 3])
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10) | KEYS.filter(lambda k: isinstance(k, str)),
                      children, max_size=4),
    max_leaves=20,
)


def _paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.extend(_paths(value, (*path, key)))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            out.extend(_paths(value, (*path, index)))
    return out


def _at(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


@st.composite
def mutated(draw: st.DrawFn, base: Any, most: int = 4) -> Any:
    """``base`` with 1..``most`` mutations: drop a key, replace a value, add a key."""
    obj = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, most))):
        paths = _paths(obj)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _at(obj, path[:-1]), path[-1]
        op = draw(st.sampled_from(["drop", "replace", "replace", "random", "add"]))
        if op == "drop":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(ODD_VALUES)
        elif op == "random":
            parent[key] = draw(JSONISH)
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(ODD_VALUES)
    return obj


def _dump(*docs: Any) -> str | None:
    try:
        return yaml.safe_dump_all(docs, allow_unicode=True, sort_keys=False)
    except yaml.YAMLError:
        return None


def check_outcome(load: Any) -> LoadedConfig | None:
    """Run ``load``: a config, or a ConfigError whose every problem says where; nothing else."""
    try:
        loaded = load()
    except ConfigError as exc:
        refused = exc
    else:
        assert isinstance(loaded, LoadedConfig)
        return loaded
    assert refused.problems, "a ConfigError lists its problems"
    errors = [p for p in refused.problems if isinstance(p, Problem) and p.is_error]
    assert errors, f"refused without an error problem: {refused}"
    for problem in refused.problems:
        assert isinstance(problem, Problem)
        assert problem.source, f"no source in {problem}"
        assert problem.path or problem.line is not None, f"says not where: {problem}"
        assert problem.message and "Traceback" not in str(problem)
    return None


def check_migrates(loaded: LoadedConfig) -> None:
    """A valid config migrates to manifests that load again with the same tier order."""
    result = migrate(loaded.config)
    again = check_outcome(lambda: load_config_text("---\n".join(result.files().values()),
                                                   "migrated"))
    assert again is not None, "echelon migrate wrote manifests that do not validate"
    for name, group in loaded.config.task_groups.items():
        migrated = next(g for n, g in again.config.task_groups.items()
                        if n.replace("-", "_") == name.replace("-", "_"))
        assert [t for t, _ in migrated.ordered_tiers()] == [t for t, _ in group.ordered_tiers()]


def test_the_example_configs_load() -> None:
    for text in (yaml.safe_dump(COMBINED, allow_unicode=True), _dump(*MANIFESTS)):
        assert text is not None and check_outcome(lambda t=text: load_config_text(t)) is not None
    assert check_outcome(lambda: load_config(CONFIGS / "llms")) is not None


@FUZZ
@given(mutated(COMBINED, most=5))
def test_a_mutated_combined_config_is_accepted_or_refused_with_located_problems(
        config: Any) -> None:
    text = _dump(config)
    if text is None:
        return
    loaded = check_outcome(lambda: load_config_text(text, "_task_groups.yaml"))
    if loaded is not None:
        check_migrates(loaded)


@FUZZ
@given(st.lists(st.sampled_from(range(len(MANIFESTS))), min_size=1, max_size=len(MANIFESTS),
                unique=True).flatmap(
    lambda picks: st.tuples(*[mutated(MANIFESTS[i], most=3) | st.just(MANIFESTS[i])
                              for i in picks])))
def test_mutated_kubernetes_manifests_are_accepted_or_refused_with_located_problems(
        docs: tuple[Any, ...]) -> None:
    text = _dump(*docs)
    if text is not None:
        check_outcome(lambda: load_config_text(text, "manifests.yaml"))


@settings(FUZZ, max_examples=40)
@given(st.dictionaries(st.sampled_from(sorted(str(p) for p in TREE)), st.data(), max_size=4))
def test_a_mutated_config_tree_is_accepted_or_refused_with_located_problems(
        changes: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, data in TREE.items():
            file = root / rel
            file.parent.mkdir(parents=True, exist_ok=True)
            if str(rel) in changes:
                data = changes[str(rel)].draw(mutated(data, most=3) | JSONISH)
            text = _dump(data)
            file.write_text(text if text is not None else "", encoding="utf-8")
        check_outcome(lambda: load_config(root / "llms"))


@FUZZ
@given(st.dictionaries(KEYS.filter(lambda k: isinstance(k, str)) | st.text(max_size=12),
                       JSONISH, max_size=6))
def test_a_random_document_is_accepted_or_refused_with_located_problems(
        doc: dict[str, Any]) -> None:
    text = _dump(doc)
    if text is not None:
        check_outcome(lambda: load_config_text(text, "random.yaml"))


_BASE_TEXT = (CONFIGS / "_task_groups.yaml").read_text(encoding="utf-8")


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(_BASE_TEXT) - 1),
                          st.sampled_from([":", "-", " ", "\n", "[", "{", "}", "&a ", "*a",
                                           "!!", "'", '"', "\t", "\x00", "\x07", "x", "?",
                                           "|", ">", "%", "@", "\ufeff", "\u2028"])),
                min_size=1, max_size=6))
def test_broken_yaml_text_is_refused_with_the_line(edits: list[tuple[int, str]]) -> None:
    chars = list(_BASE_TEXT)
    for index, char in edits:
        chars[index] = char
    check_outcome(lambda: load_config_text("".join(chars), "_task_groups.yaml"))


@pytest.mark.parametrize(("text", "where"), [
    ("a: \x00\n", 1),
    ("task_groups:\n  g: \x07\n", 2),
])
def test_a_control_character_is_refused_naming_its_line(text: str, where: int) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "c.yaml")
    (problem,) = info.value.problems
    assert isinstance(problem, Problem)
    assert problem.line == where and "U+00" in problem.message


def test_a_global_configmap_whose_data_is_not_a_mapping_is_refused_not_a_crash() -> None:
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: g\n  labels:\n"
            "    echelon.dev/config: global\ndata: [1, 2]\n")
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "cm.yaml")
    (problem,) = info.value.problems
    assert isinstance(problem, Problem)
    assert problem.path == ("data",) and problem.line == 7


def test_migrate_keeps_the_order_of_tiers_without_a_priority() -> None:
    text = """
task_groups:
  g:
    echelon1: {models: [m], priority: 1}
    echelon2: {models: [m]}
    echelon3: {models: [m], priority: 3}
  h:
    a: {models: [m], priority: 1000}
    b: {models: [m]}
models:
  m: {provider: openai, model: x, api_key_env: K}
"""
    loaded = check_outcome(lambda: load_config_text(text))
    assert loaded is not None
    check_migrates(loaded)
