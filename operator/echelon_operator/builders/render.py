"""Render what a pool's sidecar needs into the combined config format (snake_case).

Pure functions: specs and global config in, a plain dict out. The output loads with
``echelon_sidecar.config.load_config_text`` once dumped to YAML (see :mod:`.plan`).

A pool's config holds: the pool; its task groups and every group reachable through fallback
(``Resolver.reachable_groups``); the catalog entries of the models those groups use, with
``api_key_secret`` rewritten to ``api_key_env: ECHELON_KEY_<MODEL>`` (the operator sets that
variable from the Secret; no secret value is ever rendered); the workflow nodes that use this
pool, or that use no pool and whose groups are all included; the global ``concurrency_control``
and ``rate_limiting``; and ``sidecar: {pool, sidecars, pods}`` (how the budgets are shared:
``sidecars`` is the larger of the Deployments' replicas and the number of ``pods``, the names of
the pods whose sidecars take their share by position; see ``SidecarSettings``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError

from echelon_sidecar.config import (
    EchelonConfig,
    FallbackGraph,
    ModelEntry,
    PollingPoolSpec,
    Resolver,
    TaskGroup,
    TaskGroupSpec,
    canonical_name,
    heads,
)

from ..names import SECRET_ENV_PREFIX
from .globalconfig import GlobalConfig

__all__ = [
    "SecretRef",
    "node_refs",
    "pool_roots",
    "render_group_config",
    "render_pool_config",
    "resolver_for",
    "reverse_fallback",
    "root_heads",
    "secret_env_name",
    "secret_refs",
    "sidecar_settings",
    "touched_groups",
    "unresolved_refs",
    "users_of",
]

_ENV_UNSAFE = re.compile(r"[^A-Z0-9]")


@dataclass(frozen=True, order=True)
class SecretRef:
    """An env var of the sidecar container set from a Secret key (never the value)."""

    env: str
    name: str
    key: str

    def to_dict(self) -> dict[str, str]:
        return {"env": self.env, "name": self.name, "key": self.key}


def secret_env_name(model_id: str) -> str:
    """``openai-gpt3.5-turbo`` -> ``ECHELON_KEY_OPENAI_GPT3_5_TURBO``."""
    return SECRET_ENV_PREFIX + _ENV_UNSAFE.sub("_", model_id.upper())


def resolver_for(groups: Mapping[str, TaskGroupSpec]) -> Resolver:
    """A Resolver over already-parsed groups (no re-validation: cheap for thousands)."""
    config = EchelonConfig.model_construct(task_groups=cast(dict[str, TaskGroup], dict(groups)))
    return Resolver(config)


def _get(body: Any, snake: str, camel: str) -> Any:
    if not isinstance(body, Mapping):
        return None
    return body.get(snake, body.get(camel))


def node_refs(node: Any) -> list[str]:
    """The group references a workflow node (raw mapping) names."""
    refs: list[str] = []
    llm = _get(node, "llm_group", "llmGroup")
    if isinstance(llm, str):
        refs.append(llm)
    fallback = _get(node, "fallback_groups", "fallbackGroups")
    if isinstance(fallback, list):
        refs.extend(r for r in fallback if isinstance(r, str))
    return refs


def _node_pool(node: Any) -> str | None:
    pool = _get(node, "polling_pool", "pollingPool")
    return pool if isinstance(pool, str) else None


def _models_of(groups: Iterable[TaskGroupSpec]) -> set[str]:
    return {m for g in groups for tier in g.echelons.values() for m in tier.models}


def _render_models(
    used: Iterable[str], catalog: Mapping[str, Any]
) -> dict[str, Any]:
    used = list(used)
    by_canon = {canonical_name(mid): mid for mid in catalog}
    wanted = sorted({by_canon[c] for c in map(canonical_name, used) if c in by_canon})
    if not wanted and used and catalog:
        # none of the used models is in the catalog: render the whole catalog, so that
        # validation says which model is missing (instead of "no catalog at all") and can
        # suggest a close id; such a config is invalid and never applied
        wanted = sorted(catalog)
    out: dict[str, Any] = {}
    envs: set[str] = set()
    for mid in wanted:
        raw = catalog[mid]
        try:
            entry = ModelEntry.model_validate(raw)
        except ValidationError:
            out[mid] = raw  # validation reports it, with its path under models.<id>
            continue
        data = entry.model_dump(mode="json", exclude_unset=True)
        if entry.api_key_secret is not None:
            data.pop("api_key_secret", None)
            env = secret_env_name(mid)
            if env in envs:  # two ids that differ only in punctuation
                env += "_" + hashlib.sha256(mid.encode()).hexdigest()[:6].upper()
            envs.add(env)
            data["api_key_env"] = env
            data["_secret"] = {"name": entry.api_key_secret.name, "key": entry.api_key_secret.key}
        out[mid] = data
    return out


def _strip_secrets(models: dict[str, Any]) -> tuple[dict[str, Any], list[SecretRef]]:
    refs: list[SecretRef] = []
    clean: dict[str, Any] = {}
    for mid, data in models.items():
        if isinstance(data, dict) and "_secret" in data:
            data = dict(data)
            secret = data.pop("_secret")
            refs.append(SecretRef(data["api_key_env"], secret["name"], secret["key"]))
        clean[mid] = data
    return clean, sorted(refs)


def secret_refs(global_cfg: GlobalConfig, config: Mapping[str, Any]) -> list[SecretRef]:
    """The Secret keys the models of a rendered config need, as env vars, sorted."""
    used = list((config.get("models") or {}).keys())
    _, refs = _strip_secrets(_render_models(used, global_cfg.models))
    return refs


def pool_roots(pool_name: str, pool: PollingPoolSpec, global_cfg: GlobalConfig) -> list[str]:
    """The references a pool's config starts from: its task groups and its nodes' groups."""
    canon_pool = canonical_name(pool_name)
    roots = list(pool.task_groups)
    for name in sorted(global_cfg.workflow_nodes):
        body = global_cfg.workflow_nodes[name]
        if (p := _node_pool(body)) is not None and canonical_name(p) == canon_pool:
            roots.extend(node_refs(body))
    return roots


def touched_groups(refs: Iterable[str], resolver: Resolver) -> set[str]:
    """Canonical names of every group a chain from ``refs`` reaches, or would reach if the
    missing ones existed (so that creating a missing group re-triggers its dependents).

    ``resolver``: :func:`resolver_for` the namespace's groups (build it once, reuse it).
    """
    out: set[str] = set()
    for visit in FallbackGraph(resolver).walk((ref, ref) for ref in refs):
        if visit.target is not None:
            out.add(canonical_name(visit.target.group))
        else:
            out |= heads(visit.ref, resolver)
    return out


def reverse_fallback(resolver: Resolver) -> dict[str, set[str]]:
    """canonical group name -> canonical names of the groups that fall back to it."""
    return FallbackGraph(resolver).reverse()


def root_heads(refs: Iterable[str], resolver: Resolver) -> frozenset[str]:
    """Canonical names of the groups ``refs`` stand for (missing ones included)."""
    out: set[str] = set()
    for ref in refs:
        out |= heads(ref, resolver)
    return frozenset(out)


def users_of(
    group: str,
    resolver: Resolver,
    owners: Mapping[str, frozenset[str]],
    reverse: Mapping[str, set[str]] | None = None,
) -> tuple[set[str], set[str]]:
    """``(groups, owners)`` that reach ``group`` through fallback, existing or not.

    ``groups``: names of the groups whose fallback closure contains ``group``; ``owners``: the
    keys of ``owners`` (e.g. pool -> :func:`root_heads` of its references) whose closure
    contains it. One backward walk over the fallback edges (``reverse``, see
    :func:`reverse_fallback`; computed if not given).
    """
    reached = FallbackGraph(resolver).reaching(group, reverse)
    start = canonical_name(group)
    names = resolver.group_name
    groups = {n for c in reached - {start} if (n := names(c)) is not None}
    return groups, {key for key, found in owners.items() if found & reached}


def unresolved_refs(
    roots: Iterable[tuple[str, str]], resolver: Resolver
) -> list[tuple[str, str, str | None]]:
    """References that name nothing, in the closure of ``roots``.

    ``roots``: (where, reference) pairs. Returns (where, reference, group with no such tier)
    for each missing one, where "where" is the root's label or ``TaskGroup g spec.field``.
    Cheap (no "did you mean"), so a burst of half-created objects costs little.
    """
    missing: list[tuple[str, str, str | None]] = []
    for visit in FallbackGraph(resolver).walk(roots):
        if visit.target is None:
            head, dot, _ = visit.ref.rpartition(".")
            missing.append((visit.where, visit.ref, resolver.group_name(head) if dot else None))
    return missing


def render_pool_config(
    pool_name: str,
    pool: PollingPoolSpec,
    groups: Mapping[str, TaskGroupSpec],
    global_cfg: GlobalConfig,
    sidecars: int,
    pods: Sequence[str] = (),
) -> dict[str, Any]:
    """The combined-format config for one pool's sidecars (see the module docstring).

    ``groups``: every parsed task group of the pool's namespace, by name. ``sidecars``: the
    total desired replicas of the Deployments the pool serves (at least 1 is written).
    ``pods``: the pods that run the pool's sidecar now (each takes its share by name).
    """
    resolver = resolver_for(groups)
    canon_pool = canonical_name(pool_name)
    nodes = dict(global_cfg.workflow_nodes)
    own_nodes = {n for n, body in nodes.items()
                 if (p := _node_pool(body)) is not None and canonical_name(p) == canon_pool}
    roots = list(pool.task_groups)
    for n in sorted(own_nodes):
        roots.extend(node_refs(nodes[n]))
    included = resolver.reachable_groups(roots)
    chosen_nodes: dict[str, Any] = {}
    for n in sorted(nodes):
        body = nodes[n]
        if n in own_nodes:
            chosen_nodes[n] = body
            continue
        if _node_pool(body) is not None:
            continue
        refs = node_refs(body)
        targets = [resolver.parse_ref(r) for r in refs]
        if refs and all(t is not None and t.group in included for t in targets):
            chosen_nodes[n] = body
    chosen_groups = {g: groups[g] for g in sorted(included)}
    models, _ = _strip_secrets(_render_models(_models_of(chosen_groups.values()),
                                              global_cfg.models))
    config: dict[str, Any] = {
        "models": models,
        "task_groups": {
            g: spec.model_dump(mode="json", exclude_unset=True) for g, spec in chosen_groups.items()
        },
        "polling_pools": {pool_name: pool.model_dump(mode="json", exclude_unset=True)},
    }
    if chosen_nodes:
        config["workflow_nodes"] = chosen_nodes
    if global_cfg.concurrency_control is not None:
        config["concurrency_control"] = global_cfg.concurrency_control
    if global_cfg.rate_limiting is not None:
        config["rate_limiting"] = global_cfg.rate_limiting
    config["sidecar"] = sidecar_settings(pool_name, sidecars, pods)
    return config


def sidecar_settings(pool_name: str, sidecars: int, pods: Sequence[str] = ()) -> dict[str, Any]:
    """``sidecar: {pool, sidecars, pods}``: the budgets are split over ``sidecars``, the larger of
    the desired replicas and the pods seen, so the listed pods' shares never add up to more than
    a budget (during a scale-up, the pods not listed yet take the floor share)."""
    names = sorted(set(pods))
    out: dict[str, Any] = {"pool": pool_name, "sidecars": max(1, int(sidecars), len(names))}
    if names:
        out["pods"] = names
    return out


def render_group_config(
    group_name: str, groups: Mapping[str, TaskGroupSpec], global_cfg: GlobalConfig
) -> dict[str, Any]:
    """A group, every group reachable from it, and the catalog entries they use.

    Loading it validates the group as a sidecar would see it (references, cycles, catalog).
    The group comes first, so a cycle through it is reported on it.
    """
    resolver = resolver_for(groups)
    included = resolver.reachable_groups([group_name])
    order = [group_name, *sorted(included - {group_name})]
    chosen = {g: groups[g] for g in order if g in groups}
    models, _ = _strip_secrets(_render_models(_models_of(chosen.values()), global_cfg.models))
    return {
        "models": models,
        "task_groups": {
            g: spec.model_dump(mode="json", exclude_unset=True) for g, spec in chosen.items()
        },
    }
