"""Control-plane faults: the cluster always converges to the right state, nothing orphaned.

- the operator SIGKILLed mid-reconcile and restarted;
- conflicting concurrent edits of one TaskGroup;
- a pool deleted while its Deployment is being patched by someone else;
- the API server restarted under a running operator (on a cluster of this test's own, so the
  shared one is not disturbed).

"Right" is checked by :func:`converged`: every pool has its ConfigMap (owned by it, rendering
its groups' current spec), every Deployment labelled with an existing pool carries exactly one
sidecar for that pool, every other Deployment none (and no injected annotation or config
volume), and no ``echelon-pool-*`` ConfigMap outlives its pool.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..cluster import Cluster
from ..operator.conftest import (
    OperatorProcess,
    apply,
    free_port,
    get,
    wait_for,
)
from ..operator.manifests import deployment, global_config, polling_pool, task_group
from ..own_cluster import OwnCluster
from ..podspec import sidecar_of
from .conftest import Operator, must_get

GC_TIMEOUT = 150  # kube's garbage collector starts ~30 s after a CRD appears on this cluster
POOL_LABEL = "echelon.dev/pool"
INJECTED = "echelon.dev/injected-pool"
SIDECAR = "echelon-sidecar"
CONFIG_VOLUME = "echelon-config"


# -- what "converged" means ----------------------------------------------------------------------

def _items(k8s: Cluster, namespace: str, kind: str) -> list[dict[str, Any]]:
    return list(k8s.kubectl_json("get", kind, "-n", namespace)["items"])


def problems(k8s: Cluster, namespace: str, *, orphans: bool = True) -> list[str]:
    """What is not (yet) right in ``namespace``; empty when everything converged."""
    out: list[str] = []
    pools = {p["metadata"]["name"]: p for p in _items(k8s, namespace, "pollingpools")}
    groups = {g["metadata"]["name"]: g for g in _items(k8s, namespace, "taskgroups")}
    maps = {c["metadata"]["name"]: c for c in _items(k8s, namespace, "configmaps")}
    deployments = _items(k8s, namespace, "deployments")
    pods = _items(k8s, namespace, "pods")
    for name, pool in pools.items():
        out += _pool_problems(name, pool, groups, maps, deployments, pods)
    if orphans:
        for name in maps:
            if name.startswith("echelon-pool-") and name[len("echelon-pool-"):] not in pools:
                out.append(f"orphaned ConfigMap {name}")
    for dep in deployments:
        out += _deployment_problems(dep, pools)
    return out


def _pool_problems(name: str, pool: dict[str, Any], groups: dict[str, dict[str, Any]],
                   maps: dict[str, dict[str, Any]], deployments: list[dict[str, Any]],
                   pods: list[dict[str, Any]]) -> list[str]:
    """A pool's status, its ConfigMap (owner, rendered limits) and its budget split."""
    out: list[str] = []
    status = pool.get("status") or {}
    if status.get("observedGeneration") != pool["metadata"]["generation"]:
        out.append(f"pool {name}: observedGeneration {status.get('observedGeneration')} "
                   f"!= generation {pool['metadata']['generation']}")
    cm = maps.get(f"echelon-pool-{name}")
    if cm is None:
        return [*out, f"pool {name}: no ConfigMap"]
    owners = [o.get("uid") for o in cm["metadata"].get("ownerReferences") or []]
    if pool["metadata"]["uid"] not in owners:
        out.append(f"pool {name}: its ConfigMap is not owned by it")
    rendered = yaml.safe_load(cm["data"]["config.yaml"])
    for ref in pool["spec"]["taskGroups"]:
        group = groups.get(ref.split(".")[0])
        if group is None:
            continue
        want = group["spec"]["echelons"]["echelon1"].get("rpmLimit")
        have = (rendered["task_groups"].get(group["metadata"]["name"], {})
                .get("echelons", {}).get("echelon1", {}).get("rpm_limit"))
        if have != want:
            out.append(f"pool {name}: renders rpm_limit {have} for {ref}, spec says {want}")
    mine = [d for d in deployments
            if (d["metadata"].get("labels") or {}).get(POOL_LABEL) == name]
    serving = sum(int(d["spec"].get("replicas", 1)) for d in mine)
    members = _members(pods, {d["metadata"]["name"] for d in mine}, name)
    if rendered["sidecar"].get("pods", []) != members:
        out.append(f"pool {name}: budgets shared by {rendered['sidecar'].get('pods')}, "
                   f"its sidecars run in {members}")
    if rendered["sidecar"]["sidecars"] != max(1, serving, len(members)):
        out.append(f"pool {name}: budget split {rendered['sidecar']['sidecars']} ways, "
                   f"{serving} replica(s), {len(members)} pod(s) serve it")
    return out


