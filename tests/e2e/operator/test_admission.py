"""Admission rules: the API server itself refuses what a resource alone gets wrong.

The CRDs' x-kubernetes-validations (generated from the config model) need Kubernetes 1.25+;
on older servers these tests skip, saying so, and the operator's Invalid condition reports the
same problems (test_validation.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from ...admission_cases import ADMITTED, REFUSED
from ..cluster import Cluster
from .conftest import apply, get
from .manifests import API

RULES = (1, 25)


def resource(kind: str, spec: dict[str, Any], name: str = "x") -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize(("kind", "spec", "path", "message"), REFUSED)
def test_the_api_server_refuses_a_resource_its_rules_reject_naming_the_field(
    k8s: Cluster, namespace: str, crds: None, kind: str, spec: dict[str, Any], path: str,
    message: str,
) -> None:
    k8s.require(RULES, "CRD validation rules (x-kubernetes-validations)")
    proc = apply(k8s, namespace, resource(kind, spec), check=False)
    assert proc.returncode != 0, proc.stdout
    assert f"{path}: Invalid value" in proc.stderr, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert get(k8s, namespace, kind.lower(), "x") is None


def test_near_misses_are_admitted(k8s: Cluster, namespace: str, crds: None) -> None:
    k8s.require(RULES, "CRD validation rules (x-kubernetes-validations)")
    objs = [resource(kind, spec, f"ok-{i}") for i, (kind, spec) in
            enumerate(p.values for p in ADMITTED)]
    proc = apply(k8s, namespace, *objs, check=False)
    assert proc.returncode == 0, proc.stderr


def test_an_edit_that_breaks_a_rule_is_refused_and_the_stored_object_stays(
    k8s: Cluster, namespace: str, crds: None,
) -> None:
    k8s.require(RULES, "CRD validation rules (x-kubernetes-validations)")
    good = {"echelons": {"echelon1": {"models": ["m-a"], "priority": 1},
                         "echelon2": {"models": ["m-b"], "priority": 2}}}
    apply(k8s, namespace, resource("TaskGroup", good, "g"))
    bad = {"echelons": {"echelon1": {"models": ["m-a"], "priority": 1},
                        "echelon2": {"models": ["m-b"], "priority": 1}}}
    proc = apply(k8s, namespace, resource("TaskGroup", bad, "g"), check=False)
    assert proc.returncode != 0 and "share a priority" in proc.stderr, proc.stderr
    stored = get(k8s, namespace, "taskgroup", "g")
    assert stored["spec"]["echelons"]["echelon2"]["priority"] == 2
