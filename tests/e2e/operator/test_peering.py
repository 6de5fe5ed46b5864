"""`--peering`: several operator replicas, one works, the others stand by and take over."""

from __future__ import annotations

import json

import yaml

from ..cluster import Cluster
from .conftest import apply, get, wait_for
from .manifests import global_config, polling_pool, task_group


def rpm_limit(k8s: Cluster, namespace: str) -> int | None:
    cm = get(k8s, namespace, "configmap", "echelon-pool-p")
    if cm is None:
        return None
    config = yaml.safe_load(cm["data"]["config.yaml"])
    return int(config["task_groups"]["g"]["echelons"]["echelon1"]["rpm_limit"])


def test_the_highest_priority_replica_works_and_a_standby_takes_over_when_it_goes(
    k8s: Cluster, namespace: str, operator, peering_crds: None
) -> None:
    leader = operator("--peering", "echelon", "--priority", "100")
    standby = operator("--peering", "echelon", "--priority", "50")

    # the operator created the peering object kopf needs, and both replicas joined it
    def peers() -> dict | None:
        obj = get(k8s, namespace, "kopfpeerings.kopf.dev", "echelon")
        status = (obj or {}).get("status") or {}
        return status if len(status) == 2 else None

    status = wait_for(peers, timeout=60, what="both replicas in KopfPeering echelon")
    assert sorted(p["priority"] for p in status.values()) == [50, 100]
    # a peering replica starts paused; kopf lets the one with the highest priority resume
    wait_for(lambda: "Resuming operations" in leader.log_text(), timeout=60,
             what="the leader resuming")

    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]))
    wait_for(lambda: rpm_limit(k8s, namespace) == 60, timeout=60,
             what="the leader rendering the pool")
    assert "Resuming operations" not in standby.log_text()

    leader.stop()  # a graceful exit takes the leader out of the peering object at once
    wait_for(lambda: "Resuming operations" in standby.log_text(), timeout=90,
             what="the standby resuming once the leader has gone")
    k8s.kubectl("patch", "taskgroup", "g", "-n", namespace, "--type=merge", "-p",
                json.dumps({"spec": {"echelons": {"echelon1": {"rpmLimit": 42}}}}))
    wait_for(lambda: rpm_limit(k8s, namespace) == 42, timeout=90,
             what="the former standby rendering an edit")