def _deployment_problems(dep: dict[str, Any], pools: dict[str, dict[str, Any]]) -> list[str]:
    """A Deployment has the sidecar and config volume of its pool's label, or none at all."""
    out: list[str] = []
    name = dep["metadata"]["name"]
    label = (dep["metadata"].get("labels") or {}).get(POOL_LABEL)
    annotation = (dep["metadata"].get("annotations") or {}).get(INJECTED)
    spec = dep["spec"]["template"]["spec"]
    sidecars = [c for c in [*spec["containers"], *(spec.get("initContainers") or [])]
                if c["name"] == SIDECAR]
    volumes = [v for v in spec.get("volumes") or [] if v["name"] == CONFIG_VOLUME]
    if label in pools:
        if len(sidecars) != 1 or annotation != label:
            out.append(f"deployment {name}: {len(sidecars)} sidecars, annotation "
                       f"{annotation!r}, label {label!r}")
        elif not volumes or volumes[0]["configMap"]["name"] != f"echelon-pool-{label}":
            out.append(f"deployment {name}: config volume {volumes}")
    elif sidecars or annotation or volumes:
        out.append(f"deployment {name}: sidecar left behind (label {label!r})")
    if spec["containers"][0]["name"] != "app":
        out.append(f"deployment {name}: the app's container moved")
    return out


def _members(pods: list[dict[str, Any]], apps: set[str], pool: str) -> list[str]:
    """The pods that hold a share of ``pool``'s budgets, by the definition in docs/operator.md:
    pods of the Deployments labelled for the pool, neither terminating nor finished, whose
    sidecar reads the pool's ConfigMap."""
    out = []
    for pod in pods:
        meta, spec = pod["metadata"], pod["spec"]
        if (meta.get("labels") or {}).get("app") not in apps or meta.get("deletionTimestamp"):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if sidecar_of(spec) is None:
            continue
        if any(v["name"] == CONFIG_VOLUME and (v.get("configMap") or {}).get("name")
               == f"echelon-pool-{pool}" for v in spec.get("volumes") or []):
            out.append(meta["name"])
    return sorted(out)


def wait_converged(k8s: Cluster, namespace: str, *, timeout: float = 60,
                   orphans: bool = True) -> None:
    last: list[str] = []

    def ok() -> bool:
        nonlocal last
        last = problems(k8s, namespace, orphans=orphans)
        return not last

    try:
        wait_for(ok, timeout=timeout, interval=0.5, what="the cluster to converge")
    except pytest.fail.Exception:
        pytest.fail(f"not converged after {timeout}s: {last}", pytrace=False)


def liveness(op: OperatorProcess) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{op.liveness_port}/healthz",
                                timeout=2) as resp:
        body: dict[str, Any] = json.loads(resp.read())["echelon"]
        return body


def sigkill(op: OperatorProcess) -> None:
    assert op.proc is not None
    op.proc.send_signal(signal.SIGKILL)
    op.proc.wait(timeout=10)
    op.proc = None


# -- the operator killed mid-reconcile -----------------------------------------------------------

POOLS = 6


def _world(round_: int) -> list[dict[str, Any]]:
    """Six pools, each with its group and two Deployments; ``round_`` moves labels around and
    changes every group's rpmLimit, so each round has real work to do."""
    objs: list[dict[str, Any]] = [global_config()]
    for i in range(POOLS):
        objs.append(task_group(f"g{i}", echelons={"echelon1": {
            "models": ["m-openai", "m-claude"], "priority": 1, "rpmLimit": 60 + round_,
            "concurrencyLimit": 10}}))
        objs.append(polling_pool(f"p{i}", [f"g{i}"]))
        target = f"p{(i + round_) % POOLS}"
        objs.append(deployment(f"app{i}", pool=None if (i + round_) % 3 == 0 else target))
        objs.append(deployment(f"other{i}"))
    return objs


def _effects(op: OperatorProcess) -> int:
    """Writes the operator has logged so far (ConfigMaps rendered, sidecars added/removed)."""
    text = op.log_text()
    return sum(text.count(word) for word in ("ConfigRendered", "SidecarInjected",
                                             "SidecarRemoved"))


