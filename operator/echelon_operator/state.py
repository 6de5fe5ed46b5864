"""The operator's in-process state: index views, caches, serialized status writes, Events.

One :class:`Runtime` lives in kopf's ``memo`` (created by the startup handler). It holds no
truth of its own: everything can be rebuilt from the cluster, which is what a restart does.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from echelon_sidecar.config import Resolver, TaskGroupSpec, canonical_name

from .builders.globalconfig import GlobalConfig, merge_global_configs
from .builders.render import SecretRef, pool_roots, resolver_for, reverse_fallback, root_heads
from .builders.status import status_patch
from .coalesce import Coalescer, KeyedLocks
from .entries import GlobalEntry, GroupEntry, PoolEntry, WorkloadEntry
from .kube import Kube
from .settings import OperatorSettings

__all__ = ["GroupSnapshot", "Indices", "PoolState", "Runtime", "now"]

logger = logging.getLogger("echelon_operator")
NsName = tuple[str, str]
T = TypeVar("T")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Index(Protocol):
    def get(self, key: Any, default: Any = ...) -> Any: ...
    def __iter__(self) -> Any: ...


class Indices:
    """Read-only views over kopf's indexes (filled before any handler runs).

    TaskGroups and PollingPools are indexed twice: by namespace, and by (namespace,
    canonical name) for O(1) lookups. Workloads have one index per kind (Deployments,
    StatefulSets, Jobs, CronJobs), each by (namespace, canonical pool).
    """

    def __init__(self, groups: _Index, pools: _Index, workloads: Sequence[_Index],
                 globals_: _Index) -> None:
        self._groups, self._pools = groups, pools
        self._workloads, self._globals = tuple(workloads), globals_

    def groups(self, namespace: str) -> dict[str, GroupEntry]:
        return {e.name: e for e in self._groups.get(namespace, ())}

    def group(self, namespace: str, name: str) -> GroupEntry | None:
        return next(iter(self._groups.get((namespace, canonical_name(name)), ())), None)

    def pools(self, namespace: str) -> dict[str, PoolEntry]:
        return {e.name: e for e in self._pools.get(namespace, ())}

    def pool(self, namespace: str, name: str) -> PoolEntry | None:
        return next(iter(self._pools.get((namespace, canonical_name(name)), ())), None)

    def workloads(self, namespace: str, pool: str) -> list[WorkloadEntry]:
        """The workloads labelled for ``pool`` (every kind), by kind and name."""
        key = (namespace, canonical_name(pool))
        found = [e for index in self._workloads for e in index.get(key, ())]
        return sorted(found, key=lambda d: (d.kind, d.name))

    def globals(self, namespace: str) -> list[GlobalEntry]:
        return sorted(self._globals.get(namespace, ()), key=lambda g: g.name)

    def namespaces(self) -> set[str]:
        return {ns for ns in (*self._pools, *self._groups) if isinstance(ns, str)}


@dataclass(frozen=True)
class GroupSnapshot:
    """A namespace's TaskGroups, parsed, with a Resolver and the reverse fallback edges.

    Cached until a group of the namespace is added, deleted or changes its spec (see
    :meth:`Runtime.group_observed`).
    """

    entries: dict[str, GroupEntry]
    generations: dict[str, int | None]
    parsed: dict[str, TaskGroupSpec]
    broken: dict[str, tuple[str, ...]]
    resolver: Resolver
    reverse: dict[str, set[str]]

    @classmethod
    def build(cls, entries: dict[str, GroupEntry]) -> GroupSnapshot:
        parsed = {n: e.model for n, e in entries.items() if e.model is not None}
        broken = {n: e.problems for n, e in entries.items() if e.model is None}
        resolver = resolver_for(parsed)
        return cls(entries, {e.uid: e.generation for e in entries.values()}, parsed, broken,
                   resolver, reverse_fallback(resolver))


@dataclass
class PoolState:
    """What the operator last made of a pool (rebuilt by the first reconcile after a restart)."""

    name: str
    uid: str
    version: str | None = None
    secret_refs: tuple[SecretRef, ...] | None = None
    replicas: int = 0
    #: the workloads served, as ``Kind/name``
    workloads: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    instances: tuple[tuple[str, str], ...] = ()
    #: the pods whose sidecars share the budgets of the rendered config (by name)
    pods: tuple[str, ...] = ()


@dataclass
class Runtime:
    """Shared by every handler through ``memo.runtime``."""

    settings: OperatorSettings
    kube: Kube
    indices: Indices
    #: uid -> the object's status as last written/seen (we are its only writer)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    pool_state: dict[NsName, PoolState] = field(default_factory=dict)
    #: (namespace, canonical pool) -> the pool's circuit instances from the last poll
    health: dict[NsName, list[dict[str, Any]]] = field(default_factory=dict)
    #: (namespace, canonical pool) -> the pods running its sidecar, as the last poll saw them
    members: dict[NsName, tuple[str, ...]] = field(default_factory=dict)
    operator_global: GlobalEntry | None = None
    global_seen: set[NsName] = field(default_factory=set)
    last_poll: float | None = None
    #: wall seconds of the last poll round, and how many rounds finished (probe, benchmarks)
    last_poll_seconds: float | None = None
    polls: int = 0
    poll_errors: int = 0
    _notes: dict[tuple[str, str], str] = field(default_factory=dict)
    _status_locks: KeyedLocks[str] = field(default_factory=KeyedLocks)
    #: one lock per (namespace, Kind/name) of a workload being patched
    workload_locks: KeyedLocks[NsName] = field(default_factory=KeyedLocks)
    #: inject native sidecars (decided at start-up from the API server's version)
    native_sidecars: bool = False
    #: the API server's (major, minor), as learnt at start-up
    server_version: tuple[int, int] | None = None
    pool_runs: Coalescer[NsName] = field(init=False)
    group_runs: Coalescer[NsName] = field(init=False)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _snapshots: dict[str, GroupSnapshot] = field(default_factory=dict)
    #: one thread for the CPU-heavy, pure work (rendering and validating configs), so the
    #: event loop (watches, the liveness probe) stays responsive
    _cpu: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="echelon-render"))

    async def compute(self, fn: Callable[[], T]) -> T:
        """Run a pure builder call off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._cpu, fn)

    # -- task groups ---------------------------------------------------------------------

    _pool_heads: dict[str, tuple[GroupSnapshot, Any, dict[str, frozenset[str]]]] = field(
        default_factory=dict)

    def groups(self, namespace: str) -> GroupSnapshot:
        """The namespace's groups, parsed and indexed (cached until one changes)."""
        cached = self._snapshots.get(namespace)
        if cached is None:
            cached = self._snapshots[namespace] = GroupSnapshot.build(
                self.indices.groups(namespace))
        return cached

    def group_observed(self, namespace: str, uid: str, generation: int | None,
                       deleted: bool) -> None:
        """A TaskGroup event was indexed: drop the snapshot if it no longer matches."""
        cached = self._snapshots.get(namespace)
        if cached is None:
            return
        known = uid in cached.generations
        if (deleted and known) or (not deleted and (
                not known or cached.generations[uid] != generation)):
            del self._snapshots[namespace]

    def pool_observed(self, namespace: str) -> None:
        """A PollingPool event was indexed: its roots may have changed."""
        self._pool_heads.pop(namespace, None)

    def pool_heads(self, namespace: str) -> dict[str, frozenset[str]]:
        """pool -> canonical names of the groups its config starts from (cached)."""
        snapshot = self.groups(namespace)
        global_cfg = self.global_config(namespace)
        key = (tuple(sorted(global_cfg.workflow_nodes)), repr(global_cfg.workflow_nodes))
        cached = self._pool_heads.get(namespace)
        if cached is not None and cached[0] is snapshot and cached[1] == key:
            return cached[2]
        heads = {p.name: root_heads(pool_roots(p.name, p.model, global_cfg), snapshot.resolver)
                 for p in self.indices.pools(namespace).values() if p.model is not None}
        self._pool_heads[namespace] = (snapshot, key, heads)
        return heads

    # -- global config -------------------------------------------------------------------

    def global_config(self, namespace: str) -> GlobalConfig:
        """The operator namespace's global config, then the namespace's own (wins by id)."""
        parts: list[GlobalConfig] = []
        own = self.operator_global
        if own is not None:
            parts.append(own.config)
        for entry in self.indices.globals(namespace):
            if own is not None and (entry.namespace, entry.name) == (own.namespace, own.name):
                continue
            parts.append(entry.config)
        return merge_global_configs(parts)

    # -- status --------------------------------------------------------------------------

    async def update_status(
        self,
        entry: GroupEntry | PoolEntry,
        build: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Build the desired status from the current one and patch what differs.

        Writes to one object are serialized, and always start from the last status written,
        so the reconcile's and the poller's fields never overwrite each other.
        Returns ``(new, old)``.
        """
        async with self._status_locks(entry.uid):
            old = self.status.get(entry.uid)
            if old is None:
                old = dict(entry.status)
            desired = build(old)
            patch = status_patch(old, desired)
            new = old
            if patch:
                result = await self.kube.patch_status(entry.plural, entry.namespace, entry.name,
                                                      patch)
                if result is None:  # deleted meanwhile
                    self.status.pop(entry.uid, None)
                    return old, old
                if (result.get("metadata") or {}).get("uid") not in (None, entry.uid):
                    return old, old  # a new object of the same name: not ours to write
                new = dict(result.get("status") or {})
            self.status[entry.uid] = new
            return new, old

    def forget(self, uid: str) -> None:
        self.status.pop(uid, None)
        for key in [k for k in self._notes if k[0] == uid]:
            del self._notes[key]

    # -- events --------------------------------------------------------------------------

    async def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        logger.log(logging.WARNING if type == "Warning" else logging.INFO, "%s %s/%s: %s: %s",
                   obj.get("kind"), (obj.get("metadata") or {}).get("namespace"),
                   (obj.get("metadata") or {}).get("name"), reason, message)
        await self.kube.event(obj, type=type, reason=reason, message=message)

    async def note(self, obj: Mapping[str, Any], topic: str, message: str | None,
                   *, type: str, reason: str, cleared: tuple[str, str, str] | None = None
                   ) -> None:
        """An Event when ``message`` differs from the last one noted on this topic.

        ``cleared``: (type, reason, message) to post when a noted message goes away.
        """
        uid = str((obj.get("metadata") or {}).get("uid"))
        key = (uid, topic)
        before = self._notes.get(key)
        if message:
            if message != before:
                self._notes[key] = message
                await self.event(obj, type, reason, message)
        elif before is not None:
            del self._notes[key]
            if cleared is not None:
                await self.event(obj, *cleared)

    def noted(self, obj_uid: str, topic: str, message: str) -> None:
        """Remember a message as already reported (e.g. seen in the status after a restart)."""
        self._notes.setdefault((obj_uid, topic), message)

    # -- background ----------------------------------------------------------------------

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        return task

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pool_runs.close()
        await self.group_runs.close()
        self._cpu.shutdown(wait=False, cancel_futures=True)
        self.kube.close()

    def probe(self) -> dict[str, Any]:
        namespaces = self.indices.namespaces()
        return {
            "pools": sum(len(self.indices.pools(ns)) for ns in namespaces),
            "groups": sum(len(self.indices.groups(ns)) for ns in namespaces),
            "reconciling": self.pool_runs.busy() + self.group_runs.busy(),
            "lastPoll": self.last_poll,
            "lastPollSeconds": self.last_poll_seconds,
            "polls": self.polls,
            "sidecars": "native" if self.native_sidecars else "container",
        }

