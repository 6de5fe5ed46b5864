"""`helm template`: what the chart renders for the default values and for every option."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

import pytest
import yaml

from echelon_operator import rbac
from echelon_operator.builders.globalconfig import parse_global_configmap
from echelon_operator.crds import build_crds, without_rules
from echelon_operator.main import build_parser, settings_from_args
from echelon_operator.names import ADMIN_PORT_NAME, GLOBAL_CONFIG_LABEL, SIDECAR_CONTAINER
from echelon_operator.settings import DEFAULT_IMAGE, DEFAULT_RESOURCES, ENV, OperatorSettings

from .helm import (
    ALL_OPTIONS,
    CHART,
    MONITORING_APIS,
    container_env,
    find,
    one,
    render,
    render_error,
    render_text,
)

Docs = list[dict[str, Any]]
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def kinds(docs: Docs) -> list[str]:
    return sorted(d["kind"] for d in docs)


def test_default_values_render_operator_crds_rbac_global_config_service_and_test_pod(
    default_docs: Docs,
) -> None:
    assert kinds(default_docs) == sorted([
        "CustomResourceDefinition", "CustomResourceDefinition", "ServiceAccount",
        "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap", "Deployment",
        "Service", "Pod",
    ])


def test_all_options_render_every_optional_resource(all_options_docs: Docs) -> None:
    assert kinds(all_options_docs) == sorted([
        "CustomResourceDefinition", "CustomResourceDefinition", "ServiceAccount",
        "CustomResourceDefinition", "CustomResourceDefinition",  # kopf's peering CRDs
        "Role", "Role", "Role", "RoleBinding", "RoleBinding", "RoleBinding",
        "ConfigMap", "Deployment", "Service", "Pod", "PodMonitor", "PrometheusRule",
        "ConfigMap",  # the Grafana dashboard
    ])


@pytest.mark.parametrize("values", ["default", "all-options"])
def test_every_resource_carries_the_app_kubernetes_io_labels(
    values: str, default_docs: Docs, all_options_docs: Docs
) -> None:
    docs = default_docs if values == "default" else all_options_docs
    for doc in docs:
        labels = doc["metadata"]["labels"]
        where = f"{doc['kind']} {doc['metadata']['name']}"
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                    "app.kubernetes.io/version", "app.kubernetes.io/component",
                    "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "helm.sh/chart"):
            assert key in labels, f"{where}: no {key}"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "echelon"
        if values == "all-options":
            assert labels["team"] == "platform", f"{where}: commonLabels missing"


def test_each_template_file_holds_one_kind_and_is_named_after_it() -> None:
    text = render_text(values=[ALL_OPTIONS], api_versions=MONITORING_APIS)  # namespaced
    text += "\n---\n" + render_text(api_versions=MONITORING_APIS)  # cluster scope
    by_file: dict[str, set[str]] = defaultdict(set)
    for chunk in text.split("\n---\n"):
        source = re.search(r"^# Source: echelon/templates/(\S+)$", chunk, re.M)
        doc = yaml.safe_load(chunk)
        if source and doc:
            by_file[source.group(1)].add(doc["kind"])
    for path, found in by_file.items():
        assert len(found) == 1, f"{path} renders {found}"
        (kind,) = found
        stem = path.rsplit("/", 1)[-1].removesuffix(".yaml")
        if path.startswith("crd/"):
            assert kind == "CustomResourceDefinition"
            assert stem.endswith(".echelon.dev") or stem.endswith(".kopf.dev"), path
        else:
            assert stem == kind.lower(), f"{path} holds a {kind}"
    on_disk = {str(p.relative_to(CHART / "templates")) for p in
               (CHART / "templates").rglob("*.yaml")}
    assert on_disk == set(by_file), "every template renders in one of the two"


# -- CRDs ----------------------------------------------------------------------------------------


def test_crds_are_the_generated_ones_kept_on_uninstall(default_docs: Docs) -> None:
    generated = build_crds()
    rendered = {d["spec"]["names"]["kind"]: d for d in find(default_docs,
                                                            "CustomResourceDefinition")}
    assert set(rendered) == set(generated) == {"TaskGroup", "PollingPool"}
    for kind, crd in rendered.items():
        assert crd["spec"] == generated[kind]["spec"]
        assert crd["metadata"]["name"] == generated[kind]["metadata"]["name"]
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"]["app.kubernetes.io/component"] == "crd"
        assert "namespace" not in crd["metadata"]
        assert "x-kubernetes-validations" in json.dumps(crd["spec"])  # the admission rules


def test_clusters_before_1_25_get_the_crds_without_admission_rules() -> None:
    generated = build_crds()
    for version, with_rules in (("1.24.9", False), ("1.25.0", True), ("1.37.2", True)):
        docs = render(kube_version=version)
        rendered = {d["spec"]["names"]["kind"]: d for d in find(docs, "CustomResourceDefinition")}
        for kind, crd in rendered.items():
            want = generated[kind] if with_rules else without_rules(generated[kind])
            assert crd["spec"] == want["spec"], (version, kind)


def test_crds_keep_false_lets_uninstall_delete_them(all_options_docs: Docs) -> None:
    for crd in find(all_options_docs, "CustomResourceDefinition"):
        assert "annotations" not in crd["metadata"]


def test_crds_install_false_renders_no_crd() -> None:
    docs = render(sets={"crds.install": False})
    assert find(docs, "CustomResourceDefinition") == []


# -- the operator --------------------------------------------------------------------------------


def test_peering_runs_replicas_with_kopf_peering_its_crds_and_rights() -> None:
    docs = render(sets={"peering.enabled": True, "operator.replicas": 2})
    dep = one(docs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate"}
    assert dep["spec"]["template"]["spec"]["containers"][0]["args"] == ["--peering", "echelon"]
    crds = sorted(d["metadata"]["name"] for d in find(docs, "CustomResourceDefinition"))
    assert crds == ["clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev",
                    "pollingpools.echelon.dev", "taskgroups.echelon.dev"]
    assert one(docs, "ClusterRole")["rules"] == rbac.rules("cluster", peering=True)["clusterRole"]
    quiet = render(sets={"peering.enabled": True, "peering.installCrds": False})
    assert len(find(quiet, "CustomResourceDefinition")) == 2
    default = render()
    assert one(default, "ClusterRole")["rules"] == rbac.rules("cluster")["clusterRole"]


def test_operator_is_one_recreated_replica_with_a_hardened_pod(default_docs: Docs) -> None:
    dep = one(default_docs, "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "echelon"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "echelon-operator:0.1.0"
    assert container["args"] == ["--standalone"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert container["resources"]["limits"]["memory"] == "256Mi"
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()


def test_liveness_probe_and_service_reach_the_operators_liveness_endpoint(
    all_options_docs: Docs,
) -> None:
    dep = one(all_options_docs, "Deployment")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    (port,) = container["ports"]
    assert port == {"name": "health", "containerPort": 8181, "protocol": "TCP"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container_env(dep)["ECHELON_LIVENESS"] == "http://0.0.0.0:8181/healthz"
    service = one(all_options_docs, "Service")
    assert service["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [
        {"name": "health", "port": 18081, "targetPort": "health", "protocol": "TCP"}]


def test_operator_env_names_are_the_operators_own_variables(all_options_docs: Docs) -> None:
    env = container_env(one(all_options_docs, "Deployment"))
    unknown = set(env) - set(ENV.values()) - {"PYTHONUNBUFFERED"}
    assert not unknown, f"not ECHELON_* settings of echelon-operator: {unknown}"


def test_default_values_give_the_operators_defaults_except_json_logs_and_liveness(
    default_docs: Docs,
) -> None:
    settings = OperatorSettings.from_env(container_env(one(default_docs, "Deployment")))
    defaults = OperatorSettings()
    assert settings.all_namespaces is True and settings.clusterwide
    assert settings.sidecar_image == DEFAULT_IMAGE
    assert dict(settings.sidecar_resources) == DEFAULT_RESOURCES
    for name in ("image_pull_policy", "data_port", "admin_port", "poll_interval",
                 "poll_timeout", "poll_concurrency", "log_level", "global_config_name"):
        assert getattr(settings, name) == getattr(defaults, name), name
    assert settings.operator_namespace == "echelon-system"
    assert settings.log_format == "json"
    assert settings.liveness == "http://0.0.0.0:8081/healthz"


def test_every_operator_value_reaches_the_operators_settings(
    all_options_docs: Docs, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = one(all_options_docs, "Deployment")
    for name, value in container_env(dep).items():
        monkeypatch.setenv(name, value)
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    settings = settings_from_args(build_parser().parse_args(args))
    assert settings.namespaces == ("team-a", "team-b") and not settings.clusterwide
    assert settings.operator_namespace == "ops"
    assert settings.global_config_name == "llm-catalog"
    assert settings.sidecar_image == "platform/echelon-sidecar:0.1.0-rc1"
    assert settings.image_pull_policy == "Always"
    assert dict(settings.sidecar_resources) == {
        "requests": {"cpu": "25m", "memory": "48Mi"}, "limits": {"memory": "192Mi"}}
    assert (settings.data_port, settings.admin_port) == (18080, 19090)
    assert (settings.poll_interval, settings.poll_timeout, settings.poll_concurrency) == (
        5.0, 1.5, 8)
    assert (settings.log_level, settings.log_format) == ("DEBUG", "full")
    assert settings.liveness == "http://0.0.0.0:8181/healthz"
    assert settings.peering == "echelon-ha"
    assert dep["spec"]["replicas"] == 3 and dep["spec"]["strategy"] == {"type": "RollingUpdate"}


# -- RBAC ----------------------------------------------------------------------------------------


def _no_secrets(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        assert "secrets" not in rule["resources"] and "*" not in rule["resources"], rule
        assert "*" not in rule["verbs"], rule


def test_cluster_scope_binds_the_rbac_modules_cluster_rules(default_docs: Docs) -> None:
    expected = rbac.rules("cluster", global_config_name="echelon-global-config")
    role = one(default_docs, "ClusterRole")
    assert role["rules"] == expected["clusterRole"]
    binding = one(default_docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "echelon",
                                    "namespace": "echelon-system"}]
    global_role = one(default_docs, "Role")
    assert global_role["metadata"]["namespace"] == "echelon-system"
    assert global_role["rules"] == expected["operatorNamespaceRole"]
    _no_secrets(role["rules"] + global_role["rules"])


def test_namespaced_scope_binds_a_role_in_each_watched_namespace_and_nothing_cluster_wide(
    all_options_docs: Docs,
) -> None:
    expected = rbac.rules("namespaced", peering=True, global_config_name="llm-catalog")
    assert not find(all_options_docs, "ClusterRole")
    assert not find(all_options_docs, "ClusterRoleBinding")
    for ns in ("team-a", "team-b"):
        (role,) = find(all_options_docs, "Role", namespace=ns)
        assert role["rules"] == expected["watchedNamespaceRole"]
        (binding,) = find(all_options_docs, "RoleBinding", namespace=ns)
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "echelon-operator",
                                        "namespace": "ops"}]
        _no_secrets(role["rules"])
    (own,) = find(all_options_docs, "Role", namespace="ops")
    assert own["rules"] == expected["operatorNamespaceRole"]
    assert own["rules"][0]["resourceNames"] == ["llm-catalog"]


def test_namespaced_scope_without_watched_namespaces_fails_with_what_to_do() -> None:
    error = render_error(sets={"rbac.scope": "namespaced"})
    assert "rbac.scope=namespaced needs watchNamespaces" in error


def test_rbac_create_false_renders_no_role() -> None:
    docs = render(sets={"rbac.create": False})
    assert not [d for d in docs if d["kind"] in RBAC_KINDS]


def test_an_existing_service_account_must_be_named() -> None:
    error = render_error(sets={"serviceAccount.create": False})
    assert "serviceAccount.name" in error
    docs = render(sets={"serviceAccount.create": False, "serviceAccount.name": "ops-bot"})
    assert not find(docs, "ServiceAccount")
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ops-bot"
    assert one(docs, "ClusterRoleBinding")["subjects"][0]["name"] == "ops-bot"


# -- the global config ---------------------------------------------------------------------------


def test_global_config_is_a_labelled_configmap_the_operator_parses(
    all_options_docs: Docs,
) -> None:
    cm = one(all_options_docs, "ConfigMap", "llm-catalog")
    meta = cm["metadata"]
    assert (meta["name"], meta["namespace"]) == ("llm-catalog", "ops")
    assert meta["labels"][GLOBAL_CONFIG_LABEL] == "global"
    assert list(cm["data"]) == ["config.yaml"]
    config, problems = parse_global_configmap("ops", "llm-catalog", cm["data"])
    assert problems == []
    assert config.models["openai-gpt4"] == {
        "provider": "openai", "model": "gpt-4o", "base_url": "https://api.openai.com/v1",
        "api_key_secret": {"name": "llm-credentials", "key": "openai"},
        "default_max_tokens": 2048, "weight": 3,
        "price": {"input_per_million": 2.5, "output_per_million": 10}}
    assert config.models["local-llama"]["headers"] == {"X-Tenant": "platform"}
    node = config.workflow_nodes["thinking_node"]
    assert node["llm_group"] == "thinking-group.echelon1"
    assert node["task_config"]["thinking_config"] == {"enabled": True, "budget_tokens": 2048}
    assert node["concurrency_config"] == {"limit": 5, "queue_size": 50}
    assert config.concurrency_control["levels"]["group"] == {"limit": 50, "queue_size": 200}
    assert config.rate_limiting["token_bucket"] == {"bucket_size": 100, "refill_rate": 10}


def test_default_global_config_is_named_after_the_release_and_empty(default_docs: Docs) -> None:
    cm = one(default_docs, "ConfigMap")
    assert cm["metadata"]["name"] == "echelon-global-config"
    assert yaml.safe_load(cm["data"]["config.yaml"]) == {"models": {}}


def test_global_config_create_false_renders_no_configmap_but_keeps_its_name() -> None:
    docs = render(sets={"globalConfig.create": False, "globalConfig.name": "shared-catalog"})
    assert not find(docs, "ConfigMap")
    assert container_env(one(docs, "Deployment"))["ECHELON_GLOBAL_CONFIG"] == "shared-catalog"
    assert one(docs, "Role")["rules"][0]["resourceNames"] == ["shared-catalog"]


def test_no_secret_value_is_rendered(all_options_docs: Docs) -> None:
    text = json.dumps(all_options_docs)
    assert "kind\": \"Secret\"" not in text
    assert "secretKeyRef" not in text  # the operator adds those to sidecars, not the chart


# -- monitoring ----------------------------------------------------------------------------------


def test_monitoring_resources_need_the_prometheus_operator_apis() -> None:
    docs = render(values=[ALL_OPTIONS])  # enabled, but the cluster lacks the APIs
    assert not find(docs, "PodMonitor") and not find(docs, "PrometheusRule")


def test_pod_monitor_scrapes_the_injected_sidecars_admin_port(all_options_docs: Docs) -> None:
    pm = one(all_options_docs, "PodMonitor")
    assert pm["apiVersion"] == "monitoring.coreos.com/v1"
    assert pm["metadata"]["labels"]["release"] == "prometheus"
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    assert pm["spec"]["selector"] == {"matchLabels": {"echelon.dev/scrape": "true"}}
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == ADMIN_PORT_NAME and endpoint["path"] == "/metrics"
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("15s", "5s")
    assert endpoint["relabelings"] == [{
        "sourceLabels": ["__meta_kubernetes_pod_container_name"], "action": "keep",
        "regex": SIDECAR_CONTAINER}]


def test_pod_monitor_watches_every_namespace_when_the_operator_does() -> None:
    docs = render(sets={"metrics.podMonitor.enabled": True}, api_versions=MONITORING_APIS)
    pm = one(docs, "PodMonitor")
    assert pm["spec"]["namespaceSelector"] == {"any": True}
    assert pm["spec"]["selector"] == {}


def _exposed_metrics() -> dict[str, set[str]]:
    """Sample name -> label names, of every metric the sidecar exposes."""
    from echelon_sidecar.server.metrics import Metrics

    metrics = Metrics()
    out: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        name = getattr(value, "_name", None)
        if name is None or not hasattr(value, "_labelnames"):
            continue
        kind = getattr(value, "_type", "")
        sample = f"{name}_total" if kind == "counter" else name
        out[sample] = set(value._labelnames)
    return out


def test_alerts_use_the_sidecars_metric_and_label_names(all_options_docs: Docs) -> None:
    rule = one(all_options_docs, "PrometheusRule")
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert [r["alert"] for r in rules] == [
        "EchelonCircuitOpen", "EchelonFallbackSuccessRateLow", "EchelonPoolNoHealthyInstance",
        "EchelonConfigReloadFailing"]  # operatorDown: false
    exposed = _exposed_metrics()
    for r in rules:
        for metric, selector in re.findall(r"(echelon_[a-z_]+)(?:\{([^}]*)\})?", r["expr"]):
            assert metric in exposed, f"{r['alert']}: {metric} is not a sidecar metric"
            for label in re.findall(r"(\w+)\s*=", selector or ""):
                assert label in exposed[metric], f"{r['alert']}: {metric} has no {label}"
        for label in re.findall(r"by \(([^)]*)\)", r["expr"]):
            names = {n.strip() for n in label.split(",")} - {"namespace", "pod"}
            metric = re.search(r"echelon_[a-z_]+", r["expr"]).group(0)  # type: ignore[union-attr]
            assert names <= exposed[metric], f"{r['alert']}: by ({label})"
        assert r["annotations"]["runbook_url"].startswith("https://runbooks.invalid/")
        assert r["labels"]["severity"] == "critical"
    by_name = {r["alert"]: r for r in rules}
    assert 'echelon_circuit_state{state="open"}' in by_name["EchelonCircuitOpen"]["expr"]
    assert by_name["EchelonCircuitOpen"]["for"] == "10m"
    assert "< 0.8" in by_name["EchelonFallbackSuccessRateLow"]["expr"]
    assert 'result="failure"' in by_name["EchelonConfigReloadFailing"]["expr"]


def test_every_alert_has_a_runbook_in_the_chart_readme() -> None:
    docs = render(sets={"metrics.prometheusRule.enabled": True}, api_versions=MONITORING_APIS)
    rule = one(docs, "PrometheusRule")
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert "EchelonOperatorDown" in alerts
    readme = (CHART / "README.md").read_text()
    for alert in alerts:
        assert re.search(rf"^#+ {alert}$", readme, re.M), f"no runbook section for {alert}"
        assert "runbook_url" not in json.dumps(rule)  # runbookUrl "" = no annotation


# -- helm test -----------------------------------------------------------------------------------


def test_helm_test_pod_fetches_the_operators_health_endpoint(default_docs: Docs) -> None:
    pod = one(default_docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "busybox:1.36"
    assert container["command"][0] == "wget"
    assert container["command"][-1] == "http://echelon.echelon-system.svc:8081/healthz"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_rendered_images_are_plain_names_without_a_registry_host(default_docs: Docs) -> None:
    images = [c["image"] for d in default_docs if d["kind"] in ("Deployment", "Pod")
              for c in (d["spec"].get("template", d)["spec"]["containers"])]
    images.append(container_env(one(default_docs, "Deployment"))["ECHELON_SIDECAR_IMAGE"])
    assert sorted(images) == ["busybox:1.36", "echelon-operator:0.1.0", "echelon-sidecar:0.1.0"]


def test_sidecar_env_reaches_the_operator_as_json(all_options_docs: Docs,
                                                   default_docs: Docs) -> None:
    env = container_env(one(all_options_docs, "Deployment"))
    assert json.loads(env["ECHELON_SIDECAR_ENV"]) == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
        "OTEL_SERVICE_NAME": "echelon-sidecar"}
    assert "ECHELON_SIDECAR_ENV" not in container_env(one(default_docs, "Deployment"))


def test_sidecar_mode_reaches_the_operator(all_options_docs: Docs, default_docs: Docs) -> None:
    assert container_env(one(default_docs, "Deployment"))["ECHELON_SIDECAR_MODE"] == "auto"
    assert container_env(one(all_options_docs, "Deployment"))["ECHELON_SIDECAR_MODE"] == "native"
