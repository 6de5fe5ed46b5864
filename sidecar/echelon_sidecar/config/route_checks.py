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
- **Mixed embedding spaces.** A group's fallback chain, a pool, or a node's pool and chain
  whose embedding models (catalog ``embedding_space`` / ``embedding_dimensions``) are not all
  in one space: an embeddings request is served only by the models of the space of the
  route's first embedding model, the others are skipped (never fallen back to), so they add
  nothing to the route's availability.

The functions are pure: they read a :class:`Resolver` and return findings; the checker in
:mod:`.validate` reports them as warnings with the entity's file and line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .catalog import ModelEntry
from .nodes import WorkflowNode
from .pools import PollingPool
from .resolve import GroupRef, Resolver
from .tiers import Echelon

__all__ = [
    "Finding",
    "embedding_space_key",
    "group_tiers",
    "mixed_embedding_spaces",
    "mixed_node_settings",
    "mixed_pool_settings",
    "node_tiers",
    "pool_tiers",
    "spaces_compatible",
    "unweighted_pool",
]

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


def embedding_space_key(entry: ModelEntry) -> tuple[str, int | None]:
    """What two embedding models must share to stand in for each other: the space's name and
    the vectors' default length (None: not declared, then only the name counts)."""
    return entry.space, entry.embedding_dimensions


def spaces_compatible(a: tuple[str, int | None], b: tuple[str, int | None]) -> bool:
    """Same space name, and the same declared length where both declare one."""
    return a[0] == b[0] and (a[1] is None or b[1] is None or a[1] == b[1])


def _space_label(key: tuple[str, int | None]) -> str:
    return f"space {key[0]}" if key[1] is None else f"space {key[0]} at {key[1]} dimensions"


def node_tiers(resolver: Resolver, node: WorkflowNode) -> list[Tier]:
    """The tiers a node's requests can reach: its pool's, then its chain's."""
    own = resolver.parse_ref(node.llm_group)
    tiers: list[Tier] = []
    pool_name = resolver.pool_name(node.polling_pool) if node.polling_pool else None
    if pool_name is not None:
        tiers = pool_tiers(resolver, resolver.pool(pool_name))
    if own is not None:
        for step in resolver.plan_chain(own, node.fallback_groups):
            if (step.group, step.tier) not in tiers:
                tiers.append((step.group, step.tier))
    return tiers


def group_tiers(resolver: Resolver, group: str) -> list[Tier]:
    """The tiers of a whole-group reference's chain (its tiers, then its fallback groups)."""
    return [(s.group, s.tier) for s in resolver.plan_chain(GroupRef(group))]


def mixed_embedding_spaces(resolver: Resolver, tiers: Sequence[Tier],
                           route: str) -> Finding | None:
    """A warning when the embedding models of ``tiers`` (in route order) are in more than one
    embedding space (see the module docstring); ``route`` names the route in the message."""
    groups = resolver.config.task_groups
    spaces: list[tuple[tuple[str, int | None], list[str]]] = []
    for group, tier in tiers:
        for model in groups[group].echelons[tier].models:
            entry = resolver.model(model)
            if entry is None or not entry.is_embedding:
                continue
            key = embedding_space_key(entry)
            for known, members in spaces:
                if spaces_compatible(known, key):
                    if model not in members:
                        members.append(model)
                    break
            else:
                spaces.append((key, [model]))
    if len(spaces) < 2:
        return None
    (first, first_models), others = spaces[0], spaces[1:]
    listing = "; ".join(f"{_space_label(k)}: {_listing_ids(m)}" for k, m in others)
    return Finding(
        f"the embedding models of the {route} are in different embedding spaces: first "
        f"{_space_label(first)}: {_listing_ids(first_models)}; then {listing}. An embeddings "
        f"request is served only by models of the first one's space ({first[0]}); the others "
        "are skipped as cannot_serve, never fallen back to (their vectors could not be "
        "compared with the first's)",
        (),
        "give each embedding space its own group or pool; declare the same embedding_space "
        "(and embedding_dimensions) only for models whose vectors really are comparable",
    )
