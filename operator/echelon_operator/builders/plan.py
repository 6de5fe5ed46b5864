"""Decide what a pool or group should look like: render, validate, explain. Still pure.

:func:`plan_pool` renders a pool's config, dumps it to YAML and loads it back with
``load_config_text`` (exactly what the sidecar will do); any error makes the plan invalid and
names the resource and field at fault. :func:`plan_group` validates one task group the same
way, together with every group it can fall back to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from echelon_sidecar.config import (
    FallbackGraph,
    PollingPoolSpec,
    Problem,
    TaskGroupSpec,
    canonical_name,
    load_config_text,
)
from echelon_sidecar.errors import ConfigError

from .globalconfig import GlobalConfig
from .problems import describe_problem
from .render import (
    SecretRef,
    node_refs,
    render_group_config,
    render_pool_config,
    resolver_for,
    secret_refs,
    unresolved_refs,
)

__all__ = ["GroupPlan", "PoolConfigMapPlan", "dump_config", "plan_group", "plan_pool"]

MIXED_TASK_TYPES = "mixes task types"
#: at most this many problems are listed (conditions and Events have a size limit anyway)
MAX_PROBLEMS = 20


def _capped(problems: Sequence[str]) -> tuple[str, ...]:
    if len(problems) <= MAX_PROBLEMS:
        return tuple(problems)
    return (*problems[:MAX_PROBLEMS], f"... and {len(problems) - MAX_PROBLEMS} more problem(s)")


def _missing_messages(missing: Sequence[tuple[str, str, str | None]],
                      groups: Mapping[str, TaskGroupSpec]) -> list[str]:
    out = []
    for where, ref, owner in missing:
        if owner is not None:
            tiers = ", ".join(groups[owner].echelons)
            out.append(f"{where}: reference {ref!r}: group {owner!r} has no tier "
                       f"{ref.rpartition('.')[2]!r} (its tiers: {tiers})")
        else:
            out.append(f"{where}: reference {ref!r} names no task group")
    return out


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when available: ~10x faster


def dump_config(config: Mapping[str, Any], header: str = "") -> str:
    """The config as YAML (key order kept), after an optional comment header."""
    body = yaml.dump(dict(config), Dumper=_DUMPER, sort_keys=False, allow_unicode=True,
                     width=100)
    return header + body


@dataclass(frozen=True)
class PoolConfigMapPlan:
    """What a pool's ConfigMap should hold, or why it cannot be rendered."""

    pool: str
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: the "pool mixes task types" warning, when the pool is not dedicated to one task type
    mixed_task_types: str | None = None
    config: Mapping[str, Any] | None = None
    text: str | None = None
    version: str | None = None
    secret_refs: tuple[SecretRef, ...] = ()
    groups: tuple[str, ...] = ()
    #: (group, model) breakers the sidecars will run
    instances: tuple[tuple[str, str], ...] = ()
    sidecars: int = 1

    @property
    def valid(self) -> bool:
        return not self.errors and self.text is not None


@dataclass(frozen=True)
class GroupPlan:
    """Whether a task group (with its fallback closure) is usable, and its printer fields."""

    group: str
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    tiers: int | None = None
    strategy: str | None = None
    models: tuple[str, ...] = ()
    closure: tuple[str, ...] = field(default_factory=tuple)

    @property
    def valid(self) -> bool:
        return not self.errors


def _node_roots(pool_name: str, global_cfg: GlobalConfig) -> list[tuple[str, str]]:
    """(node, reference) of the workflow nodes that use this pool."""
    out: list[tuple[str, str]] = []
    canon = canonical_name(pool_name)
    for name in sorted(global_cfg.workflow_nodes):
        body = global_cfg.workflow_nodes[name]
        pool_ref = body.get("polling_pool", body.get("pollingPool")) if isinstance(
            body, Mapping) else None
        if isinstance(pool_ref, str) and canonical_name(pool_ref) == canon:
            out.extend((name, ref) for ref in node_refs(body))
    return out


def _broken_refs(
    refs: Sequence[str], groups: Mapping[str, TaskGroupSpec], broken: Mapping[str, Sequence[str]]
) -> list[str]:
    """Problems of unparseable groups that ``refs`` (or their fallbacks) point at."""
    if not broken:
        return []
    resolver = resolver_for(groups)
    by_canon = {canonical_name(name): name for name in broken}
    out: list[str] = []
    seen: set[str] = set()
    for visit in FallbackGraph(resolver).walk((ref, ref) for ref in refs):
        if visit.target is not None:
            continue
        for head in (visit.ref, visit.ref.rpartition(".")[0]):
            name = by_canon.get(canonical_name(head)) if head else None
            if name is not None and name not in seen:
                seen.add(name)
                out.extend(f"TaskGroup {name} (referenced as {visit.ref!r}) is invalid: {p}"
                           for p in broken[name])
    return out


def _load(text: str, source: str, config: Mapping[str, Any]) -> tuple[
        list[Problem], list[Problem], str | None]:
    try:
        loaded = load_config_text(text, source)
    except ConfigError as exc:
        problems = [p for p in exc.problems if isinstance(p, Problem)]
        return [p for p in problems if p.is_error], [p for p in problems if not p.is_error], None
    return [], list(loaded.warnings), loaded.version


