"""What the operator reads from each workload kind: replicas counted, pods found, Jobs skipped."""

from __future__ import annotations

from typing import Any

import pytest

from echelon_operator.handlers.indexes import workload_entry
from echelon_operator.workloads import (
    CRONJOB,
    DEPLOYMENT,
    JOB,
    STATEFULSET,
    carries_sidecar,
    replicas_of,
)

SIDECAR_POD = {"initContainers": [{"name": "echelon-sidecar", "restartPolicy": "Always"}],
               "containers": [{"name": "work"}],
               "volumes": [{"name": "echelon-config", "configMap": {"name": "echelon-pool-p"}}]}


def job(pod: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "j", "namespace": "ns", "uid": "u1",
                         "labels": {"echelon.dev/pool": "p"}},
            "spec": {"selector": {"matchLabels": {"controller-uid": "u1"}},
                     "template": {"spec": pod or {"containers": [{"name": "work"}]}}, **spec}}


@pytest.mark.parametrize(("kind", "spec", "status", "expected"), [
    (DEPLOYMENT, {"replicas": 3}, None, 3),
    (DEPLOYMENT, {}, None, 1),  # the API server's default
    (DEPLOYMENT, {"replicas": 0}, None, 0),
    (STATEFULSET, {"replicas": 4}, None, 4),
    (JOB, {"parallelism": 5}, None, 5),
    (JOB, {}, None, 1),
    (JOB, {"parallelism": 5, "completions": 2}, None, 2),
    (JOB, {"parallelism": 5, "suspend": True}, None, 0),
    (JOB, {"parallelism": 5}, {"conditions": [{"type": "Complete", "status": "True"}]}, 0),
    (JOB, {"parallelism": 5}, {"conditions": [{"type": "Failed", "status": "True"}]}, 0),
    (CRONJOB, {"jobTemplate": {"spec": {"parallelism": 3}}}, None, 3),
    (CRONJOB, {"jobTemplate": {"spec": {}}}, None, 1),
    (CRONJOB, {"suspend": True, "jobTemplate": {"spec": {"parallelism": 3}}}, None, 0),
])
def test_each_kind_counts_the_pods_it_runs_at_once(kind, spec, status, expected) -> None:
    assert replicas_of(kind, spec, status) == expected


def test_a_job_with_the_sidecar_in_its_template_is_counted_by_its_parallelism() -> None:
    entries = workload_entry(JOB, job(SIDECAR_POD, parallelism=3))
    (entry,) = entries.values()
    assert (entry.kind, entry.replicas, entry.selector, entry.key) == (
        "Job", 3, "controller-uid=u1", "Job/j")


def test_a_job_created_without_the_sidecar_or_by_a_cronjob_is_not_counted() -> None:
    assert workload_entry(JOB, job()) == {}
    owned = job(SIDECAR_POD)
    owned["metadata"]["ownerReferences"] = [{"kind": "CronJob", "name": "cj", "uid": "c"}]
    assert workload_entry(JOB, owned) == {}


def test_a_cronjobs_pods_are_found_by_the_pool_label_on_its_template() -> None:
    cj = {"metadata": {"name": "cj", "namespace": "ns", "uid": "c",
                       "labels": {"echelon.dev/pool": "p"}},
          "spec": {"jobTemplate": {"spec": {"parallelism": 2, "template": {"spec": {}}}}}}
    (entry,) = workload_entry(CRONJOB, cj).values()
    assert (entry.replicas, entry.selector) == (2, "echelon.dev/pool=p")


def test_a_sidecar_is_recognised_in_both_forms_and_only_for_its_pool() -> None:
    assert carries_sidecar(SIDECAR_POD, "p")
    regular = {"containers": [{"name": "work"}, {"name": "echelon-sidecar"}],
               "volumes": SIDECAR_POD["volumes"]}
    assert carries_sidecar(regular, "p")
    assert not carries_sidecar(SIDECAR_POD, "other")
    assert not carries_sidecar({"containers": [{"name": "work"}]}, "p")
