"""Reading a pod spec the same way whichever form the sidecar has (a regular container, or a
native sidecar among the init containers, as the operator injects it on Kubernetes 1.29+)."""

from __future__ import annotations

from typing import Any

SIDECAR = "echelon-sidecar"


def sidecar_of(pod_spec: dict[str, Any]) -> dict[str, Any] | None:
    """The ``echelon-sidecar`` container of a pod spec, in either form."""
    for c in pod_spec.get("containers") or []:
        if c["name"] == SIDECAR:
            return c
    for c in pod_spec.get("initContainers") or []:
        if c["name"] == SIDECAR and c.get("restartPolicy") == "Always":
            return c
    return None


def names(pod_spec: dict[str, Any]) -> list[str]:
    """The application's containers, then ``echelon-sidecar`` if the pod runs it (either form)."""
    apps = [c["name"] for c in pod_spec.get("containers") or [] if c["name"] != SIDECAR]
    return [*apps, SIDECAR] if sidecar_of(pod_spec) is not None else apps


def form(pod_spec: dict[str, Any]) -> str | None:
    """``"native"``, ``"container"``, or None without a sidecar."""
    if any(c["name"] == SIDECAR for c in pod_spec.get("containers") or []):
        return "container"
    return "native" if sidecar_of(pod_spec) is not None else None


def template_spec(workload: dict[str, Any] | None) -> dict[str, Any]:
    """The pod spec of a Deployment, StatefulSet, Job or CronJob (``{}`` if there is none)."""
    spec = (workload or {}).get("spec") or {}
    if "jobTemplate" in spec:
        spec = spec["jobTemplate"].get("spec") or {}
    return ((spec.get("template") or {}).get("spec")) or {}
