"""Poll every pool's sidecars each interval; write circuit counts, Degraded and Events.

One operator-level loop (started by the startup handler), not a kopf timer per pool: a kopf
timer puts kopf's finalizer on every PollingPool, and a pool with a finalizer cannot be
deleted once the operator is gone. The loop polls the pools the operator has reconciled, at
most ``poll_concurrency`` sidecars at a time, each request bounded by ``poll_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from echelon_sidecar.config import canonical_name

from .aggregate import aggregate, budget_members, poll_sidecars, sidecar_targets
from .builders.status import build_group_health, build_pool_health, circuit_transitions
from .entries import GlobalEntry, GroupEntry
from .kube import KubeError
from .peering import leads
from .reconcile import pool_pods, reconcile_namespace
from .state import NsName, Runtime, now

__all__ = ["poll_forever", "poll_group_health", "poll_once", "poll_pool",
           "refresh_operator_global"]

logger = logging.getLogger("echelon_operator")


async def refresh_operator_global(rt: Runtime) -> bool:
    """Re-read the operator namespace's global-config ConfigMap; True when it changed."""
    ns, name = rt.settings.operator_namespace, rt.settings.global_config_name
    if not ns:
        return False
    try:
        body = await rt.kube.get_configmap(ns, name)
    except KubeError as exc:
        logger.warning("cannot read global config ConfigMap %s/%s: %s", ns, name, exc)
        return False
    entry = GlobalEntry.from_body(body) if body is not None else None
    old = rt.operator_global
    rt.operator_global = entry
    changed = (old.digest if old else None) != (entry.digest if entry else None)
    if entry is not None:
        await rt.note(entry.ref(), "global", "; ".join(entry.problems), type="Warning",
                      reason="InvalidGlobalConfig")
    return changed


async def poll_pool(rt: Runtime, namespace: str, name: str,
                    limit: asyncio.Semaphore | None = None) -> None:
    """Poll one pool's sidecars (``limit``: the round's bound on requests in flight, shared by
    every pool; a bound of the pool's own when None)."""
    entry = rt.indices.pool(namespace, name)
    if entry is None:
        return
    key = (namespace, canonical_name(entry.name))
    pods = await pool_pods(rt, namespace, rt.indices.workloads(namespace, entry.name))
    members = budget_members(pods.values(), entry.name)
    rt.members[key] = members
    state = rt.pool_state.get(key)
    if state is not None and state.pods != members:
        # a pod came or went: re-split the budgets by name (the pool's ConfigMap changes)
        rt.pool_runs.schedule((namespace, entry.name))
    reports = await poll_sidecars(sidecar_targets(pods.values()),
                                  limit_s=rt.settings.poll_timeout,
                                  concurrency=rt.settings.poll_concurrency, limit=limit)
    health = aggregate(reports)
    expected = state.instances if state is not None else ()
    new, old = await rt.update_status(entry, lambda prev: build_pool_health(
        health.counts, expected=expected, sidecars_polled=health.polled,
        sidecars_ready=health.ready, problems=health.problems, generation=entry.generation,
        previous=prev, now=now()))
    rt.health[key] = list(new.get("instances") or [])
    for change in circuit_transitions(old.get("instances") or [], new.get("instances") or []):
        await rt.event(entry.ref(), change.event_type, change.reason, change.message(entry.name))


async def poll_group_health(rt: Runtime, namespace: str) -> None:
    """Each group's counts: the sum over the pools of ``namespace`` that run its breakers."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    pools_of: dict[str, set[str]] = {}
    for (ns, _), instances in rt.health.items():
        if ns != namespace:
            continue
        for inst in instances:
            canon = canonical_name(str(inst.get("group")))
            by_group.setdefault(canon, []).append(inst)
    for (ns, _), state in rt.pool_state.items():
        if ns == namespace:
            for group in state.groups:
                pools_of.setdefault(canonical_name(group), set()).add(state.name)
    for entry in rt.indices.groups(namespace).values():
        canon = canonical_name(entry.name)
        instances = by_group.get(canon, [])
        models = sorted({m for t in entry.model.echelons.values() for m in t.models}
                        if entry.model is not None else set())
        new, old = await rt.update_status(entry, _group_health(entry, instances, models))
        pools = ", ".join(sorted(pools_of.get(canon, ()))) or "-"
        for change in circuit_transitions(old.get("instances") or [],
                                          new.get("instances") or []):
            await rt.event(entry.ref(), change.event_type, change.reason,
                           change.message(pools))


def _group_health(entry: GroupEntry, instances: list[dict[str, Any]], models: list[str]
                  ) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def build(prev: Mapping[str, Any]) -> dict[str, Any]:
        return build_group_health(instances, models=models, group=entry.name,
                                  generation=entry.generation, previous=prev, now=now())
    return build


async def poll_once(rt: Runtime) -> None:
    started = time.monotonic()
    if await refresh_operator_global(rt):
        for ns in rt.indices.namespaces():
            reconcile_namespace(rt, ns)
    keys: list[NsName] = [(ns, state.name) for (ns, _), state in rt.pool_state.items()]
    limit = asyncio.Semaphore(max(1, rt.settings.poll_concurrency))  # over all pools at once

    async def one(key: NsName) -> None:
        try:
            await poll_pool(rt, *key, limit)
        except (KubeError, OSError) as exc:
            rt.poll_errors += 1
            logger.warning("polling the sidecars of PollingPool %s/%s failed: %s", *key, exc)

    await asyncio.gather(*(one(k) for k in keys))
    for ns in sorted(rt.indices.namespaces()):
        # only once every pool of the namespace was polled: a half-known picture would
        # rewrite the groups' counts (e.g. right after a restart)
        pools = rt.indices.pools(ns)
        if any((ns, canonical_name(p)) not in rt.health for p in pools):
            continue
        try:
            await poll_group_health(rt, ns)
        except KubeError as exc:
            logger.warning("writing TaskGroup health in %s failed: %s", ns, exc)
    rt.last_poll = time.time()
    rt.last_poll_seconds = round(time.monotonic() - started, 3)
    rt.polls += 1


async def poll_forever(rt: Runtime) -> None:
    """Every ``poll_interval`` seconds (measured start to start), until cancelled."""
    loop = asyncio.get_running_loop()
    interval = rt.settings.poll_interval
    standby = False
    while True:
        started = loop.time()
        try:
            if not await leads(rt.kube, rt.settings):  # a standby peer neither polls nor writes
                standby = True
            elif standby:
                # taking over from another replica: what this one remembers of statuses is
                # older than what that one wrote; start again from the objects themselves
                # (kopf re-lists them as it resumes: wait a round for that)
                standby = False
                rt.status.clear()
            else:
                await poll_once(rt)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep polling; the next round may work
            rt.poll_errors += 1
            logger.exception("sidecar polling round failed")
        await asyncio.sleep(max(0.0, interval - (loop.time() - started)))
