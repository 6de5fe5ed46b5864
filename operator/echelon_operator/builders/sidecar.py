"""Add the Echelon sidecar to a Deployment's pod template, or take it out again.

Pure: a Deployment (as the API returns it) in, a JSON merge patch (or None when nothing needs
to change) out. The patch carries ``metadata.resourceVersion``, so the API server refuses it
(409) if the Deployment changed since it was read.

Nothing in the pod template depends on the pool's config except the Secret keys its models
use: editing a TaskGroup or a PollingPool changes the ConfigMap (which the sidecar reloads),
not the template, so application pods do not restart.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from echelon_sidecar.config import POD_NAME_ENV

from ..names import (
    ADMIN_PORT_NAME,
    CONFIG_MOUNT_PATH,
    CONFIG_VOLUME,
    DATA_PORT_NAME,
    INJECTED_ANNOTATION,
    SIDECAR_CONTAINER,
    configmap_name,
)
from ..settings import OperatorSettings
from .render import SecretRef

__all__ = [
    "contains",
    "inject_sidecar",
    "injected_pool",
    "remove_sidecar",
    "sidecar_container",
    "sidecar_volume",
]

#: the user the sidecar runs as (the image's non-root user)
SIDECAR_UID = 65532


def sidecar_container(
    pool: str, settings: OperatorSettings, secret_refs: Sequence[SecretRef] = ()
) -> dict[str, Any]:
    """The ``echelon-sidecar`` container serving ``pool`` (see docs/operator.md)."""
    admin = {"path": "/healthz", "port": ADMIN_PORT_NAME, "scheme": "HTTP"}
    container: dict[str, Any] = {
        "name": SIDECAR_CONTAINER,
        "image": settings.sidecar_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["echelon-sidecar"],
        "args": [
            "--config", CONFIG_MOUNT_PATH,
            "--pool", pool,
            "--host", "127.0.0.1",
            "--port", str(settings.data_port),
            "--admin-host", "0.0.0.0",
            "--admin-port", str(settings.admin_port),
        ],
        "ports": [
            {"name": DATA_PORT_NAME, "containerPort": settings.data_port, "protocol": "TCP"},
            {"name": ADMIN_PORT_NAME, "containerPort": settings.admin_port, "protocol": "TCP"},
        ],
        "livenessProbe": {
            "httpGet": admin,
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {**admin, "path": "/readyz"},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "resources": copy.deepcopy(dict(settings.sidecar_resources)),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": SIDECAR_UID,
            "runAsGroup": SIDECAR_UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT_PATH, "readOnly": True},
        ],
    }
    # the pod's name: the sidecar finds its share of the budgets by it (sidecar.pods)
    env: list[dict[str, Any]] = [
        {"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        *({"name": r.env, "valueFrom": {"secretKeyRef": {"name": r.name, "key": r.key}}}
          for r in sorted(secret_refs)),
    ]
    env.extend({"name": name, "value": value}
               for name, value in sorted(settings.sidecar_env.items()))
    container["env"] = env
    return container


def sidecar_volume(pool: str) -> dict[str, Any]:
    return {"name": CONFIG_VOLUME, "configMap": {"name": configmap_name(pool)}}


def contains(actual: Any, desired: Any) -> bool:
    """``desired`` is part of ``actual``: every key it sets has the same value (recursively).

    Lists must have the same length. The API server adds defaults (probe timeouts,
    terminationMessagePath, ...) which this ignores.
    """
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and contains(actual[k], v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (isinstance(actual, list) and len(actual) == len(desired)
                and all(contains(a, d) for a, d in zip(actual, desired, strict=True)))
    return bool(actual == desired)


def _pod_spec(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}


def injected_pool(deployment: Mapping[str, Any]) -> str | None:
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(INJECTED_ANNOTATION)
    return value if isinstance(value, str) else None


def _plain(value: Any) -> Any:
    return copy.deepcopy(value)


def _same_container(have: Mapping[str, Any] | None, want: Mapping[str, Any]) -> bool:
    return have is not None and contains(have, want)


def inject_sidecar(
    deployment: Mapping[str, Any],
    pool: str,
    settings: OperatorSettings,
    secret_refs: Sequence[SecretRef] = (),
) -> dict[str, Any] | None:
    """A merge patch adding (or correcting) the sidecar for ``pool``; None if already right."""
    pod = _pod_spec(deployment)
    containers = [_plain(c) for c in pod.get("containers") or []]
    volumes = [_plain(v) for v in pod.get("volumes") or []]
    want_c = sidecar_container(pool, settings, secret_refs)
    want_v = sidecar_volume(pool)
    have_c = next((c for c in containers if c.get("name") == SIDECAR_CONTAINER), None)
    have_v = next((v for v in volumes if v.get("name") == CONFIG_VOLUME), None)
    if (_same_container(have_c, want_c) and have_v is not None and contains(have_v, want_v)
            and injected_pool(deployment) == pool):
        return None
    new_c = [want_c if c.get("name") == SIDECAR_CONTAINER else c for c in containers]
    if have_c is None:
        new_c.append(want_c)
    new_v = [want_v if v.get("name") == CONFIG_VOLUME else v for v in volumes]
    if have_v is None:
        new_v.append(want_v)
    meta = deployment.get("metadata") or {}
    return {
        "metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {INJECTED_ANNOTATION: pool},
        },
        "spec": {"template": {"spec": {"containers": new_c, "volumes": new_v}}},
    }


def remove_sidecar(deployment: Mapping[str, Any]) -> dict[str, Any] | None:
    """A merge patch removing the sidecar, its volume and the annotation; None if none is there.

    Only Deployments carrying the ``echelon.dev/injected-pool`` annotation are touched: a
    container that happens to be called ``echelon-sidecar`` in a Deployment the operator never
    changed is left alone.
    """
    if injected_pool(deployment) is None:
        return None
    pod = _pod_spec(deployment)
    containers = [_plain(c) for c in pod.get("containers") or []]
    volumes = [_plain(v) for v in pod.get("volumes") or []]
    keep_c = [c for c in containers if c.get("name") != SIDECAR_CONTAINER]
    keep_v = [v for v in volumes if v.get("name") != CONFIG_VOLUME]
    meta = deployment.get("metadata") or {}
    patch: dict[str, Any] = {
        "metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {INJECTED_ANNOTATION: None},
        },
    }
    template: dict[str, Any] = {}
    if len(keep_c) != len(containers):
        template["containers"] = keep_c
    if len(keep_v) != len(volumes):
        template["volumes"] = keep_v or None
    if template:
        patch["spec"] = {"template": {"spec": template}}
    return patch
