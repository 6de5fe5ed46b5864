"""The Kubernetes cluster the e2e tests run against.

Either an existing cluster (``ECHELON_KUBECONFIG=/path/to/kubeconfig``, e.g. kind's), or
a control plane started by ``scripts/local-k8s`` (etcd + kube-apiserver +
kube-controller-manager on loopback; no kubelet). With pytest-xdist the local control
plane is started once per test run: the first worker that needs it starts it under a
file lock in a directory shared by the run's workers, the others reuse it, and the last
worker to finish its session stops it.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import kubernetes
import urllib3
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "crds"
LOCAL_K8S = REPO_ROOT / "scripts" / "local-k8s"

#: ``0`` skips the e2e tests (with a reason); anything else runs them.
ENV_E2E = "ECHELON_E2E"
#: a kubeconfig of an existing cluster to use instead of starting one.
ENV_KUBECONFIG = "ECHELON_KUBECONFIG"
#: the kubectl binary (default: the cluster's own, ``DIR/kubectl`` of ``scripts/local-k8s up``,
#: else ``kubectl`` on PATH).
ENV_KUBECTL = "ECHELON_KUBECTL"

BUILD_TIMEOUT_S = 30 * 60
UP_TIMEOUT_S = 240
DOWN_TIMEOUT_S = 60


class ClusterError(RuntimeError):
    """The e2e cluster could not be built, started or reached."""


class KubectlError(subprocess.CalledProcessError):
    """A kubectl command failed; the message carries its stderr."""

    def __str__(self) -> str:
        cmd = " ".join(self.cmd) if isinstance(self.cmd, list) else str(self.cmd)
        return (
            f"{cmd} exited with {self.returncode}\n"
            f"stdout: {(self.stdout or '').strip()}\nstderr: {(self.stderr or '').strip()}"
        )


@dataclass(frozen=True)
class Cluster:
    """A reachable Kubernetes API server and how to talk to it.

    ``kubeconfig``: path of an admin kubeconfig. ``env``: ``os.environ`` plus
    ``KUBECONFIG``, for subprocesses (kubectl, helm, the operator). ``local``: True when
    the tests started it (no kubelet: Pods stay Pending unless a test patches status).
    ``netns``: the network namespace the API server listens in (``up --kubelet``): kubectl
    runs inside it (``nsenter --net``), and :meth:`api_client` is not available.
    """

    kubeconfig: Path
    env: dict[str, str] = field(repr=False)
    local: bool = False
    kubectl_bin: str = "kubectl"
    netns: str | None = None

    @property
    def prefix(self) -> list[str]:
        """What runs a command where the API server can be reached (inside ``netns``)."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--"] if self.netns else []

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path | str, *, local: bool = False,
                        netns: str | None = None) -> Cluster:
        path = Path(kubeconfig).resolve()
        if not path.is_file():
            raise ClusterError(f"kubeconfig {path} does not exist")
        env = dict(os.environ)
        env["KUBECONFIG"] = str(path)
        own = path.parent / "kubectl"
        kubectl_bin = os.environ.get(ENV_KUBECTL) or (
            str(own) if os.access(own, os.X_OK) else shutil.which("kubectl"))
        if not kubectl_bin:
            raise ClusterError(f"kubectl not found on PATH (or set {ENV_KUBECTL})")
        return cls(kubeconfig=path, env=env, local=local, kubectl_bin=kubectl_bin, netns=netns)

    def kubectl(
        self,
        *args: str,
        input: str | Mapping[str, Any] | Sequence[Any] | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl ARGS`` against this cluster; text stdout/stderr.

        ``input`` is fed to stdin (a dict or list is sent as JSON, e.g. for ``apply -f -``).
        With ``check`` a non-zero exit raises :class:`KubectlError` showing stderr.
        """
        if input is not None and not isinstance(input, str):
            input = json.dumps(input)
        cmd = [*self.prefix, self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), *args]
        proc = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def wait_established(self, *crds: str, timeout: float = 60) -> None:
        """Until every CRD named is Established. Right after it is created a CRD may have no
        ``status.conditions`` yet, and kubectl 1.20's ``wait`` fails at once on that
        ("accessor error: <nil>") instead of waiting: asked again until ``timeout``."""
        deadline = time.monotonic() + timeout
        for crd in crds:
            while True:
                left = max(1, round(deadline - time.monotonic()))
                proc = self.kubectl("wait", "--for=condition=Established", f"crd/{crd}",
                                    f"--timeout={left}s", check=False, timeout=left + 30)
                if proc.returncode == 0:
                    break
                if "accessor error" not in proc.stderr or time.monotonic() > deadline:
                    raise KubectlError(proc.returncode, proc.args, proc.stdout, proc.stderr)
                time.sleep(0.2)

    def kubectl_json(self, *args: str, timeout: float = 60) -> Any:
        """``kubectl ARGS -o json``, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json", timeout=timeout).stdout)

    def server_version(self) -> tuple[int, int]:
        """The API server's ``(major, minor)``, from its ``/version``."""
        from echelon_operator.builders.sidecar import parse_server_version

        return parse_server_version(json.loads(self.kubectl("get", "--raw", "/version").stdout))

    def crd_dir(self) -> Path:
        """The Echelon CRDs for this server: with admission rules from 1.25 on, else the copy
        without them (``crds/pre-1.25/``)."""
        from echelon_operator.crds import RULES_DIR, RULES_MIN_VERSION

        return CRD_DIR if self.server_version() >= RULES_MIN_VERSION else CRD_DIR / RULES_DIR

    def service_account_token(self, namespace: str, account: str, timeout: float = 60) -> str:
        """A token of ServiceAccount ``namespace/account``: from the TokenRequest API
        (``kubectl create token``, 1.24+), else from the token Secret the controller-manager
        creates for it (1.20), waited for up to ``timeout``."""
        if self.server_version() >= (1, 24):
            return self.kubectl("create", "token", account, "--namespace", namespace,
                                "--duration", "2h").stdout.strip()
        deadline = time.monotonic() + timeout
        while True:
            sa = self.kubectl_json("get", "serviceaccount", account, "--namespace", namespace)
            if sa.get("secrets"):
                secret = self.kubectl_json("get", "secret", sa["secrets"][0]["name"],
                                           "--namespace", namespace)
                return base64.b64decode(secret["data"]["token"]).decode()
            if time.monotonic() > deadline:
                raise ClusterError(f"ServiceAccount {namespace}/{account} has no token Secret "
                                   f"after {timeout}s")
            time.sleep(0.2)

    def service_account_kubeconfig(self, namespace: str, account: str, path: Path) -> Path:
        """This cluster's kubeconfig at ``path``, authenticating as ``namespace/account``."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["users"] = [{"name": account, "user": {
            "token": self.service_account_token(namespace, account)}}]
        for context in config["contexts"]:
            context["context"]["user"] = account
        path.write_text(yaml.safe_dump(config))
        return path

    def require(self, minimum: tuple[int, int], feature: str) -> None:
        """Skip the calling test, saying why, when the API server is older than ``minimum``."""
        import pytest

        have = self.server_version()
        if have < minimum:
            pytest.skip(f"{feature}: needs Kubernetes {minimum[0]}.{minimum[1]} or newer; this "
                        f"API server is {have[0]}.{have[1]}")

    def api_client(self) -> kubernetes.client.ApiClient:
        """A new ``kubernetes.client.ApiClient`` for this cluster (close it when done)."""
        if self.netns:
            raise ClusterError(f"the API server listens inside network namespace {self.netns}: "
                               "use kubectl")
        # A kubeconfig with insecure-skip-tls-verify (local-k8s's: a self-signed serving
        # cert) asks for it; urllib3 would warn on every request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        client = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        return cast(kubernetes.client.ApiClient, client)

    def wait_ready(self, timeout: float = 30) -> None:
        """Fail unless the API server answers ``/readyz``."""
        proc = self.kubectl("get", "--raw", "/readyz", check=False, timeout=timeout)
        if proc.returncode != 0 or proc.stdout.strip() != "ok":
            raise ClusterError(
                f"the API server of {self.kubeconfig} is not ready: "
                f"{(proc.stderr or proc.stdout).strip()}"
            )


# --------------------------------------------------------------------------- local


def _run_script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(LOCAL_K8S), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"scripts/local-k8s {' '.join(args)} took more than {timeout}s") from exc


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class LocalClusterRun:
    """The local control plane of one test run, shared by its xdist workers.

    ``root`` is a directory every worker of the run sees (pytest's base temp dir of
    the run); ``workers`` is how many workers will call :meth:`finish`.
    """

    def __init__(self, root: Path, workers: int) -> None:
        self.root = root / "echelon-k8s"
        self.workers = workers
        self.cluster_dir = self.root / "cluster"
        self._lock = self.root / "lock"
        self._failed = self.root / "failed"
        self._finished = self.root / "finished-workers"

    def build(self) -> None:
        """``scripts/local-k8s build`` (a no-op when the binaries are cached)."""
        with _locked(self._lock):
            self._raise_if_failed()
            proc = _run_script("build", timeout=BUILD_TIMEOUT_S)
            if proc.returncode != 0:
                self._fail(f"scripts/local-k8s build failed:\n{proc.stderr.strip()}")

    def start(self) -> Cluster:
        """The run's cluster: started by the first caller, reused by the others."""
        with _locked(self._lock):
            self._raise_if_failed()
            kubeconfig = self.cluster_dir / "kubeconfig"
            if not kubeconfig.exists():
                proc = _run_script("build", timeout=BUILD_TIMEOUT_S)
                if proc.returncode != 0:
                    self._fail(f"scripts/local-k8s build failed:\n{proc.stderr.strip()}")
                proc = _run_script("up", "--dir", str(self.cluster_dir), timeout=UP_TIMEOUT_S)
                if proc.returncode != 0:
                    self._fail(
                        f"scripts/local-k8s up --dir {self.cluster_dir} failed:\n"
                        f"{proc.stderr.strip()}"
                    )
            cluster = Cluster.from_kubeconfig(kubeconfig, local=True)
        cluster.wait_ready()
        return cluster

    def finish(self, worker: str) -> None:
        """Record that ``worker`` is done; the last one stops the cluster."""
        with _locked(self._lock):
            done = set(self._finished.read_text().split()) if self._finished.exists() else set()
            done.add(worker)
            self._finished.write_text("\n".join(sorted(done)) + "\n")
            if len(done) >= self.workers and (self.cluster_dir / "kubeconfig").exists():
                proc = _run_script("down", "--dir", str(self.cluster_dir), timeout=DOWN_TIMEOUT_S)
                if proc.returncode != 0:
                    sys.stderr.write(
                        f"warning: scripts/local-k8s down --dir {self.cluster_dir} failed:\n"
                        f"{proc.stderr}"
                    )

    def _fail(self, message: str) -> None:
        self._failed.write_text(message)
        raise ClusterError(message)

    def _raise_if_failed(self) -> None:
        if self._failed.exists():
            raise ClusterError(
                "an earlier attempt in this test run failed:\n" + self._failed.read_text()
            )
