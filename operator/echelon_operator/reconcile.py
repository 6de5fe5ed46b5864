"""Reconcile pools, task groups and workloads: fetch from the indexes, build, apply.

Every function is idempotent: it computes what the cluster should hold, compares it with what
it holds, and writes only the difference. Runs for one pool or group are serialized and
coalesced (see :mod:`.coalesce`); workloads (Deployments, StatefulSets, CronJobs) are patched
under a per-workload lock with the resourceVersion they were read at. Jobs are never patched
(their pod template is immutable): see :func:`check_job`.
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
from .entries import GroupEntry, PoolEntry, WorkloadEntry
from .kube import Conflict, Kube, NotFound
from .names import POOL_LABEL, configmap_name
from .settings import OperatorSettings
from .state import Indices, NsName, PoolState, Runtime, now
from .workloads import (
    JOB,
    KINDS,
    WorkloadKind,
    carries_sidecar,
    created_by_cronjob,
    find_sidecar,
    job_finished,
    pod_template,
)

__all__ = [
    "build_runtime",
    "check_job",
    "group_dependents",
    "pool_deleted",
    "pool_pods",
    "pools_serving",
    "reconcile_dependents",
    "reconcile_group",
    "reconcile_namespace",
    "reconcile_pool",
    "reconcile_workload",
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


async def pool_pods(rt: Runtime, namespace: str, workloads: list[WorkloadEntry]
                    ) -> dict[str, dict[str, Any]]:
    """The pods of the workloads a pool serves, by name (one list call per pod selector: a
    Deployment's, StatefulSet's or Job's own; for CronJobs the pool label the operator puts on
    their pod template), all at once: the client's worker threads bound how many are in
    flight; one after the other, a pool of 50 Deployments took seconds of waiting per round."""
    pods: dict[str, dict[str, Any]] = {}
    selectors = dict.fromkeys(w.selector for w in workloads if w.selector)
    lists = await asyncio.gather(*(rt.kube.list_pods(namespace, sel) for sel in selectors))
    for listed in lists:
        for pod in listed:
            pods[str((pod.get("metadata") or {}).get("name"))] = pod
    return pods


async def reconcile_pool(rt: Runtime, namespace: str, name: str) -> None:
    """Render the pool's ConfigMap, write its status, bring its workloads up to date."""
    entry = rt.indices.pool(namespace, name)
    if entry is None:
        return
    key = (namespace, canonical_name(entry.name))
    snapshot = rt.groups(namespace)
    global_cfg = rt.global_config(namespace)
    workloads = rt.indices.workloads(namespace, entry.name)
    replicas = sum(w.replicas for w in workloads)
    members = rt.members.get(key)
    if members is None:
        # not polled yet (e.g. the operator just started): ask now, so that the first render
        # after a restart lists the same pods as the last one did (nothing changes)
        members = budget_members((await pool_pods(rt, namespace, workloads)).values(),
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
        workloads=tuple(w.key for w in workloads),
        groups=plan.groups,
        instances=plan.instances if cm_name else (previous.instances if previous else ()),
        # the pods this plan was made for (also when invalid: no re-plan per poll round)
        pods=members,
    )
    rt.pool_state[key] = state
    _, old = await rt.update_status(entry, lambda prev: build_pool_status(
        plan, spec=entry.spec, replicas=replicas, workloads=state.workloads,
        configmap=cm_name, generation=entry.generation, previous=prev, now=now()))
    await _note_plan(rt, entry, old, plan.errors, plan.warnings)
    if changed:
        await rt.event(entry.ref(), "Normal", "ConfigRendered",
                       f"ConfigMap {cm_name} holds config {plan.version}: {len(plan.groups)} "
                       f"task group(s), budgets split over {plan.sidecars} sidecar(s)")
    if cm_name is not None:
        for w in workloads:
            await reconcile_workload(rt, KINDS[w.kind], namespace, w.name)
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
    """Take the sidecar out of the pool's workloads; refresh the groups it served."""
    key = (namespace, canonical_name(name))
    state = rt.pool_state.pop(key, None)
    rt.health.pop(key, None)
    rt.members.pop(key, None)
    rt.forget(uid)
    for w in rt.indices.workloads(namespace, name):
        await reconcile_workload(rt, KINDS[w.kind], namespace, w.name)
    for group in state.groups if state is not None else ():
        rt.group_runs.schedule((namespace, group))


def replicas_changed(rt: Runtime, namespace: str) -> None:
    """Re-render pools of ``namespace`` whose workloads or replica counts changed."""
    for (ns, _), state in list(rt.pool_state.items()):
        if ns != namespace:
            continue
        workloads = rt.indices.workloads(ns, state.name)
        if (sum(w.replicas for w in workloads) != state.replicas
                or tuple(w.key for w in workloads) != state.workloads):
            rt.pool_runs.schedule((ns, state.name))
    for entry in rt.indices.pools(namespace).values():  # pools not rendered yet
        if ((namespace, canonical_name(entry.name)) not in rt.pool_state
                and rt.indices.workloads(namespace, entry.name)):
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


def _needs_native(kind: WorkloadKind, name: str, rt: Runtime) -> str:
    server = ".".join(map(str, rt.server_version)) if rt.server_version else "unknown"
    why = (f"the API server is Kubernetes {server}" if rt.settings.sidecar_mode == "auto"
           else "the operator runs with --sidecar-mode container")
    return (f"{kind.kind} {name}: its pods run to completion, which needs the sidecar as a native "
            "sidecar (an init container with restartPolicy: Always, Kubernetes 1.29+); "
            f"{why}, so no sidecar is added (a regular sidecar container would keep every "
            "Job from completing)")


