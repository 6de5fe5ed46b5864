"""Fixtures for the e2e tests: a real Kubernetes API server and a namespace per test.

- ``k8s`` (session): a :class:`~.cluster.Cluster` — ``kubeconfig``, ``env``,
  ``kubectl(*args, input=None, check=True)``, ``kubectl_json(*args)``, ``api_client()``.
  It is the cluster of ``ECHELON_KUBECONFIG`` when that is set, else a local control plane
  started by ``scripts/local-k8s`` once per test run (also under pytest-xdist) and
  stopped when the run ends. ``ECHELON_E2E=0`` skips the e2e tests; any other failure
  to build or start the cluster fails them.
- ``namespace`` (function): a fresh ``e2e-<8 hex>`` namespace, deleted afterwards.

Every test under tests/e2e gets the ``e2e`` marker.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import (
    CRD_DIR,
    ENV_E2E,
    ENV_KUBECONFIG,
    Cluster,
    ClusterError,
    KubectlError,
    LocalClusterRun,
)
from .own_cluster import OwnCluster

E2E_DIR = Path(__file__).resolve().parent
SKIP_REASON = (
    f"{ENV_E2E}=0: e2e tests need a Kubernetes API server (scripts/local-k8s, or "
    f"{ENV_KUBECONFIG}=<kubeconfig>); unset {ENV_E2E} to run them"
)


def _e2e_disabled() -> bool:
    return os.environ.get(ENV_E2E, "").strip() == "0"


def _uses_local_cluster() -> bool:
    return not _e2e_disabled() and not os.environ.get(ENV_KUBECONFIG)


def _is_e2e(item: pytest.Item) -> bool:
    return E2E_DIR in Path(item.path).resolve().parents


def _local_run(config: pytest.Config) -> LocalClusterRun:
    """The run's shared local cluster. Under xdist every worker's base temp dir is
    ``<run's base temp>/<worker id>``, so the parent is shared by the whole run."""
    basetemp: Path = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return LocalClusterRun(
            basetemp.parent, workers=int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        )
    # a plain run, or the xdist controller (its session ends after every worker's)
    return LocalClusterRun(basetemp, workers=1)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselection looks at the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_e2e(item):
            item.add_marker(pytest.mark.e2e)
            if _e2e_disabled():
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def pytest_collection_finish(session: pytest.Session) -> None:
    # Build (or find cached) binaries here, outside any test's timeout: the first build
    # takes minutes. A failure is recorded and reported by the `k8s` fixture.
    if session.config.option.collectonly or not _uses_local_cluster():
        return
    if any(_is_e2e(item) for item in session.items):
        try:
            _local_run(session.config).build()
        except ClusterError:
            pass


@pytest.hookimpl(trylast=True)  # after session fixtures are torn down
def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.config.option.collectonly or not _uses_local_cluster():
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "controller")
    _local_run(session.config).finish(worker)


@pytest.fixture(scope="session")
def k8s(request: pytest.FixtureRequest) -> Cluster:
    """The Kubernetes cluster of this test run (see the module docstring)."""
    if _e2e_disabled():
        pytest.skip(SKIP_REASON)
    existing = os.environ.get(ENV_KUBECONFIG)
    try:
        if existing:
            cluster = Cluster.from_kubeconfig(existing)
            cluster.wait_ready()
        else:
            cluster = _local_run(request.config).start()
        return cluster
    except ClusterError as exc:
        error = exc
    source = f"{ENV_KUBECONFIG}={existing}" if existing else "scripts/local-k8s"
    pytest.fail(f"no Kubernetes cluster for the e2e tests ({source}): {error}", pytrace=False)


@pytest.fixture
def namespace(k8s: Cluster) -> Iterator[str]:
    """A fresh namespace ``e2e-<8 hex>`` (labelled ``echelon.dev/e2e=true``) whose
    ``default`` ServiceAccount exists; deleted afterwards without waiting."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    k8s.kubectl(
        "create",
        "-f",
        "-",
        input={
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"echelon.dev/e2e": "true"}},
        },
    )
    try:
        # Pods are refused until the namespace's default ServiceAccount exists.
        k8s.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
        yield name
    finally:
        try:
            k8s.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")
        except KubectlError as exc:
            pytest.fail(f"could not delete namespace {name}: {exc}", pytrace=False)


def apply_crds(k8s: Cluster, folder: Path, names: tuple[str, ...]) -> None:
    """``kubectl apply -f folder`` (idempotent), then wait until ``names`` are Established.

    Two xdist workers applying them at the same moment can both try to create them: the
    loser's apply fails with AlreadyExists once, and applying again patches.
    """
    for attempt in range(5):
        proc = k8s.kubectl("apply", "-f", str(folder), check=False)
        if proc.returncode == 0:
            break
        if "AlreadyExists" not in proc.stderr or attempt == 4:
            pytest.fail(f"kubectl apply -f {folder}: {proc.stderr}", pytrace=False)
        time.sleep(0.2)
    k8s.wait_established(*names)


@pytest.fixture(scope="session")
def crds(k8s: Cluster) -> None:
    """The Echelon CRDs from ``crds/`` (``crds/pre-1.25/`` on older servers: they refuse
    admission rules), applied and Established, once per worker."""
    apply_crds(k8s, k8s.crd_dir(), ("taskgroups.echelon.dev", "pollingpools.echelon.dev"))


@pytest.fixture
def own_cluster(tmp_path: Path, k8s: Cluster) -> Iterator[OwnCluster]:
    """A control plane of this test's own (``scripts/local-k8s up --dir``), stopped after."""
    if not k8s.local:
        pytest.skip("a control plane of the test's own needs scripts/local-k8s")
    cluster = OwnCluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def peering_crds(k8s: Cluster) -> None:
    """kopf's peering CRDs (crds/peering/), applied and Established."""
    apply_crds(k8s, CRD_DIR / "peering", ("kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"))
