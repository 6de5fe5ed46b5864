"""Global-config ConfigMap handler: a change re-renders every pool and group of its namespace."""

from __future__ import annotations

from typing import Any

import kopf

from ..entries import GlobalEntry
from ..names import GLOBAL_CONFIG_LABEL, GLOBAL_CONFIG_VALUE
from ..reconcile import reconcile_namespace
from ..state import Runtime

__all__ = ["configmap_event"]


@kopf.on.event("", "v1", "configmaps")
async def configmap_event(event: kopf.RawEvent, body: kopf.Body, namespace: str | None,
                          name: str, labels: kopf.Labels, memo: Any, **_: Any) -> None:
    rt: Runtime = memo.runtime
    key = (str(namespace), name)
    labelled = labels.get(GLOBAL_CONFIG_LABEL) == GLOBAL_CONFIG_VALUE
    if not labelled and key not in rt.global_seen:
        return  # not global config, now or before
    if labelled and event["type"] != "DELETED":
        rt.global_seen.add(key)
        entry = GlobalEntry.from_body(body)
        await rt.note(entry.ref(), "global", "; ".join(entry.problems), type="Warning",
                      reason="InvalidGlobalConfig")
    else:
        rt.global_seen.discard(key)
    if event["type"] is not None:  # not the initial listing: the resume handlers cover that
        reconcile_namespace(rt, str(namespace))
