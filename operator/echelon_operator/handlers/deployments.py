"""Deployment handler: add / remove the sidecar; re-split budgets when replicas change.

A raw event handler (no kopf state on the user's Deployments), called only for Deployments
that carry the ``echelon.dev/pool`` label or the operator's ``echelon.dev/injected-pool``
annotation: every other Deployment never reaches a handler, let alone a patch.
"""

from __future__ import annotations

from typing import Any

import kopf

from ..names import INJECTED_ANNOTATION, POOL_LABEL
from ..reconcile import reconcile_deployment, replicas_changed
from ..runtime import Runtime

__all__ = ["deployment_event"]


def _ours(labels: kopf.Labels, annotations: kopf.Annotations, **_: Any) -> bool:
    return POOL_LABEL in labels or INJECTED_ANNOTATION in annotations


@kopf.on.event("apps", "v1", "deployments", when=_ours)
async def deployment_event(event: kopf.RawEvent, namespace: str | None, name: str, memo: Any,
                           **_: Any) -> None:
    rt: Runtime = memo.runtime
    if event["type"] != "DELETED":
        await reconcile_deployment(rt, str(namespace), name, body=event["object"])
    replicas_changed(rt, str(namespace))