async def _workload_patch(rt: Runtime, kind: WorkloadKind, namespace: str,
                          obj: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str, str | None]:
    """``(patch or None, pool injected or "" for removed, warning or None)``."""
    meta = obj.get("metadata") or {}
    wanted = (meta.get("labels") or {}).get(POOL_LABEL)
    current = injected_pool(obj)
    if wanted:
        pool = rt.indices.pool(namespace, str(wanted))
        if pool is not None:
            if kind.completes and not rt.native_sidecars:
                return (remove_sidecar(obj, kind=kind), "",
                        _needs_native(kind, str(meta.get("name")), rt))
            refs = await _secret_refs_for(rt, namespace, pool)
            if refs is not None:
                label = str(wanted) if kind.pods_by_pool_label else None
                return inject_sidecar(obj, pool.name, rt.settings, refs, kind=kind,
                                      native=rt.native_sidecars, pod_label=label), pool.name, None
            if current is None or canonical_name(current) == canonical_name(pool.name):
                return None, pool.name, None  # not rendered yet: the pool's reconcile comes back
    return remove_sidecar(obj, kind=kind), "", None


def _form(native: bool) -> str:
    return ("as a native sidecar (an init container with restartPolicy: Always)" if native
            else "as a regular container")


async def reconcile_workload(rt: Runtime, kind: WorkloadKind, namespace: str, name: str,
                             body: Mapping[str, Any] | None = None) -> None:
    """Add, correct or remove the sidecar of one workload (never one without our label or
    annotation). Jobs are only checked (:func:`check_job`): their template cannot change."""
    if not kind.patchable:
        if body is not None:
            await check_job(rt, body)
        return
    async with rt.workload_locks((namespace, f"{kind.kind}/{name}")):
        obj = dict(body) if body is not None else await rt.kube.get_workload(kind, namespace,
                                                                              name)
        for _ in range(5):
            if obj is None:
                return
            patch, pool, warning = await _workload_patch(rt, kind, namespace, obj)
            ref = kind.ref(namespace, name, (obj.get("metadata") or {}).get("uid"))
            await rt.note(ref, "sidecar", warning, type="Warning", reason="SidecarNotInjected")
            if patch is None:
                return
            try:
                result = await rt.kube.patch_workload(kind, namespace, name, patch)
            except Conflict:
                obj = await rt.kube.get_workload(kind, namespace, name)
                continue
            except NotFound:
                return  # deleted meanwhile (e.g. its namespace is going away)
            if pool and rt.native_sidecars and not _native_kept(kind, result):
                await _native_refused(rt, ref)
                obj = result  # correct it at once, as a regular container
                continue
            if pool:
                await rt.event(ref, "Normal", "SidecarInjected",
                               f"echelon-sidecar serving pool {pool} added to the pod template "
                               + _form(rt.native_sidecars))
            else:
                await rt.event(ref, "Normal", "SidecarRemoved",
                               "echelon-sidecar removed from the pod template")
            return
        logger.warning("%s %s/%s kept changing; will retry on its next event", kind.kind,
                       namespace, name)


def _native_kept(kind: WorkloadKind, result: Mapping[str, Any] | None) -> bool:
    """The API server kept the native sidecar as sent (``restartPolicy: Always``)."""
    found = find_sidecar(pod_template(result or {}, kind).get("spec") or {})
    return found is not None and found[0] == "initContainers"


async def _native_refused(rt: Runtime, ref: Mapping[str, Any]) -> None:
    """The API server dropped ``restartPolicy`` of the init container: native sidecars are off
    on this cluster (its SidecarContainers feature gate). Regular containers from now on."""
    rt.native_sidecars = False
    message = ("the API server dropped restartPolicy: Always of the echelon-sidecar init "
               "container: native sidecars are off on this cluster (the SidecarContainers "
               "feature gate), so echelon-operator injects regular containers from now on; "
               "run it with --sidecar-mode container to say so")
    logger.error("%s", message)
    await rt.event(ref, "Warning", "NativeSidecarsUnavailable", message)
    for ns in rt.indices.namespaces():
        reconcile_namespace(rt, ns)  # every pool re-applies its workloads in the new form


async def check_job(rt: Runtime, job: Mapping[str, Any]) -> None:
    """A labelled Job created without the sidecar gets a Warning Event saying why it runs
    without one and what to do instead (once per Job; a Job is never patched)."""
    meta = job.get("metadata") or {}
    name, namespace = str(meta.get("name")), str(meta.get("namespace"))
    wanted = (meta.get("labels") or {}).get(POOL_LABEL)
    warning: str | None = None
    if (wanted and not created_by_cronjob(meta) and not job_finished(job.get("status"))
            and not carries_sidecar(pod_template(job, JOB).get("spec") or {}, str(wanted))):
        warning = (
            f"Job {name} is labelled {POOL_LABEL}={wanted} but was created without the "
            "echelon-sidecar, and a Job's pod template cannot change once the Job exists "
            "(echelon-operator adds sidecars by patching pod templates), so this Job runs "
            "without one. Label a CronJob instead: its Jobs get the sidecar (for one-off runs "
            "keep it suspended and start each Job with `kubectl create job NAME "
            "--from=cronjob/CRONJOB`)")
    await rt.note(JOB.ref(namespace, name, meta.get("uid")), "sidecar", warning,
                  type="Warning", reason="SidecarNotInjected")
