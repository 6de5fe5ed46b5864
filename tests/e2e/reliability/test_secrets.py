"""A known fake credential, used by a real sidecar for real traffic (served and failing, with
upstreams that echo the key back), never appears in anything the cluster or the processes
show: ConfigMaps, TaskGroup / PollingPool status, Events, Deployments, the operator's and the
sidecar's logs, the sidecar's metrics and status."""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path

import yaml

from ..cluster import Cluster
from ..operator.conftest import apply, events, free_port, get, play_kubelet, wait_for
from ..operator.manifests import deployment, global_config, polling_pool, task_group
from ..operator.sidecars import fake_provider, http_json, real_sidecar
from .conftest import Operator, must_get

KEY = "sk-echelon-e2e-canary-4f3e2d1c0b9a8776"
SCANNED = ("configmaps", "taskgroups", "pollingpools", "events", "deployments", "pods",
           "replicasets", "serviceaccounts")


def _forms(key: str) -> list[str]:
    """The key, a distinctive part of it, and its base64 (as a Secret would hold it)."""
    return [key, key[10:], base64.b64encode(key.encode()).decode()]


def _leaks(text: str) -> list[str]:
    return [form for form in _forms(KEY) if form in text]


def test_a_known_key_appears_in_no_configmap_status_event_log_or_metric(
    k8s: Cluster, namespace: str, operator: Operator, tmp_path: Path
) -> None:
    admin, data = free_port(), free_port()
    k8s.kubectl("create", "secret", "generic", "llm", "-n", namespace,
                f"--from-literal=openai={KEY}")
    with fake_provider(tmp_path) as upstream:
        code, settings = http_json(f"http://127.0.0.1:{upstream}/_fake/settings",
                                   {"api_key": KEY})
        assert code == 200 and settings["api_key_set"], settings
        base = f"http://127.0.0.1:{upstream}/v1"
        models = {name: {"provider": "openai", "model": name, "base_url": base,
                         "api_key_secret": {"name": "llm", "key": "openai"}}
                  for name in ("m-good", "m-bad")}
        op = operator("--admin-port", str(admin), "--poll-interval", "1")
        breaker = {"failureThreshold": 1, "recoveryTime": 60, "halfOpenRequests": 1}
        apply(k8s, namespace, global_config(models),
              task_group("g", models=["m-bad", "m-good"],
                         fallbackConfig={"maxAttempts": 2, "circuitBreaker": breaker}),
              polling_pool("p", ["g"]), deployment("app", pool="p"))
        cm = wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-p"),
                      what="p's ConfigMap")
        config_dir = tmp_path / "etc-echelon"
        config_dir.mkdir()
        (config_dir / "config.yaml").write_text(cm["data"]["config.yaml"])
        env_name = yaml.safe_load(cm["data"]["config.yaml"])["models"]["m-good"]["api_key_env"]
        sidecar_log = tmp_path / "sidecar.log"
        with real_sidecar(config_dir, "p", data, admin, {env_name: KEY}, sidecar_log):
            def running() -> bool:
                play_kubelet(k8s, namespace, "app=app")
                status = must_get(k8s, namespace, "pollingpool", "p")["status"]
                return (status.get("sidecarsReady") or 0) >= 1

            wait_for(running, timeout=60, what="the real sidecar polled and ready")
            # upstream failures that echo the key: a 500 and a 401 naming it
            http_json(f"http://127.0.0.1:{upstream}/_fake/faults",
                      {"model": "m-bad", "fault": f"500:message=internal error for {KEY}"})
            body = {"model": "g", "messages": [{"role": "user", "content": "hi"}]}
            code, answer = http_json(f"http://127.0.0.1:{data}/v1/chat/completions", body)
            assert code == 200, answer
            assert answer["choices"][0]["message"]["content"].startswith("[fake:m-good]"), \
                "the sidecar sent the right key (the fake requires it)"
            http_json(f"http://127.0.0.1:{upstream}/_fake/faults",
                      {"model": "m-good", "fault": f"401:message=Incorrect API key: {KEY}"})
            code, answer = http_json(f"http://127.0.0.1:{data}/v1/chat/completions",
                                     {**body, "model": "p"})
            assert code >= 400
            assert not _leaks(json.dumps(answer)), "the caller's error body"
            wait_for(lambda: events(k8s, namespace, "g", "CircuitOpened"),
                     what="circuit events on the group")
            wait_for(lambda: (must_get(k8s, namespace, "taskgroup", "g")["status"]
                              .get("openCircuits") == "2/2"), what="both circuits in status")
            _, metrics_status = http_json(f"http://127.0.0.1:{admin}/v1/status")
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics",
                                        timeout=10) as resp:
                metrics = resp.read().decode()
        op.stop()
    found = {}
    for kind in SCANNED:
        text = k8s.kubectl("get", kind, "-n", namespace, "-o", "json").stdout
        if _leaks(text):
            found[kind] = _leaks(text)
    sources = {"operator log": op.log_text(), "sidecar log": sidecar_log.read_text(),
               "sidecar /metrics": metrics, "sidecar /v1/status": json.dumps(metrics_status)}
    for name, text in sources.items():
        if _leaks(text):
            found[name] = _leaks(text)
    assert "echelon-sidecar" in json.dumps(get(k8s, namespace, "deployment", "app"))
    assert not found, f"the key leaked into {found}"
