"""Status of TaskGroups and PollingPools: conditions, printer fields, circuit counts. Pure.

Conditions have the kubebuilder shape; ``lastTransitionTime`` changes only when a condition's
status flips. The reconcile owns ``Ready``, ``Invalid`` and (pools) ``Dedicated``; the sidecar
poller owns ``Degraded`` and the circuit counts. :func:`status_patch` turns a desired status
into a merge patch of the top-level fields that differ (None: nothing to write).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .plan import GroupPlan, PoolConfigMapPlan

__all__ = [
    "CONDITION_ORDER",
    "CircuitCounts",
    "Transition",
    "build_group_health",
    "build_group_status",
    "build_pool_health",
    "build_pool_status",
    "circuit_transitions",
    "clip",
    "instance_state",
    "open_circuits",
    "set_condition",
    "status_patch",
]

CONDITION_ORDER = ("Ready", "Degraded", "Invalid", "Dedicated")
MAX_MESSAGE = 1024
State = Literal["closed", "open", "halfOpen"]


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters (condition messages, Events)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def set_condition(
    conditions: Iterable[Mapping[str, Any]],
    type: str,
    status: bool | str,
    reason: str,
    message: str,
    *,
    now: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """``conditions`` with ``type`` set; its lastTransitionTime kept unless status flips."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    out = [dict(c) for c in conditions if c.get("type") != type]
    old = next((c for c in conditions if c.get("type") == type), None)
    since = old.get("lastTransitionTime") if old and old.get("status") == value else None
    new: dict[str, Any] = {
        "type": type,
        "status": value,
        "reason": reason,
        "message": clip(message),
        "lastTransitionTime": since or now,
    }
    if generation is not None:
        new["observedGeneration"] = generation
    out.append(new)
    rank = {t: i for i, t in enumerate(CONDITION_ORDER)}
    out.sort(key=lambda c: (rank.get(str(c.get("type")), len(rank)), str(c.get("type"))))
    return out


def _condition(status: Mapping[str, Any], type: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type), None)


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any] | None:
    """The top-level status fields of ``desired`` that differ from ``current``."""
    changed = {k: v for k, v in desired.items() if current.get(k) != v}
    return changed or None


# -- pools ---------------------------------------------------------------------------------


