"""`kubectl apply -f configs/k8s/` -> ConfigMaps with the right content, columns, a sidecar."""

from __future__ import annotations

import yaml

from echelon_sidecar.config import load_config_text

from ..cluster import Cluster
from ..podspec import names, sidecar_of, template_spec
from .conftest import SAMPLES, apply, condition, get, wait_for


def test_samples_render_configmaps_status_columns_and_a_sidecar(
    k8s: Cluster, namespace: str, operator
) -> None:
    operator()
    apply(k8s, namespace, SAMPLES)

    def rendered(pool: str, sidecars: int) -> dict | None:
        cm = get(k8s, namespace, "configmap", f"echelon-pool-{pool}")
        if cm is None:
            return None
        cfg = load_config_text(cm["data"]["config.yaml"]).config
        return cm if cfg.sidecar.sidecars == sidecars else None

    thinking = wait_for(lambda: rendered("thinking-pool", 2), what="thinking-pool's ConfigMap")
    translation = wait_for(lambda: rendered("translation-pool", 1),
                           what="translation-pool's ConfigMap")

    # thinking-pool: its group, the group it falls back to, their models; no secrets
    cfg = load_config_text(thinking["data"]["config.yaml"]).config
    assert sorted(cfg.task_groups) == ["plan-group", "thinking-group"]
    assert list(cfg.polling_pools) == ["thinking-pool"]
    assert cfg.sidecar.pool == "thinking-pool"
    assert cfg.models["anthropic-claude-3-opus"].api_key_env == (
        "ECHELON_KEY_ANTHROPIC_CLAUDE_3_OPUS")
    assert all(m.api_key_secret is None for m in cfg.models.values())
    assert sorted(cfg.workflow_nodes) == ["thinking_node"]
    assert cfg.task_groups["thinking-group"].echelons["echelon1"].rpm_limit == 30
    meta = thinking["metadata"]
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "echelon-operator"
    assert meta["labels"]["echelon.dev/pool"] == "thinking-pool"
    pool = get(k8s, namespace, "pollingpool", "thinking-pool")
    assert pool is not None
    assert meta["ownerReferences"] == [{
        "apiVersion": "echelon.dev/v1alpha1", "kind": "PollingPool", "name": "thinking-pool",
        "uid": pool["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]

    cfg = load_config_text(translation["data"]["config.yaml"]).config
    assert list(cfg.task_groups) == ["fast-small-group"]
    assert sorted(cfg.workflow_nodes) == ["translation_node"]
    assert cfg.polling_pools["translation-pool"].rotation_strategy == "weighted"

    # status and printer columns
    def ready(kind: str, name: str) -> bool:
        obj = get(k8s, namespace, kind, name)
        status = (obj or {}).get("status") or {}
        return status.get("ready") == "True" and status.get("openCircuits") is not None

    for name in ("thinking-group", "plan-group", "fast-small-group"):
        wait_for(lambda n=name: ready("taskgroup", n), what=f"TaskGroup {name} ready")
    for name in ("thinking-pool", "translation-pool"):
        wait_for(lambda n=name: ready("pollingpool", n), what=f"PollingPool {name} ready")

    table = k8s.kubectl("get", "tg", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "TIERS", "STRATEGY", "OPEN", "READY", "AGE"]
    rows = {line.split()[0]: line.split()[1:5] for line in table[1:]}
    assert rows["thinking-group"] == ["3", "echelon_down", "0/6", "True"]
    assert rows["fast-small-group"] == ["3", "model_rotate", "0/3", "True"]

    table = k8s.kubectl("get", "pp", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "GROUPS", "ROTATION", "SIDECARS", "OPEN", "READY", "AGE"]
    rows = {line.split()[0]: line.split()[1:6] for line in table[1:]}
    assert rows["thinking-pool"] == ["thinking-group", "round_robin", "2", "0/10", "True"]
    assert rows["translation-pool"] == ["fast-small-group.translation", "weighted", "0", "0/3",
                                        "True"]
    both = k8s.kubectl("get", "tg,pp", "-n", namespace).stdout
    assert "taskgroup.echelon.dev/thinking-group" in both
    assert "pollingpool.echelon.dev/thinking-pool" in both

    def in_step() -> dict | None:
        # the ConfigMap is written before the status: once the Deployment's pods are listed the
        # pool is rendered again (budget shares by pod name), and for a moment the status still
        # names the version before
        status = get(k8s, namespace, "pollingpool", "thinking-pool")["status"]
        cm = get(k8s, namespace, "configmap", "echelon-pool-thinking-pool")
        version = load_config_text(cm["data"]["config.yaml"]).version
        return status if status.get("configVersion") == version else None

    status = wait_for(in_step, what="thinking-pool's status naming its ConfigMap's version")
    assert status["deployments"] == ["analysis-app"]
    assert status["configMap"] == "echelon-pool-thinking-pool"
    assert condition(get(k8s, namespace, "pollingpool", "thinking-pool"), "Invalid")["status"] == (
        "False")
    group = get(k8s, namespace, "taskgroup", "plan-group")["status"]
    assert group["pools"] == ["thinking-pool"]  # through thinking-group's fallback

    # the labelled Deployment of the samples gained the sidecar
    def injected() -> dict | None:
        dep = get(k8s, namespace, "deployment", "analysis-app")
        return dep if names(template_spec(dep)) == ["app", "echelon-sidecar"] else None

    dep = wait_for(injected, what="the sidecar in analysis-app")
    sidecar = sidecar_of(template_spec(dep))
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in sidecar["env"]
           if "secretKeyRef" in e["valueFrom"]}
    assert env["ECHELON_KEY_GEMINI_PRO"] == {"name": "llm-credentials", "key": "gemini"}
    assert dep["metadata"]["annotations"]["echelon.dev/injected-pool"] == "thinking-pool"
    volumes = dep["spec"]["template"]["spec"]["volumes"]
    assert volumes[0]["configMap"]["name"] == "echelon-pool-thinking-pool"
    assert yaml.safe_load(thinking["data"]["config.yaml"])["sidecar"]["sidecars"] == 2
