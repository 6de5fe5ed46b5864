"""Reconcile benchmark of the operator: `kubectl apply` -> ConfigMaps right, and operator RSS.

    python -m bench.operator_bench --groups 1,100,1000 [--modes one-pool,pools]
                                   [--kubeconfig PATH] [--json-indent 2]

For each N and mode, in a fresh namespace with its own ``echelon-operator`` process:

- ``one-pool``: N TaskGroups and one PollingPool referencing all of them;
- ``pools``: N TaskGroups and N PollingPools (one group each).

It measures the time from the start of ``kubectl apply`` until every pool's ConfigMap holds
the expected config (``configmaps_right_s``; ``apply_s`` of it is kubectl itself,
``after_apply_s`` the rest), how long the follow-up work (group statuses, the first status
polls) takes until the operator is idle (``settled_after_s``), then the time for one TaskGroup
edit to reach the ConfigMap(s) (``edit_rerender_s``), the operator's RSS (idle, peak, end) and
CPU time, and the slowest answer of its liveness probe meanwhile (``liveness_probe_max_s``: the
event loop's responsiveness under load).
Results go to stdout as JSON; progress to stderr. Not a test: no thresholds.

Without ``--kubeconfig`` (or ``ECHELON_KUBECONFIG``), a local control plane is started with
``scripts/local-k8s`` and stopped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
BIN = Path(sys.executable).parent
MODELS = {
    "m-openai": {"provider": "openai", "model": "gpt-4o",
                 "api_key_secret": {"name": "llm", "key": "openai"}},
    "m-claude": {"provider": "anthropic", "model": "claude-3-5-sonnet",
                 "api_key_secret": {"name": "llm", "key": "anthropic"}},
}


def log(message: str) -> None:
    sys.stderr.write(f"[operator-bench] {message}\n")
    sys.stderr.flush()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Kubectl:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.bin = os.environ.get("ECHELON_KUBECTL") or shutil.which("kubectl") or "kubectl"

    def __call__(self, *args: str, input: str | None = None, timeout: float = 600,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.bin, "--kubeconfig", str(self.kubeconfig), *args],
                              input=input, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)

    def apply_crds(self) -> None:
        """The Echelon CRDs for this API server, applied and Established: ``crds/`` with
        admission rules from 1.25 on, else ``crds/pre-1.25/`` (older servers refuse the
        rules' ``x-kubernetes-validations`` field)."""
        from echelon_operator.builders.sidecar import parse_server_version
        from echelon_operator.crds import RULES_DIR, RULES_MIN_VERSION

        version = parse_server_version(json.loads(self("get", "--raw", "/version").stdout))
        folder = REPO / "crds"
        self("apply", "-f", str(folder if version >= RULES_MIN_VERSION else folder / RULES_DIR))
        for crd in ("taskgroups.echelon.dev", "pollingpools.echelon.dev"):
            self.established(crd)

    def established(self, crd: str, timeout: float = 60) -> None:
        """kubectl 1.20's ``wait`` fails at once on a CRD without ``status.conditions`` yet
        ("accessor error"): asked again until the CRD is Established or ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            proc = self("wait", "--for=condition=Established", f"crd/{crd}",
                        f"--timeout={max(1, round(deadline - time.monotonic()))}s", check=False)
            if proc.returncode == 0:
                return
            if "accessor error" not in proc.stderr or time.monotonic() > deadline:
                raise RuntimeError(f"kubectl wait crd/{crd}: {proc.stderr.strip()}")
            time.sleep(0.2)


@contextmanager
def cluster(kubeconfig: str | None) -> Iterator[Path]:
    if kubeconfig:
        yield Path(kubeconfig)
        return
    script = REPO / "scripts" / "local-k8s"
    subprocess.run([str(script), "build"], check=True, capture_output=True, timeout=1800)
    state = Path(tempfile.mkdtemp(prefix="echelon-bench-k8s."))
    subprocess.run([str(script), "up", "--dir", str(state)], check=True, capture_output=True,
                   timeout=300)
    try:
        yield state / "kubeconfig"
    finally:
        subprocess.run([str(script), "down", "--dir", str(state)], capture_output=True,
                       timeout=120, check=False)


def task_group(name: str, rpm: int = 60) -> dict[str, Any]:
    return {"apiVersion": "echelon.dev/v1alpha1", "kind": "TaskGroup",
            "metadata": {"name": name},
            "spec": {"echelons": {"echelon1": {"models": ["m-openai", "m-claude"],
                                               "priority": 1, "rpmLimit": rpm}}}}


def polling_pool(name: str, groups: list[str]) -> dict[str, Any]:
    return {"apiVersion": "echelon.dev/v1alpha1", "kind": "PollingPool",
            "metadata": {"name": name}, "spec": {"taskGroups": groups}}


def global_config() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "echelon-global-config",
                         "labels": {"echelon.dev/config": "global"}},
            "data": {"config.yaml": yaml.safe_dump({"models": MODELS})}}


class RssSampler:
    """Samples a process's RSS every 0.2 s, and how long its liveness probe takes to answer,
    in a thread; keeps the peaks."""

    def __init__(self, pid: int, port: int) -> None:
        self.process = psutil.Process(pid)
        self.port = port
        self.peak = 0
        self.probe_max = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            started = time.monotonic()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=30).close()
            except OSError:
                pass
            self.probe_max = max(self.probe_max, time.monotonic() - started)
            self._stop.wait(0.2)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def probe(port: int) -> dict[str, Any]:
    """The operator's own liveness probe (``echelon``: reconciles in flight, last poll)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        return dict(json.loads(resp.read())["echelon"])


@contextmanager
def operator_process(kubeconfig: Path, namespace: str, log_path: Path, port: int
                     ) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "echelon-operator"), "--namespace", namespace, "--log-level", "WARNING",
             "--liveness", f"http://127.0.0.1:{port}/healthz"],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"echelon-operator exited; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("echelon-operator did not become live") from None
                time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def configs(kubectl: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    """pool name -> its rendered config (only the operator's ConfigMaps)."""
    items = kubectl.json("get", "configmaps", "-n", namespace,
                         "-l", "app.kubernetes.io/managed-by=echelon-operator")["items"]
    return {cm["metadata"]["labels"]["echelon.dev/pool"]: yaml.load(
        cm["data"]["config.yaml"], Loader=_LOADER) for cm in items}


def rpm_of(kubectl: Kubectl, namespace: str, pool: str, group: str) -> int | None:
    """The rpm_limit of ``group`` in one pool's ConfigMap (one small read: precise timing)."""
    proc = kubectl("get", "configmap", f"echelon-pool-{pool}", "-n", namespace, "-o", "json",
                   check=False)
    if proc.returncode != 0:
        return None
    cfg = yaml.load(json.loads(proc.stdout)["data"]["config.yaml"], Loader=_LOADER)
    tier = ((cfg.get("task_groups") or {}).get(group) or {}).get("echelons", {}).get("echelon1")
    return tier.get("rpm_limit") if tier else None


def wait_until(check: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout}s: {what}")
        time.sleep(0.25)
    return time.monotonic() - start


def run_case(kubectl: Kubectl, n: int, mode: str, timeout: float, workdir: Path
             ) -> dict[str, Any]:
    namespace = f"bench-{mode}-{n}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(global_config()))
        groups = [f"group-{i:04d}" for i in range(n)]
        if mode == "one-pool":
            pools = {"bench": groups}
        else:
            pools = {f"pool-{i:04d}": [g] for i, g in enumerate(groups)}
        items = [task_group(g) for g in groups] + [polling_pool(p, gs) for p, gs in pools.items()]
        manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})

        def right() -> bool:
            rendered = configs(kubectl, namespace)
            return set(rendered) == set(pools) and all(
                sorted(rendered[pool].get("task_groups", {})) == sorted(gs)
                for pool, gs in pools.items())

        log_path = workdir / f"operator-{namespace}.log"
        port = free_port()
        with operator_process(kubectl.kubeconfig, namespace, log_path, port) as proc, \
                RssSampler(proc.pid, port) as rss:
            process = psutil.Process(proc.pid)
            rss_idle = process.memory_info().rss
            started = time.monotonic()
            kubectl("apply", "-n", namespace, "-f", "-", input=manifest, timeout=timeout)
            applied = time.monotonic() - started
            log(f"{mode} N={n}: applied in {applied:.2f}s; waiting for the ConfigMaps")
            wait_until(right, timeout, f"{mode} N={n}: ConfigMaps right")
            ready = time.monotonic() - started
            log(f"{mode} N={n}: ConfigMaps right after {ready:.2f}s")
            # let the follow-up work (group statuses, the first polls) finish, then time one edit
            converged = time.time()
            settle = wait_until(lambda: (p := probe(port))["reconciling"] == 0
                                and (p["lastPoll"] or 0) > converged, timeout,
                                f"{mode} N={n}: operator idle")
            edited = task_group(groups[-1], rpm=61)
            pool_of_edit = next(p for p, gs in pools.items() if groups[-1] in gs)
            edit_start = time.monotonic()
            kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(edited))
            wait_until(lambda: rpm_of(kubectl, namespace, pool_of_edit, groups[-1]) == 61,
                       timeout, f"{mode} N={n}: edit re-rendered")
            edit = time.monotonic() - edit_start
            cpu = process.cpu_times()
            rss_end = process.memory_info().rss
        return {
            "mode": mode,
            "groups": n,
            "pools": len(pools),
            "apply_s": round(applied, 3),
            "configmaps_right_s": round(ready, 3),
            "after_apply_s": round(ready - applied, 3),
            "settled_after_s": round(settle, 3),
            "edit_rerender_s": round(edit, 3),
            "operator_rss_mb_idle": round(rss_idle / 2**20, 1),
            "operator_rss_mb_peak": round(max(rss.peak, rss_end) / 2**20, 1),
            "operator_rss_mb_end": round(rss_end / 2**20, 1),
            "operator_cpu_s": round(cpu.user + cpu.system, 2),
            "liveness_probe_max_s": round(rss.probe_max, 3),
        }
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator_bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", default="1,100,1000",
                        help="comma-separated TaskGroup counts (default 1,100,1000)")
    parser.add_argument("--modes", default="one-pool,pools",
                        help="one-pool (N groups, one pool) and/or pools (N groups, N pools)")
    parser.add_argument("--kubeconfig", default=os.environ.get("ECHELON_KUBECONFIG"),
                        help="an existing cluster (default: start scripts/local-k8s)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per case")
    parser.add_argument("--json-indent", type=int, default=2)
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.groups.split(",") if x.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in ("one-pool", "pools"):
            parser.error(f"unknown mode {mode!r}")
    results = []
    with tempfile.TemporaryDirectory(prefix="echelon-bench.") as tmp, \
            cluster(args.kubeconfig) as kubeconfig:
        kubectl = Kubectl(kubeconfig)
        kubectl.apply_crds()
        for n in counts:
            for mode in modes:
                results.append(run_case(kubectl, n, mode, args.timeout, Path(tmp)))
    report = {"benchmark": "operator reconcile", "machine": {
        "cpus": os.cpu_count(), "python": sys.version.split()[0]}, "results": results}
    sys.stdout.write(json.dumps(report, indent=args.json_indent or None) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