def build_pool_status(
    plan: PoolConfigMapPlan,
    *,
    spec: Mapping[str, Any],
    replicas: int,
    workloads: Sequence[str],
    configmap: str | None,
    generation: int | None,
    previous: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    """The reconcile's part of a pool's status. ``configmap``: the name, once it is applied;
    ``workloads``: the workloads served, as ``Kind/name``."""
    conditions = list(previous.get("conditions") or [])
    if plan.valid:
        conditions = set_condition(conditions, "Invalid", False, "Valid",
                                   "the pool and every group it reaches are valid",
                                   now=now, generation=generation)
        conditions = set_condition(
            conditions, "Ready", configmap is not None,
            "Rendered" if configmap else "NotRendered",
            f"config {plan.version} rendered into ConfigMap {configmap}" if configmap
            else "the config is valid but its ConfigMap is not written yet",
            now=now, generation=generation)
    else:
        message = "; ".join(plan.errors)
        conditions = set_condition(conditions, "Invalid", True, "ValidationFailed", message,
                                   now=now, generation=generation)
        kept = previous.get("configMap")
        conditions = set_condition(
            conditions, "Ready", False, "Invalid",
            "the spec is invalid (see the Invalid condition)"
            + (f"; ConfigMap {kept} keeps the last valid config" if kept else ""),
            now=now, generation=generation)
    if plan.mixed_task_types:
        conditions = set_condition(conditions, "Dedicated", False, "MixedTaskTypes",
                                   plan.mixed_task_types, now=now, generation=generation)
    elif plan.config is not None:
        conditions = set_condition(conditions, "Dedicated", True, "SingleTaskType",
                                   "the pool serves one task type", now=now,
                                   generation=generation)
    out: dict[str, Any] = {
        "observedGeneration": generation,
        "groups": ",".join(str(g) for g in spec.get("taskGroups") or []),
        "rotation": spec.get("rotationStrategy") or "round_robin",
        "sidecars": replicas,
        "deployments": sorted(w.split("/", 1)[1] for w in workloads
                              if w.startswith("Deployment/")),
        "workloads": sorted(workloads),
        "conditions": conditions,
        "ready": next(c["status"] for c in conditions if c["type"] == "Ready"),
    }
    if plan.valid and configmap:
        out["configMap"] = configmap
        out["configVersion"] = plan.version
    return out


@dataclass(frozen=True)
class CircuitCounts:
    """How many sidecars report one (group, model) breaker closed / open / half-open."""

    closed: int = 0
    open: int = 0
    half_open: int = 0
    last_error: str | None = None

    def to_status(self, group: str, model: str) -> dict[str, Any]:
        out: dict[str, Any] = {"group": group, "model": model, "closed": self.closed,
                               "open": self.open, "halfOpen": self.half_open}
        if self.last_error:
            out["lastError"] = self.last_error
        return out


def instance_state(entry: Mapping[str, Any]) -> State | None:
    """The aggregate state of one status instance: open if any sidecar says open, ..."""
    if entry.get("open"):
        return "open"
    if entry.get("halfOpen"):
        return "halfOpen"
    if entry.get("closed"):
        return "closed"
    return None


def open_circuits(instances: Iterable[Mapping[str, Any]], expected: Iterable[tuple[str, str]]
                  ) -> str:
    """``"1/6"``: instances any sidecar reports open / all instances (expected or reported)."""
    keys = {(str(i.get("group")), str(i.get("model"))) for i in instances} | set(expected)
    opened = sum(1 for i in instances if i.get("open"))
    return f"{opened}/{len(keys)}"


def build_pool_health(
    counts: Mapping[tuple[str, str], CircuitCounts],
    *,
    expected: Iterable[tuple[str, str]],
    sidecars_polled: int,
    sidecars_ready: int,
    problems: Sequence[str],
    generation: int | None,
    previous: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    """The poller's part of a pool's status. ``problems``: unreachable / refusing sidecars."""
    instances = [c.to_status(g, m) for (g, m), c in sorted(counts.items())]
    opened = [f"{i['group']}/{i['model']}" for i in instances if i["open"]]
    half = [f"{i['group']}/{i['model']}" for i in instances if i["halfOpen"] and not i["open"]]
    conditions = list(previous.get("conditions") or [])
    reasons: list[str] = []
    if opened:
        reasons.append(f"{len(opened)} circuit(s) open: {', '.join(opened)}")
    if half:
        reasons.append(f"{len(half)} circuit(s) half-open: {', '.join(half)}")
    reasons.extend(problems)
    if reasons:
        reason = "CircuitsOpen" if opened else "HalfOpen" if half else "SidecarsUnhealthy"
        conditions = set_condition(conditions, "Degraded", True, reason, "; ".join(reasons),
                                   now=now, generation=generation)
    elif sidecars_polled == 0:
        conditions = set_condition(conditions, "Degraded", False, "NoSidecars",
                                   "no running sidecar to poll", now=now, generation=generation)
    else:
        conditions = set_condition(conditions, "Degraded", False, "AllClosed",
                                   f"{sidecars_polled} sidecar(s) report every circuit closed",
                                   now=now, generation=generation)
    return {
        "instances": instances,
        "openCircuits": open_circuits(instances, expected),
        "sidecarsReady": sidecars_ready,
        "conditions": conditions,
    }


@dataclass(frozen=True)
class Transition:
    """An instance whose aggregate circuit state changed between two polls."""

    group: str
    model: str
    before: State | None
    after: State
    counts: Mapping[str, Any]

    @property
    def reason(self) -> str:
        return {"open": "CircuitOpened", "closed": "CircuitClosed",
                "halfOpen": "CircuitHalfOpen"}[self.after]

    @property
    def event_type(self) -> str:
        return "Warning" if self.after == "open" else "Normal"

    def message(self, pool: str) -> str:
        c = self.counts
        total = int(c.get("closed", 0)) + int(c.get("open", 0)) + int(c.get("halfOpen", 0))
        n = {"open": c.get("open", 0), "closed": c.get("closed", 0),
             "halfOpen": c.get("halfOpen", 0)}[self.after]
        word = {"open": "open", "closed": "closed", "halfOpen": "half-open"}[self.after]
        text = (f"{self.group}/{self.model}: circuit {word} on {n}/{total} sidecar(s) of pool "
                f"{pool} (was {self.before or 'unknown'})")
        if c.get("lastError") and self.after != "closed":
            text += f"; last error: {c['lastError']}"
        return text


def circuit_transitions(
    before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]
) -> list[Transition]:
    """State changes worth an Event (a newly seen closed circuit is not one)."""
    old = {(str(i.get("group")), str(i.get("model"))): instance_state(i) for i in before}
    out: list[Transition] = []
    for entry in after:
        key = (str(entry.get("group")), str(entry.get("model")))
        state = instance_state(entry)
        prev = old.get(key)
        if state is None or state == prev or (prev is None and state == "closed"):
            continue
        out.append(Transition(key[0], key[1], prev, state, dict(entry)))
    return out


# -- groups --------------------------------------------------------------------------------


def build_group_status(
    plan: GroupPlan,
    *,
    pools: Sequence[str],
    generation: int | None,
    previous: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    """The reconcile's part of a TaskGroup's status."""
    conditions = list(previous.get("conditions") or [])
    served = f"served by pool(s) {', '.join(sorted(pools))}" if pools else "no pool serves it yet"
    if plan.valid:
        conditions = set_condition(conditions, "Invalid", False, "Valid",
                                   "the group and every group it falls back to are valid",
                                   now=now, generation=generation)
        conditions = set_condition(conditions, "Ready", True, "Valid", served,
                                   now=now, generation=generation)
    else:
        conditions = set_condition(conditions, "Invalid", True, "ValidationFailed",
                                   "; ".join(plan.errors), now=now, generation=generation)
        conditions = set_condition(conditions, "Ready", False, "Invalid",
                                   "the group is invalid (see the Invalid condition)",
                                   now=now, generation=generation)
    return {
        "observedGeneration": generation,
        "tiers": plan.tiers,
        "strategy": plan.strategy,
        "pools": sorted(pools),
        "conditions": conditions,
        "ready": next(c["status"] for c in conditions if c["type"] == "Ready"),
    }


def build_group_health(
    instances: Iterable[Mapping[str, Any]],
    *,
    models: Iterable[str],
    group: str,
    generation: int | None,
    previous: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    """A group's circuit counts summed over the pools whose sidecars run its breakers."""
    summed: dict[str, dict[str, Any]] = {}
    for entry in instances:
        model = str(entry.get("model"))
        acc = summed.setdefault(model, {"group": group, "model": model, "closed": 0, "open": 0,
                                        "halfOpen": 0})
        for key in ("closed", "open", "halfOpen"):
            acc[key] += int(entry.get(key, 0))
        if entry.get("lastError"):
            acc["lastError"] = entry["lastError"]
    listed = [summed[m] for m in sorted(summed)]
    opened = [f"{group}/{i['model']}" for i in listed if i["open"]]
    conditions = list(previous.get("conditions") or [])
    if opened:
        conditions = set_condition(conditions, "Degraded", True, "CircuitsOpen",
                                   f"{len(opened)} circuit(s) open: {', '.join(opened)}",
                                   now=now, generation=generation)
    else:
        conditions = set_condition(
            conditions, "Degraded", False, "AllClosed" if listed else "NoSidecars",
            "no circuit is open" if listed else "no sidecar reports this group yet",
            now=now, generation=generation)
    return {
        "instances": listed,
        "openCircuits": open_circuits(listed, [(group, m) for m in models]),
        "conditions": conditions,
    }
