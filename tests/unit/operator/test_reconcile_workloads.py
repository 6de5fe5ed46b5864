"""reconcile_workload against a fake API: the form of the sidecar, CronJobs without native
sidecars, Jobs never patched, and an API server that drops restartPolicy (no rewrite loop)."""

from __future__ import annotations

import asyncio
import copy
from types import SimpleNamespace
from typing import Any

from echelon_operator import reconcile
from echelon_operator.coalesce import KeyedLocks
from echelon_operator.settings import OperatorSettings
from echelon_operator.workloads import CRONJOB, DEPLOYMENT, JOB, find_sidecar, pod_template

from .conftest import merge_patch


class FakeKube:
    """One workload; patches are merge-applied, optionally dropping init containers'
    restartPolicy (as a server without native sidecars does)."""

    def __init__(self, obj: dict[str, Any], drop_restart_policy: bool = False) -> None:
        self.obj = obj
        self.patches: list[dict[str, Any]] = []
        self.drop = drop_restart_policy

    async def get_workload(self, kind: Any, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.obj)

    async def patch_workload(self, kind: Any, namespace: str, name: str,
                             patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch)
        obj = merge_patch(self.obj, patch)
        if self.drop:
            for c in pod_template(obj, kind).get("spec", {}).get("initContainers") or []:
                c.pop("restartPolicy", None)
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        self.obj = obj
        return copy.deepcopy(obj)


def runtime(kube: FakeKube, native: bool) -> Any:
    events: list[tuple[str, str]] = []
    notes: dict[str, str | None] = {}
    pool = SimpleNamespace(name="p", uid="pool-uid")

    async def event(obj: Any, type_: str, reason: str, message: str) -> None:
        events.append((type_, reason))

    async def note(obj: Any, topic: str, message: str | None, **kwargs: Any) -> None:
        notes[obj["kind"]] = message

    rt = SimpleNamespace(
        kube=kube, settings=OperatorSettings(), native_sidecars=native, server_version=(1, 20),
        workload_locks=KeyedLocks(), event=event, note=note, events=events, notes=notes,
        indices=SimpleNamespace(pool=lambda ns, name: pool, namespaces=lambda: set()),
        pool_state={("ns", "p"): SimpleNamespace(uid="pool-uid", secret_refs=())},
    )
    return rt


def deployment() -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "ns", "resourceVersion": "1", "uid": "d",
                         "labels": {"echelon.dev/pool": "p"}},
            "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}}


def test_a_labelled_deployment_gets_a_native_sidecar_once() -> None:
    kube = FakeKube(deployment())
    rt = runtime(kube, native=True)
    asyncio.run(reconcile.reconcile_workload(rt, DEPLOYMENT, "ns", "web"))
    asyncio.run(reconcile.reconcile_workload(rt, DEPLOYMENT, "ns", "web"))
    assert len(kube.patches) == 1
    assert find_sidecar(kube.obj["spec"]["template"]["spec"])[0] == "initContainers"
    assert rt.events == [("Normal", "SidecarInjected")]


def test_a_server_that_drops_restart_policy_gets_regular_containers_not_a_loop() -> None:
    kube = FakeKube(deployment(), drop_restart_policy=True)
    rt = runtime(kube, native=True)
    asyncio.run(reconcile.reconcile_workload(rt, DEPLOYMENT, "ns", "web"))
    assert rt.native_sidecars is False
    assert len(kube.patches) == 2  # the native try, then the correction
    pod = kube.obj["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["app", "echelon-sidecar"]
    assert not pod.get("initContainers")  # no init container left that would never end
    assert ("Warning", "NativeSidecarsUnavailable") in rt.events
    asyncio.run(reconcile.reconcile_workload(rt, DEPLOYMENT, "ns", "web"))
    assert len(kube.patches) == 2


def cronjob() -> dict[str, Any]:
    return {"metadata": {"name": "nightly", "namespace": "ns", "resourceVersion": "1",
                         "uid": "c", "labels": {"echelon.dev/pool": "p"}},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "work"}]}}}}}}


def test_a_cronjob_is_left_alone_with_a_warning_without_native_sidecars() -> None:
    kube = FakeKube(cronjob())
    rt = runtime(kube, native=False)
    asyncio.run(reconcile.reconcile_workload(rt, CRONJOB, "ns", "nightly"))
    assert kube.patches == []
    assert "needs the sidecar as a native sidecar" in rt.notes["CronJob"]
    assert "keep every Job from completing" in rt.notes["CronJob"]


def test_a_cronjob_gets_a_native_sidecar_in_its_job_template() -> None:
    kube = FakeKube(cronjob())
    rt = runtime(kube, native=True)
    asyncio.run(reconcile.reconcile_workload(rt, CRONJOB, "ns", "nightly"))
    template = kube.obj["spec"]["jobTemplate"]["spec"]["template"]
    assert find_sidecar(template["spec"])[0] == "initContainers"
    assert template["metadata"]["labels"] == {"echelon.dev/pool": "p"}
    assert rt.notes["CronJob"] is None


def test_a_labelled_job_is_never_patched_and_says_why_it_has_no_sidecar() -> None:
    job = {"metadata": {"name": "once", "namespace": "ns", "uid": "j",
                        "labels": {"echelon.dev/pool": "p"}},
           "spec": {"template": {"spec": {"containers": [{"name": "work"}]}}}}
    kube = FakeKube(job)
    rt = runtime(kube, native=True)
    asyncio.run(reconcile.reconcile_workload(rt, JOB, "ns", "once", body=job))
    assert kube.patches == []
    message = rt.notes["Job"]
    assert "cannot change once the Job exists" in message
    assert "kubectl create job NAME --from=cronjob/CRONJOB" in message
    # a Job a CronJob created carries its template: nothing to say
    job["metadata"]["ownerReferences"] = [{"kind": "CronJob", "name": "cj", "uid": "c"}]
    asyncio.run(reconcile.reconcile_workload(rt, JOB, "ns", "once", body=job))
    assert rt.notes["Job"] is None
