"""kopf indexes: what every reconcile reads instead of listing the API.

- ``group_index``: namespace -> TaskGroups (specs parsed once per change);
- ``pool_index``: namespace -> PollingPools;
- ``deployment_index``, ``statefulset_index``, ``job_index``, ``cronjob_index``: (namespace,
  canonical pool) -> the workloads of that kind labelled for that pool (a Job only when its
  template carries the pool's sidecar and no CronJob owns it: see :mod:`..workloads`);
- ``global_index``: namespace -> ConfigMaps labelled ``echelon.dev/config: global``.

kopf fills every index before it calls any other handler. The functions are ``async`` so that
kopf runs them in the event loop (cheap, no thread hop per event). A function returns ``{}``
for an object that is not (or no longer) to be indexed: kopf then drops what it held for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from echelon_sidecar.config import canonical_name

from ..entries import GlobalEntry, GroupEntry, PoolEntry, WorkloadEntry, selector_string
from ..names import API_GROUP, GLOBAL_CONFIG_LABEL, GLOBAL_CONFIG_VALUE, POOL_LABEL, VERSION
from ..workloads import (
    CRONJOB,
    DEPLOYMENT,
    JOB,
    STATEFULSET,
    WorkloadKind,
    carries_sidecar,
    created_by_cronjob,
    pod_template,
    pool_label_selector,
    replicas_of,
)

__all__ = ["WORKLOAD_INDEXES", "cronjob_index", "deployment_index", "global_index",
           "group_index", "job_index", "pool_index", "statefulset_index"]

Indexed = dict[tuple[str, str], WorkloadEntry]
LABELLED = {POOL_LABEL: kopf.PRESENT}


@kopf.index(API_GROUP, VERSION, "taskgroups")
async def group_index(body: kopf.Body, namespace: str | None, name: str, **_: Any
                      ) -> dict[Any, GroupEntry]:
    entry = GroupEntry.from_body(body)
    return {str(namespace): entry, (str(namespace), canonical_name(name)): entry}


@kopf.index(API_GROUP, VERSION, "pollingpools")
async def pool_index(body: kopf.Body, namespace: str | None, name: str, **_: Any
                     ) -> dict[Any, PoolEntry]:
    entry = PoolEntry.from_body(body)
    return {str(namespace): entry, (str(namespace), canonical_name(name)): entry}


def workload_entry(kind: WorkloadKind, body: Mapping[str, Any]) -> Indexed:
    """The index entry of a labelled workload (``{}``: not counted)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    pool = str((meta.get("labels") or {}).get(POOL_LABEL, ""))
    if not pool:
        return {}
    if kind is JOB:
        if created_by_cronjob(meta):
            return {}  # counted with its CronJob
        if not carries_sidecar(pod_template(body, kind).get("spec") or {}, pool):
            return {}  # created without the sidecar: it has none to count (see the Job handler)
    selector = (pool_label_selector(pool) if kind.pods_by_pool_label
                else selector_string(spec.get("selector") or {}))
    entry = WorkloadEntry(namespace, name, str(meta.get("uid")), pool,
                          replicas_of(kind, spec, body.get("status")), selector, kind.kind)
    return {(namespace, canonical_name(pool)): entry}


@kopf.index(DEPLOYMENT.group, DEPLOYMENT.version, DEPLOYMENT.plural, labels=LABELLED)
async def deployment_index(body: kopf.Body, **_: Any) -> Indexed:
    return workload_entry(DEPLOYMENT, body)


@kopf.index(STATEFULSET.group, STATEFULSET.version, STATEFULSET.plural, labels=LABELLED)
async def statefulset_index(body: kopf.Body, **_: Any) -> Indexed:
    return workload_entry(STATEFULSET, body)


@kopf.index(JOB.group, JOB.version, JOB.plural, labels=LABELLED)
async def job_index(body: kopf.Body, **_: Any) -> Indexed:
    return workload_entry(JOB, body)


@kopf.index(CRONJOB.group, CRONJOB.version, CRONJOB.plural, labels=LABELLED)
async def cronjob_index(body: kopf.Body, **_: Any) -> Indexed:
    return workload_entry(CRONJOB, body)


#: the ids kopf gives the workload indexes (the keyword arguments of every handler)
WORKLOAD_INDEXES = ("deployment_index", "statefulset_index", "job_index", "cronjob_index")


@kopf.index("", "v1", "configmaps", labels={GLOBAL_CONFIG_LABEL: GLOBAL_CONFIG_VALUE})
async def global_index(body: kopf.Body, namespace: str | None, **_: Any) -> dict[str, GlobalEntry]:
    return {str(namespace): GlobalEntry.from_body(body)}
