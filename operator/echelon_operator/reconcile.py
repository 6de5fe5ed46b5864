"""Reconcile pools, task groups and Deployments: fetch from the indexes, build, apply.

Every function is idempotent: it computes what the cluster should hold, compares it with what
it holds, and writes only the difference. Runs for one pool or group are serialized and
coalesced (see :mod:`.coalesce`); Deployments are patched under a per-Deployment lock with
the resourceVersion they were read at.
"""

from __future__ import annotations

import asyncio

import dataclasses
import functools
import logging
from collections.abc import Mapping
from typing import Any

from echelon_sidecar.config import canonical_name

from .aggregate import budget_members
from .builders.configmap import (
    config_header,
    configmap_patch,
    is_managed,
    render_configmap,
    secret_refs_of,
)
from .builders.plan import plan_group, plan_pool
from .builders.render import SecretRef, users_of
from .builders.sidecar import inject_sidecar, injected_pool, remove_sidecar
from .builders.status import build_group_status, build_pool_status, clip
from .coalesce import Coalescer
from .entries import DeploymentEntry, GroupEntry, PoolEntry, selector_string
from .kube import Conflict, Kube, NotFound
from .names import POOL_LABEL, configmap_name
from .runtime import Indices, NsName, PoolState, Runtime, now
from .settings import OperatorSettings

__all__ = [
    "build_runtime",
    "group_dependents",
    "pool_deleted",
    "pool_pods",
    "pools_serving",
    "reconcile_dependents",
    "reconcile_deployment",
    "reconcile_group",
    "reconcile_namespace",
    "reconcile_pool",
    "replicas_changed",
]

logger = logging.getLogger("echelon_operator")


def build_runtime(settings: OperatorSettings, kube: Kube, indices: Indices) -> Runtime:
    rt = Runtime(settings, kube, indices)

    async def pool(key: NsName) -> None:
        await reconcile_pool(rt, *key)

    async def group(key: NsName) -> None:
        await reconcile_group(rt, *key)

    rt.pool_runs = Coalescer(pool, "reconcile PollingPool")
    rt.group_runs = Coalescer(group, "reconcile TaskGroup")
    return rt


# -- pools ------------------------------------------------------------------------------


async def pool_pods(rt: Runtime, namespace: str, deployments: list[DeploymentEntry]
                    ) -> dict[str, dict[str, Any]]:
    """The pods of the Deployments a pool serves, by name (one list call per Deployment, all
    at once: the client's worker threads bound how many are in flight; one after the other,
    a pool of 50 Deployments took seconds of waiting per poll round)."""
    pods: dict[str, dict[str, Any]] = {}
    lists = await asyncio.gather(*(rt.kube.list_pods(namespace, selector_string(dep.selector))
                                   for dep in deployments))
    for listed in lists:
        for pod in listed:
            pods[str((pod.get("metadata") or {}).get("name"))] = pod
    return pods


async def reconcile_pool(rt: Runtime, namespace: str, name: str) -> None:
    """Render the pool's ConfigMap, write its status, bring its Deployments up to date."""
    entry = rt.indices.pool(namespace, name)
    if entry is None:
        return
    key = (namespace, canonical_name(entry.name))
    snapshot = rt.groups(namespace)
    global_cfg = rt.global_config(namespace)
    deployments = rt.indices.deployments(namespace, entry.name)
    replicas = sum(d.replicas for d in deployments)
    members = rt.members.get(key)
    if members is None:
        # not polled yet (e.g. the operator just started): ask now, so that the first render
        # after a restart lists the same pods as the last one did (nothing changes)
        members = budget_members((await pool_pods(rt, namespace, deployments)).values(),
                                 entry.name)
        rt.members[key] = members
    plan = await rt.compute(functools.partial(
        plan_pool, entry.name, entry.model, snapshot.parsed, global_cfg, replicas,
        pods=members, pool_problems=entry.problems, broken_groups=snapshot.broken,
        header=config_header(namespace, entry.name)))
    previous = rt.pool_state.get(key)
    if previous is not None and previous.uid != entry.uid:
        previous = None
    cm_name: str | None = None
    changed = False
    if plan.valid:
        assert plan.text is not None and plan.version is not None
        desired = render_configmap(namespace, entry.name, entry.uid, plan.text, plan.version,
                                   plan.secret_refs)
        taken, changed = await _apply_configmap(rt.kube, namespace, desired)
        if taken:
            plan = dataclasses.replace(plan, text=None, version=None, errors=(taken,))
        else:
            cm_name = desired["metadata"]["name"]
    state = PoolState(
        entry.name, entry.uid,
        version=plan.version if cm_name else (previous.version if previous else None),
        secret_refs=plan.secret_refs if cm_name else (previous.secret_refs if previous else None),
        replicas=replicas,
        deployments=tuple(d.name for d in deployments),
        groups=plan.groups,
        instances=plan.instances if cm_name else (previous.instances if previous else ()),
        # the pods this plan was made for (also when invalid: no re-plan per poll round)
        pods=members,
    )
    rt.pool_state[key] = state
    _, old = await rt.update_status(entry, lambda prev: build_pool_status(
        plan, spec=entry.spec, replicas=replicas, deployments=state.deployments,
        configmap=cm_name, generation=entry.generation, previous=prev, now=now()))
    await _note_plan(rt, entry, old, plan.errors, plan.warnings)
    if changed:
        await rt.event(entry.ref(), "Normal", "ConfigRendered",
                       f"ConfigMap {cm_name} holds config {plan.version}: {len(plan.groups)} "
                       f"task group(s), budgets split over {plan.sidecars} sidecar(s)")
    if cm_name is not None:
        for dep in deployments:
            await reconcile_deployment(rt, namespace, dep.name)
    # the groups this pool serves list it in their status
    before = set(previous.groups) if previous is not None else set()
    for group in sorted(before ^ set(state.groups)):
        rt.group_runs.schedule((namespace, group))


