"""A control plane of a test's own, for what must not disturb the shared one (restarting the
API server, an operator that watches every namespace)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .cluster import LOCAL_K8S, Cluster
from .operator.conftest import wait_for

__all__ = ["OwnCluster"]


class OwnCluster:
    """A control plane of this test's own (``scripts/local-k8s up --dir``), stopped after."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder / "k8s"
        proc = subprocess.run([str(LOCAL_K8S), "up", "--dir", str(self.dir)],
                              capture_output=True, text=True, timeout=240, check=False,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            pytest.fail(f"scripts/local-k8s up failed: {proc.stderr[-2000:]}", pytrace=False)
        self.cluster = Cluster.from_kubeconfig(self.dir / "kubeconfig", local=True)

    def restart_apiserver(self, down_for: float) -> None:
        """Kill kube-apiserver (SIGKILL: a crash; its graceful TERM takes ~30 s here), keep it
        down ``down_for`` s, start it again the same way ``up`` did (same arguments, pid file
        and log), and wait until it is ready."""
        pidfile = self.dir / "kube-apiserver.pid"
        pid = int(pidfile.read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(down_for)
        with (self.dir / "kube-apiserver.log").open("ab") as log:
            proc = subprocess.Popen([a.decode() for a in argv], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        pidfile.write_text(f"{proc.pid}\n")
        wait_for(lambda: self.cluster.kubectl("get", "--raw", "/readyz", check=False,
                                              timeout=5).stdout.strip() == "ok",
                 timeout=60, interval=0.3, what="the restarted API server ready")

    def down(self) -> None:
        subprocess.run([str(LOCAL_K8S), "down", "--dir", str(self.dir)], capture_output=True,
                       timeout=120, check=False, stdin=subprocess.DEVNULL)
