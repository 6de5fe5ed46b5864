"""Fixtures for the operator's e2e tests (on top of tests/e2e/conftest.py's ``k8s``/``namespace``).

- ``crds`` (session): the Echelon CRDs applied once (idempotent: ``kubectl apply``), Established.
- ``operator``: a factory starting ``echelon-operator --namespace <ns> ...`` as a subprocess
  with the cluster's KUBECONFIG, loopback-only liveness on a free port; every process is
  stopped (SIGTERM, then SIGKILL after a bound) at the end of the test. Its log is printed
  when a test fails.
- helpers: ``wait_for`` (poll until true, with a deadline), ``free_port``, ``apply``,
  ``play_kubelet`` (set Pods Running with podIP 127.0.0.1, as a kubelet would).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ..cluster import REPO_ROOT, Cluster

T = TypeVar("T")
OPERATOR_BIN = Path(sys.executable).with_name("echelon-operator")
SAMPLES = REPO_ROOT / "configs" / "k8s"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    probe: Callable[[], T | bool | None],
    *,
    timeout: float = 30,
    interval: float = 0.25,
    what: str = "condition",
) -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except Exception as exc:  # a transient API error is just "not yet"
            last = exc
        else:
            if last:
                return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def apply(k8s: Cluster, namespace: str, *objs: dict[str, Any] | str | Path,
          check: bool = True) -> subprocess.CompletedProcess[str]:
    """``kubectl apply -n NS`` of manifests (dicts), a YAML string, or a file/dir path."""
    if len(objs) == 1 and isinstance(objs[0], Path):
        return k8s.kubectl("apply", "-n", namespace, "-f", str(objs[0]), check=check)
    if len(objs) == 1 and isinstance(objs[0], str):
        return k8s.kubectl("apply", "-n", namespace, "-f", "-", input=objs[0], check=check)
    return k8s.kubectl("apply", "-n", namespace, "-f", "-",
                       input={"apiVersion": "v1", "kind": "List", "items": list(objs)},
                       check=check)


def get(k8s: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    proc = k8s.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if proc.returncode != 0:
        if "NotFound" in proc.stderr or "not found" in proc.stderr:
            return None
        raise RuntimeError(proc.stderr)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    if not obj:
        return None
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c.get("type") == type_), None)


def events(k8s: Cluster, namespace: str, name: str, reason: str | None = None
           ) -> list[dict[str, Any]]:
    items = k8s.kubectl_json("get", "events", "-n", namespace)["items"]
    return [e for e in items if e["involvedObject"].get("name") == name
            and (reason is None or e.get("reason") == reason)]


def play_kubelet(k8s: Cluster, namespace: str, selector: str) -> list[str]:
    """Mark every Pending pod matching ``selector`` Running with podIP 127.0.0.1."""
    pods = k8s.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
    started = []
    for pod in pods:
        if (pod.get("status") or {}).get("phase") == "Running":
            continue
        status = {"status": {"phase": "Running", "podIP": "127.0.0.1",
                             "podIPs": [{"ip": "127.0.0.1"}],
                             "conditions": [{"type": "Ready", "status": "True"}]}}
        k8s.kubectl("patch", "pod", pod["metadata"]["name"], "-n", namespace,
                    "--subresource=status", "--type=merge", "-p", json.dumps(status))
        started.append(pod["metadata"]["name"])
    return started


@dataclass
class OperatorProcess:
    """One ``echelon-operator`` subprocess."""

    k8s: Cluster
    args: list[str]
    log_path: Path
    env: dict[str, str]
    liveness_port: int
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self, timeout: float = 30) -> OperatorProcess:
        assert self.proc is None, "already running"
        log = self.log_path.with_suffix(f".{len(self.logs)}.log")
        self.logs.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(OPERATOR_BIN), *self.args], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self.env, cwd=REPO_ROOT,
            )

        def alive() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"echelon-operator exited with {self.proc.returncode}:\n"
                            + self.log_tail())
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_for(alive, timeout=timeout, what="the operator's liveness endpoint")
        return self

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def restart(self) -> OperatorProcess:
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 60) -> str:
        text = "".join(p.read_text(errors="replace") for p in self.logs if p.exists())
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())


@pytest.fixture
def operator(k8s: Cluster, crds: None, namespace: str, tmp_path: Path,
             request: pytest.FixtureRequest) -> Iterator[Callable[..., OperatorProcess]]:
    """``operator(*extra_args, namespaces=[namespace], start=True)`` -> a running operator."""
    started: list[OperatorProcess] = []

    def factory(*extra: str, namespaces: list[str] | None = None,
                start: bool = True) -> OperatorProcess:
        port = free_port()
        args = [a for ns in (namespaces or [namespace]) for a in ("--namespace", ns)]
        args += ["--liveness", f"http://127.0.0.1:{port}/healthz", "--log-level", "INFO",
                 "--poll-interval", "1", "--poll-timeout", "1", *extra]
        env = dict(k8s.env)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        env["PYTHONUNBUFFERED"] = "1"
        op = OperatorProcess(k8s, args, tmp_path / f"operator{len(started)}", env, port)
        started.append(op)
        return op.start() if start else op

    yield factory
    failed = getattr(request.node, "rep_call", None)
    for op in started:
        op.stop()
        if failed is not None and failed.failed:
            sys.stderr.write(f"\n---- echelon-operator log ({' '.join(op.args)})\n"
                             + op.log_tail(200) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
