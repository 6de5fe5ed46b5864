"""kopf indexes: what every reconcile reads instead of listing the API.

- ``group_index``: namespace -> TaskGroups (specs parsed once per change);
- ``pool_index``: namespace -> PollingPools;
- ``deployment_index``: (namespace, canonical pool) -> Deployments labelled for that pool;
- ``global_index``: namespace -> ConfigMaps labelled ``echelon.dev/config: global``.

kopf fills every index before it calls any other handler. The functions are ``async`` so that
kopf runs them in the event loop (cheap, no thread hop per event).
"""

from __future__ import annotations

import copy
from typing import Any

import kopf

from echelon_sidecar.config import canonical_name

from ..entries import DeploymentEntry, GlobalEntry, GroupEntry, PoolEntry
from ..names import API_GROUP, GLOBAL_CONFIG_LABEL, GLOBAL_CONFIG_VALUE, POOL_LABEL, VERSION

__all__ = ["deployment_index", "global_index", "group_index", "pool_index"]


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


@kopf.index("apps", "v1", "deployments", labels={POOL_LABEL: kopf.PRESENT})
async def deployment_index(namespace: str | None, name: str, uid: str, labels: kopf.Labels,
                     spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], DeploymentEntry]:
    pool = str(labels[POOL_LABEL])
    replicas = spec.get("replicas", 1)
    entry = DeploymentEntry(str(namespace), name, uid, pool,
                            int(replicas) if replicas is not None else 1,
                            copy.deepcopy(dict(spec.get("selector") or {})))
    return {(str(namespace), canonical_name(pool)): entry}


@kopf.index("", "v1", "configmaps", labels={GLOBAL_CONFIG_LABEL: GLOBAL_CONFIG_VALUE})
async def global_index(body: kopf.Body, namespace: str | None, **_: Any) -> dict[str, GlobalEntry]:
    return {str(namespace): GlobalEntry.from_body(body)}
