"""Warnings about routes whose behaviour a reader of the config would not expect.

- **Mixed request settings.** A polling pool, or a workflow node's pool and chain, that mixes
  tiers whose request settings differ in ``function_calling: required``, ``response_format``
  or thinking (``thinking_config`` enabled or not). What a request gets then depends on which
  tier's instance serves it: a request that cannot meet a tier's setting cannot be served by
  that tier's instances (the engine skips them for a request without tools on a
  ``function_calling: required`` tier), so a pool's effective rotation depends on the
  request. A node's own ``thinking_config`` (or ``task_config.thinking_config``) applies to
  every tier of its route, so thinking never differs there.
- **A weighted pool without weights.** ``rotation_strategy: weighted`` with no pool
  ``weights`` and no catalog ``weight`` for any of the pool's models gives every model id
  weight 1: the rotation behaves like ``round_robin`` over the pool's model ids.

The functions are pure: they read a :class:`Resolver` and return findings; the checker in
:mod:`.validate` reports them as warnings with the entity's file and line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .nodes import WorkflowNode
from .pools import PollingPool
from .resolve import Resolver
from .tiers import Echelon

__all__ = ["Finding", "mixed_node_settings", "mixed_pool_settings", "unweighted_pool"]

Tier = tuple[str, str]
_LISTED = 4
_THINKING = "thinking_config enabled"


@dataclass(frozen=True, slots=True)
class Finding:
    """A warning about one entity: what, where inside it, and what to do."""

    message: str
    rel: tuple[str | int, ...]
    hint: str


@dataclass(frozen=True, slots=True)
class _Setting:
    label: str
    has: Callable[[Echelon], bool]
    effect: str


_SETTINGS = (
    _Setting(
        "function_calling: required",
        lambda t: t.function_calling == "required",
        "a request without tools skips the function_calling: required tier's instances "
        "(and is answered 400 only when no other instance can serve it)",
    ),
    _Setting(
        "response_format: json",
        lambda t: t.response_format == "json",
        "a request that sets no response_format gets JSON mode only from the "
        "response_format: json tiers",
    ),
    _Setting(
        _THINKING,
        lambda t: t.thinking_config is not None and t.thinking_config.enabled,
        "only the tiers with thinking enabled think (and skip models without reasoning "
        "control)",
    ),
)


def pool_tiers(resolver: Resolver, pool: PollingPool) -> list[Tier]:
    """The (group, tier) pairs whose instances form ``pool``, in order, without repeats."""
    out: list[Tier] = []
    for ref in pool.task_groups:
        target = resolver.parse_ref(ref)
        if target is None:
            continue  # reported as an error elsewhere
        group = resolver.config.task_groups[target.group]
        names = [target.tier] if target.tier else [t for t, _ in group.ordered_tiers()]
        for name in names:
            if (target.group, name) not in out:
                out.append((target.group, name))
    return out


def _differences(resolver: Resolver, tiers: Sequence[Tier],
                 skip: Sequence[str] = ()) -> list[tuple[_Setting, list[Tier], list[Tier]]]:
    """Each setting (not in ``skip``) that some of ``tiers`` have and others not."""
    groups = resolver.config.task_groups
    out = []
    for setting in _SETTINGS:
        if setting.label in skip:
            continue
        on = [t for t in tiers if setting.has(groups[t[0]].echelons[t[1]])]
        off = [t for t in tiers if t not in on]
        if on and off:
            out.append((setting, on, off))
    return out


def _describe(found: Sequence[tuple[_Setting, list[Tier], list[Tier]]]) -> tuple[str, str]:
    """``(what differs, what that does to requests)``."""
    diffs = "; ".join(f"{s.label} on {_listing(on)} but not on {_listing(off)}"
                      for s, on, off in found)
    effects = "; ".join(s.effect for s, _, _ in found)
    return diffs, effects[:1].upper() + effects[1:]


def mixed_pool_settings(resolver: Resolver, pool: PollingPool) -> Finding | None:
    """A warning when the pool's tiers differ in the request settings that matter."""
    found = _differences(resolver, pool_tiers(resolver, pool))
    if not found:
        return None
    diffs, effects = _describe(found)
    return Finding(
        f"pool mixes tiers whose request settings differ: {diffs}. {effects}. The pool's "
        "effective rotation therefore depends on the request",
        ("task_groups",),
        "serve one setting per pool: refer to tiers with the same settings (group.tier) "
        "instead of whole groups, or split the pool",
    )


def mixed_node_settings(resolver: Resolver, node: WorkflowNode) -> Finding | None:
    """A warning when the tiers a node's requests can reach (its pool, then its chain) differ
    in the request settings that matter -- beyond what its pool mixes by itself, which is
    reported on the pool."""
    own = resolver.parse_ref(node.llm_group)
    if own is None:
        return None
    skip: list[str] = []
    task = node.task_config
    if node.thinking_config is not None or (task is not None and task.thinking_config):
        skip.append(_THINKING)  # the node's own thinking setting applies to every tier
    tiers: list[Tier] = []
    pool_name = resolver.pool_name(node.polling_pool) if node.polling_pool else None
    if pool_name is not None:
        tiers = pool_tiers(resolver, resolver.pool(pool_name))
        skip.extend(s.label for s, _, _ in _differences(resolver, tiers, skip))
    for step in resolver.plan_chain(own, node.fallback_groups):
        if (step.group, step.tier) not in tiers:
            tiers.append((step.group, step.tier))
    found = _differences(resolver, tiers, skip)
    if not found:
        return None
    diffs, effects = _describe(found)
    route = f"pool {pool_name} and its fallback chain" if pool_name else "fallback chain"
    return Finding(
        f"the tiers of the node's {route} differ in request settings: {diffs}. {effects}. "
        "What the node's requests get therefore depends on the request and on which tier "
        "serves it",
        (),
        "point llm_group, fallback_groups and polling_pool at tiers with the same settings, "
        "or keep the difference if it is deliberate",
    )


def unweighted_pool(resolver: Resolver, pool: PollingPool) -> Finding | None:
    """A warning when a weighted pool has no weight anywhere."""
    if pool.rotation_strategy != "weighted" or pool.weights:
        return None
    models: list[str] = []
    groups = resolver.config.task_groups
    for group, tier in pool_tiers(resolver, pool):
        for model in groups[group].echelons[tier].models:
            model_id = resolver.model_id(model) or model
            if model_id not in models:
                models.append(model_id)
    if not models or any(
        (entry := resolver.model(m)) is not None and entry.weight is not None for m in models
    ):
        return None
    return Finding(
        "rotation_strategy is weighted but no weights are given (no weights on the pool and "
        f"no catalog weight for {_listing_ids(models)}): every model id gets weight 1, so the "
        "rotation behaves like round_robin over the pool's model ids",
        ("rotation_strategy",),
        "give the pool weights: {model id: number}, or give its models a weight: in the "
        "catalog; or use rotation_strategy: round_robin",
    )


def _listing(tiers: Sequence[Tier]) -> str:
    return _listing_ids([f"{g}.{t}" for g, t in tiers])


def _listing_ids(names: Sequence[str]) -> str:
    if len(names) <= _LISTED + 1:
        return ", ".join(names)
    return f"{', '.join(names[:_LISTED])} and {len(names) - _LISTED} more"
