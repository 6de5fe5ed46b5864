"""Turn the source documents' format into Kubernetes manifests without changing behaviour.

- one TaskGroup per group and one PollingPool per pool, names made Kubernetes-safe
  (``thinking_group`` -> ``thinking-group``) and every reference rewritten to match;
- the older group-level ``fallback_strategy`` / ``circuit_breaker`` move into ``fallbackConfig``;
- every fallback value a group inherited from ``global_fallback`` is written into the group, so
  the effective behaviour is the same once the global fallback is gone;
- tiers get an explicit ``priority`` (Kubernetes does not keep the order of map keys);
- the model catalog, workflow nodes, concurrency control and global rate limiting go into one
  ConfigMap labelled ``echelon.dev/config: global``, which the operator reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from echelon_sidecar.config import (
    API_GROUP,
    GLOBAL_CONFIG_LABEL,
    EchelonConfig,
    PollingPoolSpec,
    Resolver,
    TaskGroupSpec,
    kubernetes_name,
)

__all__ = ["Migration", "migrate"]

_VERSION = f"{API_GROUP}/v1alpha1"
_FOLDED = ("strategy", "max_attempts", "retry_delay", "max_retry_delay", "circuit_breaker")
_MAX_PRIORITY = 1000  # the bound of a tier's priority (config/tiers.py)


@dataclass
class Migration:
    """The manifests written and what changed, for the report."""

    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> manifest
    report: list[str] = field(default_factory=list)

    def files(self) -> dict[str, str]:
        return {name: _dump(doc) for name, doc in self.manifests.items()}


def _dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def _ref(ref: str, resolver: Resolver) -> str:
    parsed = resolver.parse_ref(ref)
    if parsed is None:
        return ref
    name = kubernetes_name(parsed.group)
    return f"{name}.{parsed.tier}" if parsed.tier else name


def migrate(config: EchelonConfig, namespace: str | None = None) -> Migration:
    """Manifests equivalent to ``config`` (which must be valid)."""
    out = Migration()
    resolver = Resolver(config)
    meta_ns = {"namespace": namespace} if namespace else {}
    if config.global_fallback is not None:
        out.report.append(
            "global_fallback: folded into every group that did not set a value itself; "
            "no global fallback remains"
        )
    for name, group in config.task_groups.items():
        k8s = kubernetes_name(name)
        spec, notes = _task_group_spec(name, group, resolver)
        out.manifests[f"taskgroup-{k8s}.yaml"] = {
            "apiVersion": _VERSION,
            "kind": "TaskGroup",
            "metadata": {"name": k8s, **meta_ns},
            "spec": spec,
        }
        rename = f" -> {k8s}" if k8s != name else ""
        out.report.append(f"task group {name}{rename}: " + ("; ".join(notes) or "unchanged"))
    for name, pool in config.polling_pools.items():
        k8s = kubernetes_name(name)
        data = pool.model_dump(exclude_unset=True, exclude={"name"})
        data["task_groups"] = [_ref(r, resolver) for r in pool.task_groups]
        spec = PollingPoolSpec.model_validate(data).model_dump(
            by_alias=True, exclude_unset=True, mode="json"
        )
        out.manifests[f"pollingpool-{k8s}.yaml"] = {
            "apiVersion": _VERSION,
            "kind": "PollingPool",
            "metadata": {"name": k8s, **meta_ns},
            "spec": spec,
        }
        rename = f" -> {k8s}" if k8s != name else ""
        out.report.append(f"polling pool {name}{rename}")
    global_data = _global_sections(config, resolver)
    if global_data:
        out.manifests["echelon-global-config.yaml"] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "echelon-global-config",
                **meta_ns,
                "labels": {GLOBAL_CONFIG_LABEL: "global", "app.kubernetes.io/part-of": "echelon"},
            },
            "data": {"config.yaml": _dump(global_data)},
        }
        out.report.append(
            "ConfigMap echelon-global-config: " + ", ".join(global_data) + " (read by the operator)"
        )
    return out


def _task_group_spec(
    name: str, group: TaskGroupSpec, resolver: Resolver
) -> tuple[dict[str, Any], list[str]]:
    """The TaskGroup spec of group ``name``, and notes of what migrating it changed."""
    notes: list[str] = []
    data = group.model_dump(exclude_unset=True, exclude={"name"})
    block = _fallback_block(name, group, data, resolver, notes)
    if block:
        data["fallback_config"] = block
    _make_priorities_explicit(group, data.get("echelons", {}), notes)
    spec = TaskGroupSpec.model_validate(data).model_dump(
        by_alias=True, exclude_unset=True, mode="json"
    )
    return spec, notes


def _fallback_block(
    name: str, group: TaskGroupSpec, data: dict[str, Any], resolver: Resolver, notes: list[str]
) -> dict[str, Any]:
    """The group's ``fallback_config``: the older group-level fields moved in (out of ``data``),
    the values it inherited from global_fallback written in, references made Kubernetes names."""
    block = dict(data.pop("fallback_config", None) or {})
    if data.pop("fallback_strategy", None) is not None:
        block.setdefault("strategy", group.fallback_strategy)
        notes.append("fallback_strategy -> fallbackConfig.strategy")
    if data.pop("circuit_breaker", None) is not None:
        block.setdefault("circuit_breaker", group.circuit_breaker.model_dump(exclude_unset=True)
                         if group.circuit_breaker else None)
        notes.append("circuit_breaker -> fallbackConfig.circuitBreaker")
    effective = resolver.effective_fallback(name)
    origins = dict(effective.origins)
    inherited = []
    for key in _FOLDED:
        if origins.get(key) == "global_fallback" and key not in block:
            value = getattr(effective, key)
            block[key] = value.model_dump(exclude_unset=True) if hasattr(
                value, "model_dump") else value
            inherited.append(key)
    if inherited:
        notes.append("from global_fallback: " + ", ".join(inherited))
    if block.get("fallback_groups"):
        block["fallback_groups"] = [_ref(r, resolver) for r in block["fallback_groups"]]
    if block.get("last_resort"):
        block["last_resort"] = _ref(block["last_resort"], resolver)
    return block


def _make_priorities_explicit(
    group: TaskGroupSpec, tiers: dict[str, Any], notes: list[str]
) -> None:
    """Give every tier of ``tiers`` (the group's dumped echelons) an explicit priority.

    Tiers without a priority come after every tier with one, in declaration order: they get
    the numbers after the highest given (all tiers are renumbered if that would pass the
    bound), so that no two tiers share one.
    """
    ordered = group.ordered_tiers()
    unset = [tier_name for tier_name, tier in ordered if tier.priority is None]
    top = max((t.priority for _, t in ordered if t.priority is not None), default=0)
    renumber = top + len(unset) > _MAX_PRIORITY
    for index, (tier_name, _tier) in enumerate(ordered, start=1):
        if renumber:
            tiers[tier_name]["priority"] = index
        elif "priority" not in tiers[tier_name]:
            top += 1
            tiers[tier_name]["priority"] = top
        else:
            continue
        notes.append(f"{tier_name}: priority {tiers[tier_name]['priority']} made explicit")


def _global_sections(config: EchelonConfig, resolver: Resolver) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if config.models:
        data["models"] = {
            mid: m.model_dump(exclude_unset=True, mode="json") for mid, m in config.models.items()
        }
    if config.workflow_nodes:
        nodes = {}
        for nname, node in config.workflow_nodes.items():
            body = node.model_dump(exclude_unset=True, mode="json")
            body["llm_group"] = _ref(node.llm_group, resolver)
            if node.fallback_groups is not None:
                body["fallback_groups"] = [_ref(r, resolver) for r in node.fallback_groups]
            if node.polling_pool:
                pool = resolver.pool_name(node.polling_pool)
                body["polling_pool"] = kubernetes_name(pool or node.polling_pool)
            nodes[nname] = body
        data["workflow_nodes"] = nodes
    for key in ("concurrency_control", "rate_limiting"):
        value = getattr(config, key)
        if value is not None:
            data[key] = value.model_dump(exclude_unset=True, mode="json")
    return data
