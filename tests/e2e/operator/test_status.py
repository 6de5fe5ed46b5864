"""Circuit state from the sidecars' /v1/status reaches `kubectl get tg/pp` and Events."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from ..cluster import Cluster
from ..podspec import sidecar_of
from .conftest import apply, condition, events, free_port, get, play_kubelet, wait_for
from .manifests import deployment, global_config, polling_pool, task_group
from .sidecars import StatusServer, fake_provider, http_json, real_sidecar

INTERVAL = 2.0  # the operator's --poll-interval in these tests
KUBECTL_SLACK = 1.5  # one `kubectl get` round trip on a loaded machine


def open_column(k8s: Cluster, namespace: str, kind: str, name: str) -> str:
    row = k8s.kubectl("get", kind, name, "-n", namespace, "--no-headers").stdout.split()
    return row[3] if kind == "tg" else row[4]


def test_open_circuits_show_within_two_polls_and_recovery_too(
    k8s: Cluster, namespace: str, operator
) -> None:
    models = ["m-openai", "m-claude"]
    with StatusServer([("g", m) for m in models]) as sidecar:
        operator("--admin-port", str(sidecar.port), "--poll-interval", str(INTERVAL))
        apply(k8s, namespace, global_config(), task_group("g", models=models),
              polling_pool("p", ["g"]), deployment("app", pool="p", replicas=2))
        wait_for(lambda: len(k8s.kubectl_json(
            "get", "pods", "-n", namespace, "-l", "app=app")["items"]) >= 2, what="2 pods")

        # the pods of the injected template carry the sidecar; play kubelet for them
        def started() -> bool:
            pods = k8s.kubectl_json("get", "pods", "-n", namespace, "-l", "app=app")["items"]
            with_sidecar = [p for p in pods if sidecar_of(p["spec"]) is not None]
            play_kubelet(k8s, namespace, "app=app")
            return len(with_sidecar) >= 2

        wait_for(started, what="2 pods with the sidecar")
        wait_for(lambda: (get(k8s, namespace, "pollingpool", "p")["status"]
                          .get("sidecarsReady", 0) >= 2), what="2 sidecars polled")
        assert open_column(k8s, namespace, "tg", "g") == "0/2"

        sidecar.set_state("g", "m-claude", "open")
        flipped = time.monotonic()
        wait_for(lambda: open_column(k8s, namespace, "tg", "g") == "1/2",
                 timeout=2 * INTERVAL + KUBECTL_SLACK, interval=0.1,
                 what="kubectl get tg showing 1/2 open within two polling intervals")
        seen_after = time.monotonic() - flipped
        assert open_column(k8s, namespace, "pp", "p") == "1/2"
        group = get(k8s, namespace, "taskgroup", "g")
        claude = next(i for i in group["status"]["instances"] if i["model"] == "m-claude")
        assert (claude["open"], claude["closed"], claude["lastError"]) == (2, 0, "http_503")
        assert condition(group, "Degraded")["status"] == "True"
        pool = get(k8s, namespace, "pollingpool", "p")
        assert condition(pool, "Degraded")["reason"] == "CircuitsOpen"
        for name in ("p", "g"):
            opened = wait_for(lambda n=name: events(k8s, namespace, n, "CircuitOpened"),
                              what=f"CircuitOpened on {name}")
            assert opened[0]["type"] == "Warning"
            assert "g/m-claude: circuit open on 2/2 sidecar(s)" in opened[0]["message"]

        sidecar.set_state("g", "m-claude", "half_open")
        wait_for(lambda: events(k8s, namespace, "p", "CircuitHalfOpen"),
                 timeout=2 * INTERVAL + KUBECTL_SLACK, what="CircuitHalfOpen on p")
        sidecar.set_state("g", "m-claude", "closed")
        wait_for(lambda: open_column(k8s, namespace, "tg", "g") == "0/2",
                 timeout=2 * INTERVAL + KUBECTL_SLACK, interval=0.1, what="recovery in tg")
        for name in ("p", "g"):
            closed = wait_for(lambda n=name: events(k8s, namespace, n, "CircuitClosed"),
                              what=f"CircuitClosed on {name}")
            assert closed[0]["type"] == "Normal"
        assert condition(get(k8s, namespace, "taskgroup", "g"), "Degraded")["status"] == "False"
        print(f"open circuit visible in kubectl {seen_after:.2f}s after the sidecar reported it")


def test_status_is_written_only_when_something_changed(
    k8s: Cluster, namespace: str, operator
) -> None:
    with StatusServer([("g", "m-openai")]) as sidecar:
        operator("--admin-port", str(sidecar.port), "--poll-interval", "0.5")
        apply(k8s, namespace, global_config(), task_group("g", models=["m-openai"]),
              polling_pool("p", ["g"]), deployment("app", pool="p"))

        def polled() -> bool:
            play_kubelet(k8s, namespace, "app=app")
            pool = get(k8s, namespace, "pollingpool", "p")
            return (pool["status"].get("sidecarsReady") or 0) >= 1

        wait_for(polled, what="the sidecar polled")
        before = sidecar.requests
        versions = {get(k8s, namespace, kind, name)["metadata"]["resourceVersion"]
                    for kind, name in (("pollingpool", "p"), ("taskgroup", "g"))}
        wait_for(lambda: sidecar.requests >= before + 4, what="four more polls")
        after = {get(k8s, namespace, kind, name)["metadata"]["resourceVersion"]
                 for kind, name in (("pollingpool", "p"), ("taskgroup", "g"))}
        assert after == versions


def test_a_real_sidecar_whose_upstream_fails_opens_the_circuit_in_kubectl(
    k8s: Cluster, namespace: str, operator, tmp_path: Path
) -> None:
    admin, data = free_port(), free_port()
    with fake_provider(tmp_path) as upstream:
        models = {"m-openai": {"provider": "openai", "model": "gpt-4o",
                               "base_url": f"http://127.0.0.1:{upstream}/v1",
                               "api_key_secret": {"name": "llm", "key": "openai"}}}
        operator("--admin-port", str(admin), "--poll-interval", str(INTERVAL))
        breaker = {"failureThreshold": 1, "recoveryTime": 8, "halfOpenRequests": 1}
        apply(k8s, namespace, global_config(models),
              task_group("g", models=["m-openai"],
                         fallbackConfig={"maxAttempts": 1, "circuitBreaker": breaker}),
              polling_pool("p", ["g"]), deployment("app", pool="p"))
        cm = wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-p"),
                      what="p's ConfigMap")
        config_dir = tmp_path / "etc-echelon"
        config_dir.mkdir()
        (config_dir / "config.yaml").write_text(cm["data"]["config.yaml"])
        assert yaml.safe_load(cm["data"]["config.yaml"])["models"]["m-openai"]["api_key_env"] == (
            "ECHELON_KEY_M_OPENAI")
        env = {"ECHELON_KEY_M_OPENAI": "sk-fake"}
        with real_sidecar(config_dir, "p", data, admin, env, tmp_path / "sidecar.log"):
            def running() -> bool:
                play_kubelet(k8s, namespace, "app=app")
                status = get(k8s, namespace, "pollingpool", "p")["status"]
                return (status.get("sidecarsReady") or 0) >= 1

            wait_for(running, timeout=60, what="the real sidecar polled and ready")
            assert open_column(k8s, namespace, "tg", "g") == "0/1"

            http_json(f"http://127.0.0.1:{upstream}/_fake/faults",
                      {"model": "gpt-4o", "fault": "503"})
            code, _ = http_json(f"http://127.0.0.1:{data}/v1/chat/completions",
                                {"model": "g", "messages": [{"role": "user", "content": "hi"}]})
            assert code >= 500

            def sidecar_says_open() -> bool:
                _, doc = http_json(f"http://127.0.0.1:{admin}/v1/status")
                return any(i["state"] == "open" for i in doc["instances"])

            wait_for(sidecar_says_open, timeout=10, what="the sidecar's breaker open")
            wait_for(lambda: open_column(k8s, namespace, "tg", "g") == "1/1",
                     timeout=2 * INTERVAL + KUBECTL_SLACK, interval=0.1,
                     what="kubectl get tg showing the open circuit within two polls")
            wait_for(lambda: events(k8s, namespace, "g", "CircuitOpened"),
                     what="CircuitOpened on the group")

            # recovery: the upstream heals, the breaker's probe succeeds
            http_json(f"http://127.0.0.1:{upstream}/_fake/faults", method="DELETE")

            def healed() -> bool:
                code, _ = http_json(f"http://127.0.0.1:{data}/v1/chat/completions",
                                    {"model": "g",
                                     "messages": [{"role": "user", "content": "hi"}]})
                return code == 200

            wait_for(healed, timeout=30, interval=0.5, what="a successful call after recovery")
            wait_for(lambda: open_column(k8s, namespace, "tg", "g") == "0/1",
                     timeout=2 * INTERVAL + KUBECTL_SLACK, interval=0.1,
                     what="kubectl get tg showing the recovery")
            wait_for(lambda: events(k8s, namespace, "g", "CircuitClosed"),
                     what="CircuitClosed on the group")