async def _apply_configmap(kube: Kube, namespace: str, desired: Mapping[str, Any]
                           ) -> tuple[str | None, bool]:
    """Create or patch the ConfigMap. ``(problem, changed)``; problem: it is someone else's."""
    name = desired["metadata"]["name"]
    existing = await kube.get_configmap(namespace, name)
    if existing is None:
        try:
            await kube.create_configmap(namespace, desired)
            return None, True
        except Conflict:
            existing = await kube.get_configmap(namespace, name)
            if existing is None:
                raise
    if not is_managed(existing):
        return (f"ConfigMap {name} already exists and is not managed by echelon-operator; "
                "rename or delete it so the pool's config can be written"), False
    patch = configmap_patch(existing, desired)
    if patch is None:
        return None, False
    await kube.patch_configmap(namespace, name, patch)
    return None, True


async def _note_plan(rt: Runtime, entry: GroupEntry | PoolEntry, old: Mapping[str, Any],
                     errors: tuple[str, ...], warnings: tuple[str, ...]) -> None:
    """Warning Events when the object turns invalid (or its problems change), Normal when it
    is valid again. A problem already in the status before this reconcile (e.g. before the
    operator restarted) is not reported twice."""
    invalid = next((c for c in old.get("conditions") or []
                    if c.get("type") == "Invalid" and c.get("status") == "True"), None)
    if invalid is not None:
        rt.noted(entry.uid, "invalid", str(invalid.get("message", "")))
    await rt.note(entry.ref(), "invalid", clip("; ".join(errors)), type="Warning",
                  reason="Invalid",
                  cleared=("Normal", "Valid", f"{entry.kind} {entry.name} is valid again"))
    await rt.note(entry.ref(), "warnings", clip("; ".join(warnings)), type="Warning",
                  reason="ConfigWarning")


async def pool_deleted(rt: Runtime, namespace: str, name: str, uid: str) -> None:
    """Take the sidecar out of the pool's Deployments; refresh the groups it served."""
    key = (namespace, canonical_name(name))
    state = rt.pool_state.pop(key, None)
    rt.health.pop(key, None)
    rt.members.pop(key, None)
    rt.forget(uid)
    for dep in rt.indices.deployments(namespace, name):
        await reconcile_deployment(rt, namespace, dep.name)
    for group in state.groups if state is not None else ():
        rt.group_runs.schedule((namespace, group))


def replicas_changed(rt: Runtime, namespace: str) -> None:
    """Re-render pools of ``namespace`` whose Deployments or replica counts changed."""
    for (ns, _), state in list(rt.pool_state.items()):
        if ns != namespace:
            continue
        deployments = rt.indices.deployments(ns, state.name)
        if (sum(d.replicas for d in deployments) != state.replicas
                or tuple(d.name for d in deployments) != state.deployments):
            rt.pool_runs.schedule((ns, state.name))
    for entry in rt.indices.pools(namespace).values():  # pools not rendered yet
        if ((namespace, canonical_name(entry.name)) not in rt.pool_state
                and rt.indices.deployments(namespace, entry.name)):
            rt.pool_runs.schedule((namespace, entry.name))


# -- task groups ----------------------------------------------------------------------------


def _users(rt: Runtime, namespace: str, group: str) -> tuple[set[str], set[str]]:
    """(groups, pools) of ``namespace`` whose config includes ``group`` (or would)."""
    snapshot = rt.groups(namespace)
    return users_of(group, snapshot.resolver, rt.pool_heads(namespace), snapshot.reverse)


