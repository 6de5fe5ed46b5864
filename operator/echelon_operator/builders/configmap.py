"""The ConfigMap a pool's sidecars mount: ``echelon-pool-<pool>``, key ``config.yaml``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..names import (
    API_VERSION,
    CONFIG_KEY,
    CONFIG_VERSION_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    POOL_LABEL,
    SECRET_REFS_ANNOTATION,
    configmap_name,
)
from .render import SecretRef

__all__ = [
    "config_header",
    "configmap_patch",
    "is_managed",
    "render_configmap",
    "secret_refs_of",
]


def config_header(namespace: str, pool: str) -> str:
    return (
        f"# Rendered by echelon-operator from PollingPool {namespace}/{pool}; do not edit (it is\n"
        "# overwritten). Budgets (rpm_limit, concurrency_limit, rate_limiting) are cluster-wide:\n"
        "# each sidecar enforces its share: budget // sidecar.sidecars, plus one for the first\n"
        "# budget % sidecar.sidecars of sidecar.pods in name order (at least 1).\n"
    )


def render_configmap(
    namespace: str,
    pool: str,
    pool_uid: str,
    text: str,
    version: str,
    secret_refs: Sequence[SecretRef] = (),
) -> dict[str, Any]:
    """The ConfigMap manifest, owned by the pool (garbage-collected with it)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(pool),
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, POOL_LABEL: pool},
            "annotations": {
                CONFIG_VERSION_ANNOTATION: version,
                SECRET_REFS_ANNOTATION: json.dumps([r.to_dict() for r in secret_refs],
                                                   separators=(",", ":")),
            },
            "ownerReferences": [{
                "apiVersion": API_VERSION,
                "kind": "PollingPool",
                "name": pool,
                "uid": pool_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }],
        },
        "data": {CONFIG_KEY: text},
    }


def is_managed(configmap: Mapping[str, Any]) -> bool:
    labels = (configmap.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY


def configmap_patch(
    existing: Mapping[str, Any], desired: Mapping[str, Any]
) -> dict[str, Any] | None:
    """A merge patch that makes ``existing`` hold ``desired``'s content, or None if it does.

    Only the operator's own labels, annotations and owner reference are compared, so others'
    additions (e.g. a user's label) survive.
    """
    meta, want = existing.get("metadata") or {}, desired["metadata"]
    patch: dict[str, Any] = {}
    out_meta: dict[str, Any] = {}
    for key in ("labels", "annotations"):
        have = meta.get(key) or {}
        changed = {k: v for k, v in want[key].items() if have.get(k) != v}
        if changed:
            out_meta[key] = changed
    owners = list(meta.get("ownerReferences") or [])
    wanted_owner = want["ownerReferences"][0]
    if not any(_same_owner(o, wanted_owner) for o in owners):
        others = [o for o in owners if not o.get("controller")]
        out_meta["ownerReferences"] = [*others, wanted_owner]
    if out_meta:
        patch["metadata"] = out_meta
    if (existing.get("data") or {}) != desired["data"]:
        patch["data"] = {**{k: None for k in existing.get("data") or {}}, **desired["data"]}
    if existing.get("binaryData"):
        patch["binaryData"] = None
    return patch or None


def _same_owner(have: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    return all(have.get(k) == want[k] for k in ("apiVersion", "kind", "name", "uid", "controller"))


def secret_refs_of(configmap: Mapping[str, Any]) -> list[SecretRef] | None:
    """The Secret refs recorded on a rendered ConfigMap (None if it carries none/garbage)."""
    raw = ((configmap.get("metadata") or {}).get("annotations") or {}).get(SECRET_REFS_ANNOTATION)
    if raw is None:
        return None
    try:
        items = json.loads(raw)
        return sorted(SecretRef(str(i["env"]), str(i["name"]), str(i["key"])) for i in items)
    except (ValueError, TypeError, KeyError):
        return None