def test_the_operator_killed_mid_reconcile_converges_after_a_restart(
    k8s: Cluster, namespace: str, operator: Operator
) -> None:
    op = operator()
    caught = 0
    for round_ in range(3):
        seen = _effects(op)
        apply(k8s, namespace, *_world(round_))
        # SIGKILL at its first write of the round, while the rest is still to do
        deadline = time.monotonic() + 30
        while _effects(op) == seen and time.monotonic() < deadline:
            time.sleep(0.005)
        sigkill(op)
        if problems(k8s, namespace, orphans=False):
            caught += 1
        op.start()
        wait_converged(k8s, namespace)
    assert caught, "the operator was never caught with work left to do"
    # and a plain restart afterwards changes nothing: no Deployment spec or annotation (their
    # status and the revision annotation are the deployment controller's, which may still be
    # catching up with the last round), no ConfigMap
    def versions() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for d in _items(k8s, namespace, "deployments"):
            meta = d["metadata"]
            notes = {k: v for k, v in (meta.get("annotations") or {}).items()
                     if k != "deployment.kubernetes.io/revision"}
            out[f"deployments/{meta['name']}"] = (meta["generation"], notes)
        for c in _items(k8s, namespace, "configmaps"):
            out[f"configmaps/{c['metadata']['name']}"] = c["metadata"]["resourceVersion"]
        return out

    before = versions()
    op.restart()
    time.sleep(3)  # a few reconcile and poll periods
    assert versions() == before


# -- conflicting concurrent edits ----------------------------------------------------------------

