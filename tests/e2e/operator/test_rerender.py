"""A TaskGroup edit re-renders every pool that depends on it (directly or via fallback)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from echelon_sidecar.config import load_config_text

from ..cluster import Cluster
from .conftest import apply, free_port, get, wait_for
from .manifests import global_config, polling_pool, task_group


def rpm(k8s: Cluster, namespace: str, pool: str, group: str) -> int | None:
    cm = get(k8s, namespace, "configmap", f"echelon-pool-{pool}")
    if cm is None:
        return None
    cfg = load_config_text(cm["data"]["config.yaml"]).config
    tier = cfg.task_groups[group].echelons["echelon1"] if group in cfg.task_groups else None
    return tier.rpm_limit if tier is not None else None


def test_editing_a_group_re_renders_each_dependent_pool_and_no_other(
    k8s: Cluster, namespace: str, operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(),
          task_group("shared"), task_group("front", fallback=["shared"]), task_group("alone"),
          polling_pool("direct", ["shared"]), polling_pool("via-fallback", ["front"]),
          polling_pool("unrelated", ["alone"]))
    for pool in ("direct", "via-fallback"):
        wait_for(lambda p=pool: rpm(k8s, namespace, p, "shared") == 60,
                 what=f"{pool}'s first render")
    unrelated = wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-unrelated"),
                         what="unrelated's ConfigMap")

    edited = task_group("shared")
    edited["spec"]["echelons"]["echelon1"]["rpmLimit"] = 600
    apply(k8s, namespace, edited)
    for pool in ("direct", "via-fallback"):
        wait_for(lambda p=pool: rpm(k8s, namespace, p, "shared") == 600,
                 what=f"{pool} re-rendered with rpmLimit 600")
    after = get(k8s, namespace, "configmap", "echelon-pool-unrelated")
    assert after["metadata"]["resourceVersion"] == unrelated["metadata"]["resourceVersion"]
    status = get(k8s, namespace, "taskgroup", "shared")["status"]
    assert status["pools"] == ["direct", "via-fallback"]


def test_a_running_sidecar_picks_up_the_re_rendered_config(
    k8s: Cluster, namespace: str, operator, tmp_path: Path
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]))
    first = wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-p"),
                     what="p's ConfigMap")
    config_dir = tmp_path / "etc-echelon"
    config_dir.mkdir()
    (config_dir / "config.yaml").write_text(first["data"]["config.yaml"])
    admin = free_port()
    env = {"ECHELON_KEY_M_OPENAI": "sk-test", "ECHELON_KEY_M_CLAUDE": "sk-test",
           "PATH": str(Path(sys.executable).parent)}
    sidecar = subprocess.Popen(
        [str(Path(sys.executable).with_name("echelon-sidecar")), "--config", str(config_dir),
         "--pool", "p", "--host", "127.0.0.1", "--port", str(free_port()),
         "--admin-host", "127.0.0.1", "--admin-port", str(admin)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        def status() -> dict | None:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/v1/status", timeout=2) as r:
                return json.loads(r.read())

        before = wait_for(status, what="the sidecar's status")
        edited = task_group("g")
        edited["spec"]["echelons"]["echelon1"]["rpmLimit"] = 999
        apply(k8s, namespace, edited)
        second = wait_for(lambda: (cm := get(k8s, namespace, "configmap", "echelon-pool-p"))
                          and cm["data"] != first["data"] and cm, what="the re-rendered ConfigMap")
        # what the kubelet does with a ConfigMap volume, in short: replace the file
        tmp = config_dir / ".config.yaml.new"
        tmp.write_text(second["data"]["config.yaml"])
        tmp.replace(config_dir / "config.yaml")
        version = get(k8s, namespace, "pollingpool", "p")["status"]["configVersion"]
        wait_for(lambda: (s := status()) and s["config_version"] != before["config_version"]
                 and s["reload"]["reloads"] >= 1 and s, what="the sidecar's reload")
        assert status()["config_version"] == version
    finally:
        sidecar.terminate()
        try:
            sidecar.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sidecar.kill()
            sidecar.wait(timeout=5)
