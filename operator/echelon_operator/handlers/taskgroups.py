"""TaskGroup handlers: validate the group, re-render everything that depends on it."""

from __future__ import annotations

from typing import Any

import kopf

from ..kube import KubeError
from ..names import API_GROUP, VERSION
from ..reconcile import reconcile_dependents
from ..state import Runtime

__all__ = ["group_changed", "group_event", "group_resumed"]


@kopf.on.resume(API_GROUP, VERSION, "taskgroups")
async def group_resumed(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    rt: Runtime = memo.runtime
    try:
        await rt.group_runs.run((str(namespace), name))
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=5) from exc


@kopf.on.create(API_GROUP, VERSION, "taskgroups")
@kopf.on.update(API_GROUP, VERSION, "taskgroups")
async def group_changed(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    rt: Runtime = memo.runtime
    reconcile_dependents(rt, str(namespace), name)  # pools and groups that use this one
    try:
        await rt.group_runs.run((str(namespace), name))
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=5) from exc


@kopf.on.event(API_GROUP, VERSION, "taskgroups")
async def group_event(event: kopf.RawEvent, namespace: str | None, name: str, uid: str,
                      meta: kopf.Meta, memo: Any, **_: Any) -> None:
    rt: Runtime = memo.runtime
    deleted = event["type"] == "DELETED"
    rt.group_observed(str(namespace), uid, meta.get("generation"), deleted)
    if deleted:
        rt.forget(uid)
        reconcile_dependents(rt, str(namespace), name)
