"""The workload kinds that can carry the sidecar, and what the operator reads from each (pure).

| kind        | pod template                      | counted replicas      | patched          |
|-------------|-----------------------------------|-----------------------|------------------|
| Deployment  | ``spec.template``                 | ``spec.replicas``     | yes              |
| StatefulSet | ``spec.template``                 | ``spec.replicas``     | yes              |
| CronJob     | ``spec.jobTemplate.spec.template`` | the Job template's   | yes, with native |
|             |                                   | parallelism           | sidecars only    |
| Job         | ``spec.template`` (immutable)     | ``spec.parallelism``  | never            |
|             |                                   | while it runs         |                  |

(Deployment and StatefulSet are apps/v1, CronJob and Job batch/v1.)

A Job's pod template cannot change once the Job exists, and without a mutating webhook the
operator only ever sees a Job after it was created: it never patches one. A labelled Job counts
(and its pods are polled) when it was created with the sidecar already in its template, which
is what a Job started from a labelled CronJob has (``kubectl create job --from=cronjob/...``);
any other labelled Job gets a Warning Event that says so (docs/operator.md, "Jobs").

A sidecar in a pod that runs to completion (Jobs, CronJobs) must be a native sidecar (an init
container with ``restartPolicy: Always``, Kubernetes 1.29+): a regular sidecar container keeps
running after the application exits, so the Job would never complete. With regular containers
the operator therefore leaves CronJobs without a sidecar, and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from echelon_sidecar.config import canonical_name

from .names import CONFIG_VOLUME, POOL_LABEL, SIDECAR_CONTAINER, configmap_name

__all__ = [
    "CRONJOB",
    "DEPLOYMENT",
    "JOB",
    "KINDS",
    "STATEFULSET",
    "WorkloadKind",
    "carries_sidecar",
    "created_by_cronjob",
    "find_sidecar",
    "job_finished",
    "pod_template",
    "pool_label_selector",
    "replicas_of",
]


@dataclass(frozen=True)
class WorkloadKind:
    """One kind of workload: where its pod template is and how it is patched."""

    kind: str
    group: str
    version: str
    plural: str
    #: the path of the pod template in the object
    template_path: tuple[str, ...]
    #: the operator may patch its pod template (a Job's is immutable)
    patchable: bool = True
    #: its pods run to completion: only a native sidecar lets them
    completes: bool = False
    #: its pods are found by this label on their template (set by the operator), not by the
    #: workload's selector (a CronJob has none)
    pods_by_pool_label: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def ref(self, namespace: str, name: str, uid: str | None = None) -> dict[str, Any]:
        """A minimal object for Events and logs."""
        meta: dict[str, Any] = {"name": name, "namespace": namespace}
        if uid:
            meta["uid"] = uid
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": meta}


DEPLOYMENT = WorkloadKind("Deployment", "apps", "v1", "deployments", ("spec", "template"))
STATEFULSET = WorkloadKind("StatefulSet", "apps", "v1", "statefulsets", ("spec", "template"))
JOB = WorkloadKind("Job", "batch", "v1", "jobs", ("spec", "template"), patchable=False,
                   completes=True)
CRONJOB = WorkloadKind("CronJob", "batch", "v1", "cronjobs",
                       ("spec", "jobTemplate", "spec", "template"), completes=True,
                       pods_by_pool_label=True)
#: kind name -> kind
KINDS: dict[str, WorkloadKind] = {k.kind: k for k in (DEPLOYMENT, STATEFULSET, JOB, CRONJOB)}


def _at(obj: Mapping[str, Any] | None, path: tuple[str, ...]) -> Mapping[str, Any]:
    node: Any = obj or {}
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
        if node is None:
            return {}
    return node if isinstance(node, Mapping) else {}


def pod_template(obj: Mapping[str, Any], kind: WorkloadKind) -> Mapping[str, Any]:
    """The workload's pod template (``{}`` when it has none)."""
    return _at(obj, kind.template_path)


def _count(value: Any, default: int = 1) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default


def job_finished(status: Mapping[str, Any] | None) -> bool:
    """A Job whose ``Complete`` or ``Failed`` condition is True runs no more pods."""
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (status or {}).get("conditions") or [])


def _job_pods(job_spec: Mapping[str, Any]) -> int:
    """The pods a Job runs at once: ``parallelism`` (default 1), at most ``completions``."""
    if job_spec.get("suspend") is True:
        return 0
    parallel = _count(job_spec.get("parallelism"))
    completions = job_spec.get("completions")
    if isinstance(completions, int) and not isinstance(completions, bool):
        parallel = min(parallel, completions)
    return max(0, parallel)


def replicas_of(kind: WorkloadKind, spec: Mapping[str, Any],
                status: Mapping[str, Any] | None = None) -> int:
    """How many of the pool's sidecars the workload runs at once (its share of the budgets).

    Deployment, StatefulSet: ``spec.replicas`` (default 1). Job: ``spec.parallelism`` (default
    1, at most ``completions``), 0 once finished or while suspended. CronJob: its Job
    template's parallelism, 0 while suspended (a CronJob that runs several Jobs at once has
    their pods counted as they appear: the split takes the larger of the two counts).
    """
    if kind is JOB:
        return 0 if job_finished(status) else _job_pods(spec)
    if kind is CRONJOB:
        if spec.get("suspend") is True:
            return 0
        return _job_pods(_at(spec, ("jobTemplate", "spec")))
    return max(0, _count(spec.get("replicas")))


def find_sidecar(pod_spec: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """``(where, container)`` of the ``echelon-sidecar`` in a pod spec: ``"containers"``, or
    ``"initContainers"`` for a native sidecar (``restartPolicy: Always``); None if absent."""
    for c in pod_spec.get("containers") or []:
        if c.get("name") == SIDECAR_CONTAINER:
            return "containers", c
    for c in pod_spec.get("initContainers") or []:
        if c.get("name") == SIDECAR_CONTAINER and c.get("restartPolicy") == "Always":
            return "initContainers", c
    return None


def carries_sidecar(pod_spec: Mapping[str, Any], pool: str) -> bool:
    """The pod spec runs an ``echelon-sidecar`` that reads ``pool``'s ConfigMap."""
    if find_sidecar(pod_spec) is None:
        return False
    config = canonical_name(configmap_name(pool))  # `_` and `-` are the same in pool names
    return any(v.get("name") == CONFIG_VOLUME
               and canonical_name(str((v.get("configMap") or {}).get("name"))) == config
               for v in pod_spec.get("volumes") or [])


def created_by_cronjob(meta: Mapping[str, Any]) -> bool:
    """A Job owned by a CronJob (scheduled, or ``kubectl create job --from=cronjob/...``): the
    CronJob's entry counts it."""
    return any(o.get("kind") == "CronJob" for o in meta.get("ownerReferences") or [])


def pool_label_selector(value: str) -> str:
    """The selector of the pods whose template carries ``echelon.dev/pool=<value>``."""
    return f"{POOL_LABEL}={value}"
