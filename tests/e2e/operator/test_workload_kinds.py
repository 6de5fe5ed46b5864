"""Every workload kind: StatefulSets and CronJobs gain and lose the sidecar with the label,
Jobs are never patched (their template is immutable) and say why, and the budgets count the
replicas of every kind."""

from __future__ import annotations

import yaml

from ..cluster import Cluster
from ..podspec import form, names, sidecar_of, template_spec
from .conftest import apply, events, get, wait_for
from .manifests import (
    cronjob,
    deployment,
    global_config,
    job,
    polling_pool,
    statefulset,
    task_group,
)

NATIVE = (1, 29)
CRONJOBS = (1, 21)  # batch/v1 CronJob


def sidecars(k8s: Cluster, namespace: str) -> int | None:
    cm = get(k8s, namespace, "configmap", "echelon-pool-p")
    return yaml.safe_load(cm["data"]["config.yaml"])["sidecar"]["sidecars"] if cm else None


def expected_form(k8s: Cluster) -> str:
    return "native" if k8s.server_version() >= NATIVE else "container"


def test_a_labelled_statefulset_gains_the_sidecar_and_loses_it_with_the_label(
    k8s: Cluster, namespace: str, operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          statefulset("db", pool="p", replicas=2))
    sts = wait_for(lambda: (s := get(k8s, namespace, "statefulset", "db"))
                   and names(template_spec(s)) == ["app", "echelon-sidecar"] and s,
                   what="the sidecar in the StatefulSet")
    assert form(template_spec(sts)) == expected_form(k8s)
    assert sts["metadata"]["annotations"]["echelon.dev/injected-pool"] == "p"
    wait_for(lambda: events(k8s, namespace, "db", "SidecarInjected"), what="SidecarInjected")
    pool = wait_for(lambda: (p := get(k8s, namespace, "pollingpool", "p"))
                    and p["status"].get("workloads") and p, what="the pool's workloads")
    assert pool["status"]["workloads"] == ["StatefulSet/db"]
    assert pool["status"]["deployments"] == []
    wait_for(lambda: sidecars(k8s, namespace) == 2, what="sidecars: 2 (its replicas)")

    k8s.kubectl("label", "statefulset", "db", "-n", namespace, "echelon.dev/pool-")
    sts = wait_for(lambda: (s := get(k8s, namespace, "statefulset", "db"))
                   and names(template_spec(s)) == ["app"] and s, what="the sidecar removed")
    assert "volumes" not in template_spec(sts) and "initContainers" not in template_spec(sts)
    assert "echelon.dev/injected-pool" not in sts["metadata"].get("annotations", {})


def test_budgets_count_every_kinds_replicas(k8s: Cluster, namespace: str, operator) -> None:
    k8s.require(CRONJOBS, "CronJobs (batch/v1)")
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          deployment("web", pool="p", replicas=2), statefulset("db", pool="p", replicas=3))
    wait_for(lambda: sidecars(k8s, namespace) == 5, what="sidecars: 2 + 3")
    # a Job created with the sidecar in its template counts its parallelism; a CronJob its
    # Job template's, when it gets the sidecar (native sidecars only), and 0 while suspended
    web = wait_for(lambda: (d := get(k8s, namespace, "deployment", "web"))
                   and sidecar_of(template_spec(d)) and d, what="the sidecar in web")
    template = web["spec"]["template"]
    template["metadata"]["labels"] = {"app": "batch"}
    template["spec"]["restartPolicy"] = "Never"
    apply(k8s, namespace, job("batch", pool="p", parallelism=4, template=template))
    wait_for(lambda: sidecars(k8s, namespace) == 9, what="sidecars: 2 + 3 + 4 (the Job's)")
    apply(k8s, namespace, cronjob("nightly", pool="p", parallelism=6, suspend=True))
    wait_for(lambda: "CronJob/nightly" in get(k8s, namespace, "pollingpool", "p")["status"]
             .get("workloads", []), what="the CronJob served")
    assert sidecars(k8s, namespace) == 9  # suspended: runs nothing
    if k8s.server_version() >= NATIVE:
        apply(k8s, namespace, cronjob("nightly", pool="p", parallelism=6, suspend=False))
        wait_for(lambda: sidecars(k8s, namespace) == 15, what="sidecars: 2 + 3 + 4 + 6")
    k8s.kubectl("delete", "statefulset", "db", "-n", namespace)
    k8s.kubectl("delete", "job", "batch", "-n", namespace)
    wait_for(lambda: sidecars(k8s, namespace) in (2, 8), what="sidecars: the others' only")


def test_a_labelled_cronjob_gets_a_native_sidecar_or_says_why_not(
    k8s: Cluster, namespace: str, operator
) -> None:
    k8s.require(CRONJOBS, "CronJobs (batch/v1)")
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          cronjob("nightly", pool="p"))
    wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-p"), what="the ConfigMap")
    if k8s.server_version() < NATIVE:
        warning = wait_for(lambda: events(k8s, namespace, "nightly", "SidecarNotInjected"),
                           what="a SidecarNotInjected Event on the CronJob")
        assert warning[0]["type"] == "Warning"
        assert "needs the sidecar as a native sidecar" in warning[0]["message"]
        assert names(template_spec(get(k8s, namespace, "cronjob", "nightly"))) == ["app"]
        return
    cj = wait_for(lambda: (c := get(k8s, namespace, "cronjob", "nightly"))
                  and form(template_spec(c)) == "native" and c, what="the native sidecar")
    template = cj["spec"]["jobTemplate"]["spec"]["template"]
    # the Jobs' pods are found by this label (a CronJob has no selector of its own)
    assert template["metadata"]["labels"]["echelon.dev/pool"] == "p"
    sidecar = sidecar_of(template["spec"])
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/readyz"
    # a Job started from it carries the sidecar and is counted with the CronJob, not twice
    k8s.kubectl("create", "job", "manual", "--from=cronjob/nightly", "-n", namespace)
    started = get(k8s, namespace, "job", "manual")
    assert form(template_spec(started)) == "native"
    k8s.kubectl("label", "cronjob", "nightly", "-n", namespace, "echelon.dev/pool-")
    wait_for(lambda: names(template_spec(get(k8s, namespace, "cronjob", "nightly"))) == ["app"],
             what="the sidecar removed from the CronJob")
    labels = get(k8s, namespace, "cronjob", "nightly")["spec"]["jobTemplate"]["spec"][
        "template"]["metadata"]["labels"]
    assert "echelon.dev/pool" not in labels


def test_a_labelled_job_is_never_patched_and_a_warning_says_what_to_do(
    k8s: Cluster, namespace: str, operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          job("once", pool="p"))
    before = get(k8s, namespace, "job", "once")
    warning = wait_for(lambda: events(k8s, namespace, "once", "SidecarNotInjected"),
                       what="a SidecarNotInjected Event on the Job")
    assert warning[0]["type"] == "Warning"
    assert "cannot change once the Job exists" in warning[0]["message"]
    assert "--from=cronjob/" in warning[0]["message"]
    after = get(k8s, namespace, "job", "once")
    assert after["metadata"].get("annotations", {}).get("echelon.dev/injected-pool") is None
    assert after["spec"]["template"] == before["spec"]["template"]
    assert len(events(k8s, namespace, "once", "SidecarNotInjected")) == 1  # said once