def test_conflicting_concurrent_edits_of_a_task_group_end_in_its_last_written_spec(
    k8s: Cluster, namespace: str, operator: Operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          deployment("app", pool="p"))
    wait_converged(k8s, namespace)
    rv = must_get(k8s, namespace, "taskgroup", "g")["metadata"]["resourceVersion"]
    results: list[int] = []
    lock = threading.Lock()

    def edit(value: int) -> None:
        spec = {"echelons": {"echelon1": {"rpmLimit": value}}}
        meta = {"resourceVersion": rv} if value % 2 else {}  # half race on a stale version
        proc = k8s.kubectl("patch", "taskgroup", "g", "-n", namespace, "--type=merge", "-p",
                           json.dumps({"metadata": meta, "spec": spec}), check=False)
        with lock:
            results.append(proc.returncode)

    threads = [threading.Thread(target=edit, args=(100 + i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert 0 in results and any(results), f"some edits won, some conflicted: {results}"
    spec = must_get(k8s, namespace, "taskgroup", "g")["spec"]
    final = spec["echelons"]["echelon1"]["rpmLimit"]

    def rendered() -> bool:
        cm = get(k8s, namespace, "configmap", "echelon-pool-p")
        config = yaml.safe_load(cm["data"]["config.yaml"]) if cm else {}
        return bool(config) and config["task_groups"]["g"]["echelons"]["echelon1"][
            "rpm_limit"] == final

    wait_for(rendered, what=f"the ConfigMap to render the winning rpmLimit {final}")
    wait_converged(k8s, namespace)
    group = must_get(k8s, namespace, "taskgroup", "g")
    assert group["status"]["observedGeneration"] == group["metadata"]["generation"]


# -- a pool deleted while its Deployment is being patched ------------------------------------------

def test_a_pool_deleted_while_its_deployment_is_patched_leaves_no_sidecar_and_keeps_the_edits(
    k8s: Cluster, namespace: str, operator: Operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          deployment("app", pool="p"), deployment("bystander", pool="q"))
    wait_converged(k8s, namespace)
    stop = threading.Event()
    last = {"value": 0}

    def patch_forever() -> None:  # someone else keeps editing the app's own container
        n = 0
        while not stop.is_set():
            n += 1
            env = [{"name": "A", "value": str(n)}]
            body = {"spec": {"template": {"spec": {"containers": [
                {"name": "app", "env": env}]}}}}
            proc = k8s.kubectl("patch", "deployment", "app", "-n", namespace,
                               "--type=strategic", "-p", json.dumps(body), check=False)
            if proc.returncode == 0:
                last["value"] = n

    editor = threading.Thread(target=patch_forever)
    editor.start()
    try:
        time.sleep(1.0)
        k8s.kubectl("delete", "pollingpool", "p", "-n", namespace, "--wait=false")
        time.sleep(3.0)
    finally:
        stop.set()
        editor.join(60)
    assert last["value"] > 3, "the editor kept patching"
    wait_converged(k8s, namespace, orphans=False)
    app = must_get(k8s, namespace, "deployment", "app")
    (container,) = app["spec"]["template"]["spec"]["containers"]
    assert not app["spec"]["template"]["spec"].get("initContainers")
    assert container["env"] == [{"name": "A", "value": str(last["value"])}], \
        "the operator's removal did not undo the concurrent edits"
    wait_converged(k8s, namespace, timeout=GC_TIMEOUT)  # the ConfigMap is collected too


# -- the API server restarted under a running operator ----------------------------------------

def _namespaced_operator(k8s: Cluster, namespace: str, tmp_path: Path) -> OperatorProcess:
    """On a control plane of the test's own: the CRDs, a namespace, and a started operator
    watching that namespace only (so kopf watches no CRDs), polling every second."""
    k8s.kubectl("create", "namespace", namespace)
    k8s.kubectl("apply", "-f", str(k8s.crd_dir()))
    k8s.wait_established("taskgroups.echelon.dev", "pollingpools.echelon.dev")
    k8s.kubectl("wait", "--for=create", "serviceaccount/default", "-n", namespace,
                "--timeout=60s")
    port = free_port()
    env = {**k8s.env, "PYTHONUNBUFFERED": "1"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    op = OperatorProcess(k8s, ["--namespace", namespace, "--liveness",
                               f"http://127.0.0.1:{port}/healthz", "--log-level", "INFO",
                               "--poll-interval", "1", "--poll-timeout", "1"],
                         tmp_path / "operator", env, port)
    op.start()
    return op


def test_an_api_server_restart_under_a_running_operator_is_survived_and_converges(
    own_cluster: OwnCluster, tmp_path: Path
) -> None:
    k8s = own_cluster.cluster
    namespace = "restart"
    op = _namespaced_operator(k8s, namespace, tmp_path)
    try:
        apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
              deployment("app", pool="p"), deployment("later"))
        wait_converged(k8s, namespace)
        own_cluster.restart_apiserver(down_for=3.0)

        def kubelet() -> None:
            """restartPolicy Always: the operator may exit -- only the way it does when a kopf
            watch stream failed for good (echelon_operator.watcher_failures) -- and is started
            again."""
            assert op.proc is not None
            if op.proc.poll() is not None:
                log = op.log_tail(200)
                assert op.proc.returncode == 1 and "a watch stream failed for good" in log, \
                    "the operator exited while the API server was away:\n" + log
                op.restart()

        kubelet()
        # changes made after the restart still reach the cluster: the watches came back
        k8s.kubectl("patch", "taskgroup", "g", "-n", namespace, "--type=merge", "-p",
                    json.dumps({"spec": {"echelons": {"echelon1": {"rpmLimit": 42}}}}))
        k8s.kubectl("label", "deployment", "later", "-n", namespace, f"{POOL_LABEL}=p")

        def rendered() -> bool:
            cm = get(k8s, namespace, "configmap", "echelon-pool-p")
            config = yaml.safe_load(cm["data"]["config.yaml"]) if cm else {}
            kubelet()
            return (bool(config) and config["task_groups"]["g"]["echelons"]["echelon1"][
                "rpm_limit"] == 42 and config["sidecar"]["sidecars"] == 2)

        try:
            wait_for(rendered, timeout=120, interval=0.5,
                     what="the edit after the restart rendered (watches resumed)")
            wait_converged(k8s, namespace, timeout=120)
        except pytest.fail.Exception as exc:
            pytest.fail(f"{exc}\n---- echelon-operator log\n{op.log_tail(200)}", pytrace=False)
        kubelet()
    finally:
        op.stop()


# -- a watched resource gone under a running operator ------------------------------------------

def test_an_operator_deaf_to_a_resource_exits_to_be_restarted(
    own_cluster: OwnCluster, tmp_path: Path
) -> None:
    """The TaskGroup CRD deleted under a namespaced operator (which does not watch CRDs):
    kopf's watch gets a 404 it does not retry and its watcher fails for good -- the state a
    restarted API server can leave for a moment (CI saw it). The operator must not run on
    deaf: it exits 1, saying why, promptly (a restart re-lists everything)."""
    k8s = own_cluster.cluster
    namespace = "deaf"
    op = _namespaced_operator(k8s, namespace, tmp_path)
    try:
        apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
              deployment("app", pool="p"))
        wait_converged(k8s, namespace)
        k8s.kubectl("delete", "crd", "taskgroups.echelon.dev", "--timeout=60s")
        assert op.proc is not None
        deadline = time.monotonic() + 90
        while op.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        log = op.log_tail(200)
        assert op.proc.returncode == 1, f"the operator ran on deaf:\n{log}"
        assert "a watch stream failed for good" in log, log
        assert "Watcher for taskgroups.v1alpha1.echelon.dev@deaf has failed" in log, log
    finally:
        op.stop()
