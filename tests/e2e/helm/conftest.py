"""Fixtures of the chart's e2e tests (on top of tests/e2e/conftest.py's ``k8s``/``namespace``).

- ``echelon_crds`` (session): the CRDs exist and are Established (``kubectl apply -f crds/``,
  idempotent). CRDs are cluster-scoped and shared with the other e2e tests of the session, so
  releases install with ``crds.install=false`` unless a test takes the CRDs over on purpose
  (``--take-ownership``, always with ``crds.keep=true``: no test may delete them).
- ``app_namespace``: a second fresh namespace, the one the operator watches.
- ``chart``: a :class:`Chart` for the test's namespace: ``install``/``upgrade``/``uninstall``
  with the cluster's admin kubeconfig and a private helm home; every release it installed is
  uninstalled at the end.
- ``run_operator(release)``: the operator as a local subprocess, with the env and args of the
  Deployment the chart installed (liveness moved to a free loopback port) and authenticated
  as the chart's ServiceAccount (its token Secret, Kubernetes 1.20 style), so the chart's
  RBAC is what it runs with.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from ...unit.chart.helm import CHART, helm, template_args
from ..cluster import Cluster
from ..operator.conftest import OperatorProcess, free_port, get

EXAMPLE_CATALOG = CHART / "examples" / "sample-catalog-values.yaml"
CRD_NAMES = ("taskgroups.echelon.dev", "pollingpools.echelon.dev")


@pytest.fixture(scope="session")
def echelon_crds(crds: None) -> None:
    """The shared CRDs (see tests/e2e/conftest.py)."""


@pytest.fixture
def app_namespace(k8s: Cluster) -> Iterator[str]:
    name = f"e2e-app-{uuid.uuid4().hex[:8]}"
    k8s.kubectl("create", "-f", "-", input={
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"echelon.dev/e2e": "true"}}})
    try:
        yield name
    finally:
        k8s.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@dataclass
class Release:
    name: str
    namespace: str


@dataclass
class Chart:
    """helm against the test cluster, for releases in ``namespace``."""

    k8s: Cluster
    namespace: str
    home: Path
    installed: list[Release] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = dict(self.k8s.env)
        env.update(HELM_CONFIG_HOME=str(self.home / "config"),
                   HELM_CACHE_HOME=str(self.home / "cache"),
                   HELM_DATA_HOME=str(self.home / "data"))
        return env

    def helm(self, *args: str, check: bool = True) -> Any:
        return helm(*args, "--kubeconfig", str(self.k8s.kubeconfig), env=self.env, check=check)

    def install(self, *extra: str, release: str = "echelon", values: tuple[Path, ...] = (),
                sets: dict[str, Any] | None = None) -> Release:
        args = template_args(values=values, sets={"crds.install": False, **(sets or {})},
                             namespace=self.namespace, release=release)
        self.helm("install", *args, *extra)
        rel = Release(release, self.namespace)
        self.installed.append(rel)
        return rel

    def upgrade(self, release: Release, *extra: str, sets: dict[str, Any] | None = None) -> None:
        args = template_args(sets=sets, namespace=release.namespace, release=release.name)
        self.helm("upgrade", *args, "--reuse-values", *extra)

    def uninstall(self, release: Release) -> str:
        out = self.helm("uninstall", release.name, "--namespace", release.namespace)
        self.installed.remove(release)
        return str(out.stdout)

    def deployment(self, release: Release) -> dict[str, Any]:
        dep = get(self.k8s, release.namespace, "deployment", release.name)
        assert dep is not None, f"no Deployment {release.name} in {release.namespace}"
        return dep


@pytest.fixture
def chart(k8s: Cluster, echelon_crds: None, namespace: str, tmp_path: Path) -> Iterator[Chart]:
    c = Chart(k8s, namespace, tmp_path / "helm-home")
    yield c
    for release in list(c.installed):
        c.helm("uninstall", release.name, "--namespace", release.namespace, check=False)


def operator_command(deployment: dict[str, Any]) -> tuple[list[str], dict[str, str], str]:
    """(args, env, ServiceAccount) of the operator container the chart installed."""
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "command" not in container, "the image's ENTRYPOINT (echelon-operator) runs"
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    return list(container.get("args", [])), env, pod["serviceAccountName"]


@pytest.fixture
def run_operator(k8s: Cluster, chart: Chart, tmp_path: Path, request: pytest.FixtureRequest
                 ) -> Iterator[Callable[[Release], OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(release: Release) -> OperatorProcess:
        args, rendered_env, account = operator_command(chart.deployment(release))
        port = free_port()
        env = dict(k8s.env)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        env.update(rendered_env)
        env["ECHELON_LIVENESS"] = f"http://127.0.0.1:{port}/healthz"  # loopback in tests
        env["KUBECONFIG"] = str(k8s.service_account_kubeconfig(
            release.namespace, account, tmp_path / f"{account}.kubeconfig"))
        op = OperatorProcess(k8s, args, tmp_path / f"operator{len(started)}", env, port)
        started.append(op)
        return op.start()

    yield start
    report = getattr(request.node, "rep_call", None)
    for op in started:
        op.stop()
        if report is not None and report.failed:
            sys.stderr.write(f"\n---- echelon-operator log\n{op.log_tail(200)}\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


def hooks(chart: Chart, release: Release) -> list[dict[str, Any]]:
    """The release's hook manifests (the `helm test` pod)."""
    out = chart.helm("get", "hooks", release.name, "--namespace", release.namespace).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
