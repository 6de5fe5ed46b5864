"""Workload handlers: add / remove the sidecar; re-split budgets when replicas change.

One raw event handler per kind (Deployment, StatefulSet, Job, CronJob; no kopf state on the
users' workloads), called only for objects that carry the ``echelon.dev/pool`` label or the
operator's ``echelon.dev/injected-pool`` annotation: every other workload never reaches a
handler, let alone a patch. Jobs are never patched (their pod template is immutable): a
labelled Job without the sidecar gets a Warning Event instead (see :mod:`..workloads`).
"""

from __future__ import annotations

from typing import Any

import kopf

from ..names import INJECTED_ANNOTATION, POOL_LABEL
from ..reconcile import reconcile_workload, replicas_changed
from ..state import Runtime
from ..workloads import CRONJOB, DEPLOYMENT, JOB, STATEFULSET, WorkloadKind

__all__ = ["cronjob_event", "deployment_event", "job_event", "statefulset_event"]


def _ours(labels: kopf.Labels, annotations: kopf.Annotations, **_: Any) -> bool:
    return POOL_LABEL in labels or INJECTED_ANNOTATION in annotations


async def _workload_event(kind: WorkloadKind, event: kopf.RawEvent, namespace: str | None,
                          name: str, uid: str, memo: Any) -> None:
    rt: Runtime = memo.runtime
    if event["type"] != "DELETED":
        await reconcile_workload(rt, kind, str(namespace), name, body=event["object"])
    else:
        rt.forget(uid)
    replicas_changed(rt, str(namespace))


@kopf.on.event(DEPLOYMENT.group, DEPLOYMENT.version, DEPLOYMENT.plural, when=_ours)
async def deployment_event(event: kopf.RawEvent, namespace: str | None, name: str, uid: str,
                           memo: Any, **_: Any) -> None:
    await _workload_event(DEPLOYMENT, event, namespace, name, uid, memo)


@kopf.on.event(STATEFULSET.group, STATEFULSET.version, STATEFULSET.plural, when=_ours)
async def statefulset_event(event: kopf.RawEvent, namespace: str | None, name: str, uid: str,
                            memo: Any, **_: Any) -> None:
    await _workload_event(STATEFULSET, event, namespace, name, uid, memo)


@kopf.on.event(CRONJOB.group, CRONJOB.version, CRONJOB.plural, when=_ours)
async def cronjob_event(event: kopf.RawEvent, namespace: str | None, name: str, uid: str,
                        memo: Any, **_: Any) -> None:
    await _workload_event(CRONJOB, event, namespace, name, uid, memo)


@kopf.on.event(JOB.group, JOB.version, JOB.plural, when=_ours)
async def job_event(event: kopf.RawEvent, namespace: str | None, name: str, uid: str,
                    memo: Any, **_: Any) -> None:
    await _workload_event(JOB, event, namespace, name, uid, memo)