def plan_pool(
    pool_name: str,
    pool: PollingPoolSpec | None,
    groups: Mapping[str, TaskGroupSpec],
    global_cfg: GlobalConfig,
    sidecars: int,
    *,
    pods: Sequence[str] = (),
    pool_problems: Sequence[str] = (),
    broken_groups: Mapping[str, Sequence[str]] | None = None,
    header: str = "",
) -> PoolConfigMapPlan:
    """Render and validate one pool (see the module docstring).

    ``pool`` is None when its spec does not parse (``pool_problems`` says why);
    ``broken_groups`` maps the names of unparseable groups to their problems; ``pods``: the
    pods running the pool's sidecar (each takes its share of the budgets by name).
    """
    sidecars = max(1, sidecars, len(set(pods)))
    if pool is None:
        return PoolConfigMapPlan(pool_name, errors=tuple(pool_problems) or ("spec is invalid",),
                        sidecars=sidecars)
    config = render_pool_config(pool_name, pool, groups, global_cfg, sidecars, pods)
    roots = list(pool.task_groups)
    for node in (config.get("workflow_nodes") or {}).values():
        roots.extend(node_refs(node))
    broken = _broken_refs(roots, groups, broken_groups or {})
    task_groups = config["task_groups"]
    instances = sorted({(g, m) for g, body in task_groups.items()
                        for tier in (body.get("echelons") or {}).values()
                        for m in tier.get("models", [])})
    labelled = [(f"PollingPool {pool_name} spec.taskGroups[{i}]", ref)
                for i, ref in enumerate(pool.task_groups)]
    labelled += [(f"global config workflow_nodes.{name} (uses pool {pool_name})", ref)
                 for name, ref in _node_roots(pool_name, global_cfg)]
    missing = unresolved_refs(labelled, resolver_for(groups))
    if broken or missing:
        # cheap and clear: no need to run the whole validation to say what is missing
        return PoolConfigMapPlan(
            pool=pool_name,
            errors=_capped(broken + _missing_messages(missing, groups)),
            config=config, groups=tuple(task_groups), instances=tuple(instances),
            secret_refs=tuple(secret_refs(global_cfg, config)), sidecars=sidecars,
        )
    text = dump_config(config, header)
    errors, warnings, version = _load(text, f"ConfigMap of PollingPool {pool_name}", config)
    mixed = next((describe_problem(p, config) for p in warnings
                  if p.path[:1] == ("polling_pools",) and MIXED_TASK_TYPES in p.message), None)
    error_text = _capped([describe_problem(p, config) for p in errors])
    return PoolConfigMapPlan(
        pool=pool_name,
        errors=error_text,
        warnings=tuple(describe_problem(p, config) for p in warnings),
        mixed_task_types=mixed,
        config=config,
        text=None if error_text else text,
        version=None if error_text else version,
        secret_refs=tuple(secret_refs(global_cfg, config)),
        groups=tuple(task_groups),
        instances=tuple(instances),
        sidecars=sidecars,
    )


def plan_group(
    group_name: str,
    groups: Mapping[str, TaskGroupSpec],
    global_cfg: GlobalConfig,
    *,
    group_problems: Sequence[str] = (),
    broken_groups: Mapping[str, Sequence[str]] | None = None,
) -> GroupPlan:
    """Validate one group with its fallback closure and the catalog it uses."""
    spec = groups.get(group_name)
    if spec is None:
        return GroupPlan(group_name, errors=tuple(group_problems) or ("spec is invalid",))
    config = render_group_config(group_name, groups, global_cfg)
    refs = [r for r in ((spec.fallback_config.fallback_groups or [])
                        if spec.fallback_config else [])]
    if spec.fallback_config and spec.fallback_config.last_resort:
        refs.append(spec.fallback_config.last_resort)
    broken = _broken_refs(refs, groups, broken_groups or {})
    resolver = resolver_for(groups)
    missing = unresolved_refs([(f"TaskGroup {group_name}", group_name)], resolver)
    if broken or missing:
        return GroupPlan(
            group=group_name,
            errors=_capped(broken + _missing_messages(missing, groups)),
            tiers=len(spec.echelons),
            strategy=resolver.effective_fallback(group_name).strategy,
            models=tuple(sorted({m for tier in spec.echelons.values() for m in tier.models})),
            closure=tuple(config["task_groups"]),
        )
    text = dump_config(config)
    errors, warnings, _ = _load(text, f"TaskGroup {group_name}", config)
    own = [p for p in errors if p.path[1:2] == (group_name,)]
    others = [p for p in errors if p.path[1:2] != (group_name,)]
    unordered = [name for name, tier in spec.echelons.items() if tier.priority is None]
    extra: list[str] = []
    if len(spec.echelons) > 1 and unordered:
        extra.append(
            f"TaskGroup {group_name} spec.echelons: tier(s) {', '.join(sorted(unordered))} have "
            "no priority; Kubernetes does not keep the order of map keys, so they are tried in "
            "name order (set priority: 1, 2, ...)"
        )
    models = sorted({m for tier in spec.echelons.values() for m in tier.models})
    return GroupPlan(
        group=group_name,
        errors=_capped([describe_problem(p, config) for p in own + others]),
        warnings=tuple(extra + [describe_problem(p, config) for p in warnings]),
        tiers=len(spec.echelons),
        strategy=resolver.effective_fallback(group_name).strategy,
        models=tuple(models),
        closure=tuple(config["task_groups"]),
    )