def pools_serving(rt: Runtime, namespace: str, group: str) -> list[str]:
    """Pools whose sidecars carry ``group`` (directly or through fallback)."""
    return sorted(_users(rt, namespace, group)[1])


async def reconcile_group(rt: Runtime, namespace: str, name: str) -> None:
    """Validate the group with everything it falls back to; write its status."""
    entry = rt.indices.group(namespace, name)
    if entry is None:
        return
    snapshot = rt.groups(namespace)
    plan = await rt.compute(functools.partial(
        plan_group, entry.name, snapshot.parsed, rt.global_config(namespace),
        group_problems=entry.problems, broken_groups=snapshot.broken))
    pools = pools_serving(rt, namespace, entry.name)
    _, old = await rt.update_status(entry, lambda prev: build_group_status(
        plan, pools=pools, generation=entry.generation, previous=prev, now=now()))
    await _note_plan(rt, entry, old, plan.errors, plan.warnings)


def group_dependents(rt: Runtime, namespace: str, group: str) -> tuple[list[str], list[str]]:
    """``(pools, groups)`` whose config includes ``group`` or would if it existed."""
    groups, pools = _users(rt, namespace, group)
    return sorted(pools), sorted(groups)


def reconcile_dependents(rt: Runtime, namespace: str, group: str) -> None:
    pools, groups = group_dependents(rt, namespace, group)
    for pool in pools:
        rt.pool_runs.schedule((namespace, pool))
    for other in groups:
        rt.group_runs.schedule((namespace, other))


def reconcile_namespace(rt: Runtime, namespace: str) -> None:
    """Everything in a namespace (its global config changed)."""
    for pool in rt.indices.pools(namespace):
        rt.pool_runs.schedule((namespace, pool))
    for group in rt.indices.groups(namespace):
        rt.group_runs.schedule((namespace, group))


# -- Deployments ----------------------------------------------------------------------------


async def _secret_refs_for(rt: Runtime, namespace: str, pool: PoolEntry
                           ) -> tuple[SecretRef, ...] | None:
    """The Secret refs of the pool's rendered ConfigMap; None if it was never rendered."""
    state = rt.pool_state.get((namespace, canonical_name(pool.name)))
    if state is not None and state.uid == pool.uid and state.secret_refs is not None:
        return state.secret_refs
    cm = await rt.kube.get_configmap(namespace, configmap_name(pool.name))
    if cm is None or not is_managed(cm):
        return None
    owners = (cm.get("metadata") or {}).get("ownerReferences") or []
    if not any(o.get("uid") == pool.uid for o in owners):
        return None  # left over from a deleted pool of the same name
    refs = secret_refs_of(cm)
    return tuple(refs) if refs is not None else None


async def _deployment_patch(rt: Runtime, namespace: str, dep: Mapping[str, Any]
                            ) -> tuple[dict[str, Any] | None, str]:
    labels = (dep.get("metadata") or {}).get("labels") or {}
    wanted = labels.get(POOL_LABEL)
    current = injected_pool(dep)
    if wanted:
        pool = rt.indices.pool(namespace, str(wanted))
        if pool is not None:
            refs = await _secret_refs_for(rt, namespace, pool)
            if refs is not None:
                return inject_sidecar(dep, pool.name, rt.settings, refs), pool.name
            if current is None or canonical_name(current) == canonical_name(pool.name):
                return None, pool.name  # not rendered yet: the pool's reconcile comes back
    return remove_sidecar(dep), ""


async def reconcile_deployment(rt: Runtime, namespace: str, name: str,
                               body: Mapping[str, Any] | None = None) -> None:
    """Add, correct or remove the sidecar of one Deployment (never one without our label or
    annotation)."""
    async with rt.deploy_locks((namespace, name)):
        dep = dict(body) if body is not None else await rt.kube.get_deployment(namespace, name)
        for _ in range(5):
            if dep is None:
                return
            patch, pool = await _deployment_patch(rt, namespace, dep)
            if patch is None:
                return
            try:
                await rt.kube.patch_deployment(namespace, name, patch)
            except Conflict:
                dep = await rt.kube.get_deployment(namespace, name)
                continue
            except NotFound:
                return  # deleted meanwhile (e.g. its namespace is going away)
            ref = {"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": name, "namespace": namespace,
                                "uid": (dep.get("metadata") or {}).get("uid")}}
            if pool:
                await rt.event(ref, "Normal", "SidecarInjected",
                               f"echelon-sidecar serving pool {pool} added to the pod template")
            else:
                await rt.event(ref, "Normal", "SidecarRemoved",
                               "echelon-sidecar removed from the pod template")
            return
        logger.warning("Deployment %s/%s kept changing; will retry on its next event",
                       namespace, name)
