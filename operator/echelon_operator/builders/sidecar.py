"""Add the Echelon sidecar to a workload's pod template, or take it out again.

Pure: a Deployment, StatefulSet or CronJob (as the API returns it) in, a JSON merge patch (or
None when nothing needs to change) out. The patch carries ``metadata.resourceVersion``, so the
API server refuses it (409) if the workload changed since it was read.

Two forms (see :func:`native_sidecars`):

- **native** (Kubernetes 1.29+): the first of ``initContainers``, with ``restartPolicy:
  Always`` and a startup probe on ``/readyz``. The kubelet starts the application's
  containers only once that probe passed, stops the sidecar after them, and a Job's pods
  complete;
- **container**: one more of ``containers`` (older servers). It starts beside the application,
  which may send its first requests before the sidecar listens (docs/operator.md).

Switching forms (the server was upgraded, or the setting changed) moves the container from one
list to the other in one patch.

Nothing in the pod template depends on the pool's config except the Secret keys its models
use: editing a TaskGroup or a PollingPool changes the ConfigMap (which the sidecar reloads),
not the template, so application pods do not restart.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from echelon_sidecar.config import POD_NAME_ENV

from ..names import (
    ADMIN_PORT_NAME,
    CONFIG_MOUNT_PATH,
    CONFIG_VOLUME,
    DATA_PORT_NAME,
    INJECTED_ANNOTATION,
    POOL_LABEL,
    SIDECAR_CONTAINER,
    configmap_name,
)
from ..settings import OperatorSettings, SidecarMode
from ..workloads import DEPLOYMENT, WorkloadKind, find_sidecar, pod_template
from .render import SecretRef

__all__ = [
    "NATIVE_SIDECAR_FIELD_VERSION",
    "NATIVE_SIDECAR_VERSION",
    "contains",
    "inject_sidecar",
    "injected_pool",
    "native_sidecars",
    "parse_server_version",
    "remove_sidecar",
    "sidecar_container",
    "sidecar_volume",
]

#: the user the sidecar runs as (the image's non-root user)
SIDECAR_UID = 65532
#: the first Kubernetes release with native sidecars on by default (the SidecarContainers
#: feature gate is beta, enabled, from 1.29; alpha and off in 1.28)
NATIVE_SIDECAR_VERSION = (1, 29)
#: the first release that knows ``restartPolicy: Always`` on init containers at all
NATIVE_SIDECAR_FIELD_VERSION = (1, 28)
#: how long the kubelet waits for a native sidecar's /readyz before it restarts it
STARTUP_PERIOD_S = 1
STARTUP_FAILURES = 120
Where = Literal["containers", "initContainers"]


def parse_server_version(info: Mapping[str, Any]) -> tuple[int, int]:
    """``(major, minor)`` from the API server's ``/version`` document.

    ``gitVersion`` (``v1.31.4``, ``v1.30.2-gke.1587003``) first; else ``major`` / ``minor``,
    whose minor may carry a ``+`` (``"31+"``, as some managed clusters report it).
    """
    git = str(info.get("gitVersion") or "").lstrip("v")
    parts = git.split("-", 1)[0].split(".")
    if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
        return int(parts[0]), int(parts[1])
    major = str(info.get("major") or "").rstrip("+")
    minor = str(info.get("minor") or "").rstrip("+")
    if major.isdigit() and minor.isdigit():
        return int(major), int(minor)
    raise ValueError(f"cannot read a Kubernetes version from /version: {dict(info)!r}")


def native_sidecars(mode: SidecarMode, server: tuple[int, int]) -> bool:
    """Inject native sidecars? ``auto``: when the API server is 1.29 or newer; ``native``:
    from 1.28 on (where the SidecarContainers feature gate must be on). An older API server
    has no ``restartPolicy`` for init containers: it would drop it and leave an init container
    that never ends, so there ``native`` gives regular containers too (and the operator says so
    at start-up)."""
    if mode == "native":
        return server >= NATIVE_SIDECAR_FIELD_VERSION
    if mode == "container":
        return False
    return server >= NATIVE_SIDECAR_VERSION


def sidecar_container(
    pool: str, settings: OperatorSettings, secret_refs: Sequence[SecretRef] = (),
    *, native: bool = False,
) -> dict[str, Any]:
    """The ``echelon-sidecar`` container serving ``pool`` (see docs/operator.md).

    ``native``: as an init container that keeps running (``restartPolicy: Always``), with a
    startup probe on ``/readyz`` that holds the application's containers back until the
    sidecar has loaded its config and listens.
    """
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
    if native:
        container["restartPolicy"] = "Always"
        container["startupProbe"] = {
            "httpGet": {**admin, "path": "/readyz"},
            "periodSeconds": STARTUP_PERIOD_S,
            "timeoutSeconds": 2,
            "failureThreshold": STARTUP_FAILURES,
        }
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


def injected_pool(workload: Mapping[str, Any]) -> str | None:
    annotations = (workload.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(INJECTED_ANNOTATION)
    return value if isinstance(value, str) else None


def _plain(value: Any) -> Any:
    return copy.deepcopy(value)


def _nest(path: Sequence[str], value: dict[str, Any]) -> dict[str, Any]:
    for key in reversed(path):
        value = {key: value}
    return value


def _without_sidecar(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [_plain(c) for c in items if c.get("name") != SIDECAR_CONTAINER]


def _placed(items: Sequence[Mapping[str, Any]], want: dict[str, Any], first: bool
            ) -> list[dict[str, Any]]:
    """``items`` with the sidecar replaced where it is, else added (first, or last)."""
    if any(c.get("name") == SIDECAR_CONTAINER for c in items):
        return [want if c.get("name") == SIDECAR_CONTAINER else _plain(c) for c in items]
    rest = [_plain(c) for c in items]
    return [want, *rest] if first else [*rest, want]


def inject_sidecar(
    workload: Mapping[str, Any],
    pool: str,
    settings: OperatorSettings,
    secret_refs: Sequence[SecretRef] = (),
    *,
    kind: WorkloadKind = DEPLOYMENT,
    native: bool = False,
    pod_label: str | None = None,
) -> dict[str, Any] | None:
    """A merge patch adding (or correcting) the sidecar for ``pool``; None if already right.

    ``native``: the sidecar's form (see the module docstring). ``pod_label``: also label the
    pod template ``echelon.dev/pool: <pod_label>`` (CronJobs: how their Jobs' pods are found).
    """
    template = pod_template(workload, kind)
    pod = template.get("spec") or {}
    containers: list[Mapping[str, Any]] = list(pod.get("containers") or [])
    inits: list[Mapping[str, Any]] = list(pod.get("initContainers") or [])
    volumes = [_plain(v) for v in pod.get("volumes") or []]
    want_c = sidecar_container(pool, settings, secret_refs, native=native)
    want_v = sidecar_volume(pool)
    where: Where = "initContainers" if native else "containers"
    have = find_sidecar(pod)
    have_v = next((v for v in volumes if v.get("name") == CONFIG_VOLUME), None)
    labels = (template.get("metadata") or {}).get("labels") or {}
    if (have is not None and have[0] == where and contains(have[1], want_c)
            and have_v is not None and contains(have_v, want_v)
            and injected_pool(workload) == pool
            and (pod_label is None or labels.get(POOL_LABEL) == pod_label)):
        return None
    spec: dict[str, Any] = {}
    if native:
        spec["initContainers"] = _placed(inits, want_c, first=True)
        spec["containers"] = _without_sidecar(containers)
    else:
        spec["containers"] = _placed(containers, want_c, first=False)
        if any(c.get("name") == SIDECAR_CONTAINER for c in inits):
            spec["initContainers"] = _without_sidecar(inits) or None
    if spec.get("containers") == [_plain(c) for c in containers]:
        del spec["containers"]  # unchanged: not sent (a merge patch replaces whole lists)
    new_v = [want_v if v.get("name") == CONFIG_VOLUME else v for v in volumes]
    if have_v is None:
        new_v.append(want_v)
    spec["volumes"] = new_v
    body: dict[str, Any] = {"spec": spec}
    if pod_label is not None:
        body["metadata"] = {"labels": {POOL_LABEL: pod_label}}
    meta = workload.get("metadata") or {}
    return {
        "metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {INJECTED_ANNOTATION: pool},
        },
        **_nest(kind.template_path, body),
    }


def remove_sidecar(workload: Mapping[str, Any], *, kind: WorkloadKind = DEPLOYMENT
                   ) -> dict[str, Any] | None:
    """A merge patch removing the sidecar, its volume and the annotation; None if none is there.

    Only workloads carrying the ``echelon.dev/injected-pool`` annotation are touched: a
    container that happens to be called ``echelon-sidecar`` in a workload the operator never
    changed is left alone. Both forms (regular and init container) are removed.
    """
    if injected_pool(workload) is None:
        return None
    template = pod_template(workload, kind)
    pod = template.get("spec") or {}
    containers = list(pod.get("containers") or [])
    inits = list(pod.get("initContainers") or [])
    volumes = [_plain(v) for v in pod.get("volumes") or []]
    keep_c = _without_sidecar(containers)
    keep_i = _without_sidecar(inits)
    keep_v = [v for v in volumes if v.get("name") != CONFIG_VOLUME]
    meta = workload.get("metadata") or {}
    patch: dict[str, Any] = {
        "metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {INJECTED_ANNOTATION: None},
        },
    }
    spec: dict[str, Any] = {}
    if len(keep_c) != len(containers):
        spec["containers"] = keep_c
    if len(keep_i) != len(inits):
        spec["initContainers"] = keep_i or None
    if len(keep_v) != len(volumes):
        spec["volumes"] = keep_v or None
    body: dict[str, Any] = {}
    if spec:
        body["spec"] = spec
    labels = (template.get("metadata") or {}).get("labels") or {}
    if kind.pods_by_pool_label and POOL_LABEL in labels:
        body["metadata"] = {"labels": {POOL_LABEL: None}}
    if body:
        patch.update(_nest(kind.template_path, body))
    return patch
