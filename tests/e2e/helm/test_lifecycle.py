"""helm install -> the operator (the chart's settings and ServiceAccount) reconciles the samples
-> its health endpoint answers as `helm test` checks it -> helm upgrade applies changed values."""

from __future__ import annotations

import json
import urllib.request

import yaml

from echelon_sidecar.config import load_config_text

from ..cluster import Cluster
from ..operator.conftest import SAMPLES, apply, get, wait_for
from ..podspec import sidecar_of, template_spec
from .conftest import EXAMPLE_CATALOG, Chart, hooks, operator_command


def _pool_config(k8s: Cluster, namespace: str, pool: str):  # type: ignore[no-untyped-def]
    cm = get(k8s, namespace, "configmap", f"echelon-pool-{pool}")
    return load_config_text(cm["data"]["config.yaml"]).config if cm else None


def _sidecar(k8s: Cluster, namespace: str, deployment: str) -> dict | None:
    return sidecar_of(template_spec(get(k8s, namespace, "deployment", deployment)))


def test_install_reconcile_health_and_upgrade(
    k8s: Cluster, chart: Chart, namespace: str, app_namespace: str, run_operator
) -> None:
    release = chart.install(values=(EXAMPLE_CATALOG,), sets={
        "rbac.scope": "namespaced", "watchNamespaces": [app_namespace],
        "operator.pollInterval": 1, "operator.pollTimeout": 1, "operator.logLevel": "INFO"})

    # what the chart installed
    dep = chart.deployment(release)
    args, env, account = operator_command(dep)
    assert args == ["--standalone"] and account == "echelon"
    assert env["ECHELON_NAMESPACES"] == app_namespace
    assert env["ECHELON_OPERATOR_NAMESPACE"] == namespace
    assert env["ECHELON_GLOBAL_CONFIG"] == "echelon-global-config"
    assert env["ECHELON_SIDECAR_IMAGE"] == "echelon-sidecar:0.1.0"
    catalog = get(k8s, namespace, "configmap", "echelon-global-config")
    assert catalog["metadata"]["labels"]["echelon.dev/config"] == "global"

    # the operator, run as the chart's ServiceAccount with the Deployment's settings
    op = run_operator(release)

    # `helm test`: its pod wgets the operator's /healthz through the chart's Service; no
    # kubelet runs it here, so the test calls the same endpoint and checks the pod's target
    with urllib.request.urlopen(f"http://127.0.0.1:{op.liveness_port}/healthz",
                                timeout=5) as reply:
        assert reply.status == 200
    (test_pod,) = [h for h in hooks(chart, release) if h["kind"] == "Pod"]
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    service = get(k8s, namespace, "service", "echelon")
    port = service["spec"]["ports"][0]
    assert test_pod["spec"]["containers"][0]["command"][-1] == (
        f"http://echelon.{namespace}.svc:{port['port']}/healthz")
    assert port["targetPort"] == "health"
    assert dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] == "health"

    # the samples, with the model catalog from the chart's values (no 00-global-config.yaml)
    for sample in ("10-taskgroups.yaml", "20-pollingpools.yaml", "30-app-deployment.yaml"):
        apply(k8s, app_namespace, SAMPLES / sample)
    cfg = wait_for(lambda: _pool_config(k8s, app_namespace, "thinking-pool"),
                   what="thinking-pool's ConfigMap")
    assert cfg.models["gemini-pro"].model == "gemini-1.5-pro"
    assert cfg.models["anthropic-claude-3-opus"].api_key_env == (
        "ECHELON_KEY_ANTHROPIC_CLAUDE_3_OPUS")
    assert sorted(cfg.workflow_nodes) == ["thinking_node"]
    wait_for(lambda: _pool_config(k8s, app_namespace, "translation-pool"),
             what="translation-pool's ConfigMap")

    def ready() -> bool:
        table = k8s.kubectl("get", "tg,pp", "-n", app_namespace, "-o", "json").stdout
        items = json.loads(table)["items"]
        return len(items) == 5 and all(
            (i.get("status") or {}).get("ready") == "True" for i in items)

    wait_for(ready, timeout=60, what="every TaskGroup and PollingPool READY")
    rows = k8s.kubectl("get", "tg,pp", "-n", app_namespace).stdout
    assert "taskgroup.echelon.dev/thinking-group" in rows
    assert "pollingpool.echelon.dev/thinking-pool" in rows

    sidecar = wait_for(lambda: _sidecar(k8s, app_namespace, "analysis-app"),
                       what="the sidecar injected into analysis-app")
    assert sidecar["image"] == "echelon-sidecar:0.1.0"
    assert sidecar["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"}}

    # helm upgrade: a new sidecar image and poll interval, and a changed model in the catalog
    chart.upgrade(release, sets={
        "sidecar.image.tag": "0.1.1", "operator.pollInterval": 2,
        "globalConfig.models.gemini-pro.model": "gemini-1.5-flash"})
    args, env, _ = operator_command(chart.deployment(release))
    assert env["ECHELON_SIDECAR_IMAGE"] == "echelon-sidecar:0.1.1"
    assert env["ECHELON_POLL_INTERVAL"] == "2"
    assert env["ECHELON_NAMESPACES"] == app_namespace  # --reuse-values kept the rest
    catalog = yaml.safe_load(
        get(k8s, namespace, "configmap", "echelon-global-config")["data"]["config.yaml"])
    assert catalog["models"]["gemini-pro"]["model"] == "gemini-1.5-flash"
    assert catalog["models"]["openai-gpt4"]["model"] == "gpt-4o"

    # the running operator re-reads the catalog: the pool's config follows, no restart
    wait_for(lambda: (c := _pool_config(k8s, app_namespace, "thinking-pool"))
             and c.models["gemini-pro"].model == "gemini-1.5-flash",
             what="the changed catalog in thinking-pool's ConfigMap")

    # the Deployment's new settings take effect when the operator restarts (Recreate)
    op.stop()
    op = run_operator(release)
    wait_for(lambda: (s := _sidecar(k8s, app_namespace, "analysis-app"))
             and s["image"] == "echelon-sidecar:0.1.1",
             what="the sidecar re-injected with the upgraded image")
    log = op.log_text()
    assert "forbidden" not in log.lower() and " 403" not in log, log[-3000:]
