"""The real-pods tier: a node of the test run's own (kubelet + containerd + runc, images built
from the repository without Docker), on which Echelon is installed as a cluster user would.

- ``real_node`` (session): ``scripts/build-images`` (cached by inputs), then
  ``scripts/local-k8s up --kubelet`` with those images, in a network namespace of its own; at
  the end ``scripts/local-k8s down``, and the machine must look as it did before (mounts,
  network namespaces, cgroups, sysctls, the machine paths containerd and the kubelet use,
  processes): a difference is an error of the last test's teardown.
  Skipped, with the reason, only when ``scripts/local-k8s check`` says the machine cannot run
  containers (no root, no namespaces, overlayfs or writable cgroups), when the e2e tests are
  off (``ECHELON_E2E=0``), or when they run against an existing cluster
  (``ECHELON_KUBECONFIG``: this tier needs a node of its own).
- ``RealNode``: ``cluster`` (a :class:`~..cluster.Cluster` whose kubectl runs inside the
  namespace), ``helm(*args)``, ``ctr(*args)`` (containerd on the node), ``images`` (what
  ``scripts/build-images`` printed, by image name).

The tests carry the ``real_pods`` marker and the xdist group ``real-pods`` (with
``--dist loadgroup`` they run in order on one worker: one node per run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ...unit.chart.helm import HelmError, helm_binary
from ..cluster import ENV_E2E, ENV_KUBECONFIG, LOCAL_K8S, REPO_ROOT, Cluster

BUILD_IMAGES = REPO_ROOT / "scripts" / "build-images"
IMAGES_DIR = REPO_ROOT / "dist" / "images"
#: what `scripts/local-k8s down` must give back (see scripts/local-k8s-node.sh)
SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")
MACHINE_PATHS = ("/run/containerd", "/var/lib/cni", "/var/log/pods", "/var/log/containers",
                 "/run/netns", "/opt/containerd", "/var/lib/kubelet", "/etc/cni")


def run(cmd: list[str], *, timeout: float, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL, env=env)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited with {proc.returncode}:\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}", pytrace=False)
    return proc


# ------------------------------------------------------------------------- the machine


def machine_snapshot() -> dict[str, Any]:
    """What a node could leave behind on the machine."""
    mounts = sorted({line.split()[4] for line in Path("/proc/self/mountinfo").read_text()
                     .splitlines()})
    netns = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else None
    cgroups = []
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] in ("cgroup", "cgroup2") and os.path.isdir(fields[1]):
            cgroups += [f"{fields[1]}/{d}" for d in os.listdir(fields[1])
                        if d.startswith(("echelon-", "kubepods"))]
    sysctls = {s: Path("/proc/sys/" + s.replace(".", "/")).read_text().strip() for s in SYSCTLS}
    paths = {p: os.path.exists(p) for p in MACHINE_PATHS}
    # and what is in them, two levels down (pod log dirs, CNI results, shim sockets)
    entries = sorted(str(e) for p in MACHINE_PATHS if os.path.isdir(p) and p != "/run/netns"
                     for e in [*Path(p).glob("*"), *Path(p).glob("*/*")])
    processes = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(word in cmdline for word in ("kubelet --kubeconfig", "containerd-shim-runc",
                                            "containerd --config", "local-k8s-services")):
            processes.append(cmdline.strip())
    return {"mounts": mounts, "netns": netns, "cgroups": sorted(cgroups), "sysctls": sysctls,
            "paths": paths, "entries": entries, "processes": sorted(processes)}


def snapshot_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    for key in before:
        b, a = before[key], after[key]
        if b == a:
            continue
        if isinstance(b, list) and isinstance(a, list):
            gone, new = sorted(set(b) - set(a)), sorted(set(a) - set(b))
            out.append(f"{key}: left behind {new}" + (f", removed {gone}" if gone else ""))
        else:
            out.append(f"{key}: was {b}, now {a}")
    return out


# ------------------------------------------------------------------------- the node


@dataclass
class RealNode:
    dir: Path
    cluster: Cluster
    helm_home: Path
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def netns(self) -> str:
        assert self.cluster.netns is not None
        return self.cluster.netns

    def helm(self, *args: str, check: bool = True, timeout: float = 240
             ) -> subprocess.CompletedProcess[str]:
        env = dict(self.cluster.env)
        env.update(HELM_CONFIG_HOME=str(self.helm_home / "config"),
                   HELM_CACHE_HOME=str(self.helm_home / "cache"),
                   HELM_DATA_HOME=str(self.helm_home / "data"))
        cmd = [*self.cluster.prefix, helm_binary(), "--kubeconfig", str(self.cluster.kubeconfig),
               *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              env=env, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise HelmError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([str(LOCAL_K8S), "ctr", "--dir", str(self.dir), *args], timeout=60,
                   check=check)

    def image(self, name: str) -> str:
        """The full reference of a built image, e.g. ``localhost/echelon-sidecar:0.1.0``."""
        return next(ref for ref in self.images if ref.rsplit(":", 1)[0].endswith("/" + name))


def _skip_reason() -> str | None:
    if os.environ.get(ENV_E2E, "").strip() == "0":
        return f"{ENV_E2E}=0: e2e tests are off"
    if os.environ.get(ENV_KUBECONFIG):
        return (f"{ENV_KUBECONFIG} is set: the real-pods tier runs on a node of its own "
                "(scripts/local-k8s up --kubelet), not on an existing cluster")
    proc = run([str(LOCAL_K8S), "check"], timeout=60, check=False)
    if proc.returncode != 0:
        return f"real pods: {(proc.stdout or proc.stderr).strip()}"
    return None


@pytest.fixture(scope="session")
def real_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    timings: dict[str, float] = {}
    start = time.monotonic()
    run([str(LOCAL_K8S), "build"], timeout=45 * 60)
    timings["local-k8s build"] = time.monotonic() - start
    start = time.monotonic()
    built = run([str(BUILD_IMAGES), "--out", str(IMAGES_DIR)], timeout=20 * 60)
    timings["build-images"] = time.monotonic() - start
    sys.stderr.write("\n" + built.stdout)
    images = json.loads((IMAGES_DIR / "images.json").read_text())
    before = machine_snapshot()
    node_dir = tmp_path_factory.mktemp("real-node") / "k8s"
    start = time.monotonic()
    up = run([str(LOCAL_K8S), "up", "--kubelet", "--dir", str(node_dir), "--images",
              str(IMAGES_DIR)], timeout=420, check=False)
    timings["up --kubelet"] = time.monotonic() - start
    if up.returncode != 0:
        after = machine_snapshot()
        pytest.fail(f"scripts/local-k8s up --kubelet failed:\n{up.stderr[-6000:]}\n"
                    + "\n".join(snapshot_diff(before, after)), pytrace=False)
    netns = (node_dir / "node" / "netns").read_text().strip()
    cluster = Cluster.from_kubeconfig(node_dir / "kubeconfig", local=True, netns=netns)
    node = RealNode(node_dir, cluster, tmp_path_factory.mktemp("helm-home"), images, timings)
    try:
        yield node
    finally:
        start = time.monotonic()
        down = run([str(LOCAL_K8S), "down", "--dir", str(node_dir)], timeout=240, check=False)
        timings["down"] = time.monotonic() - start
        sys.stderr.write("\nreal pods: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
                         + "\n")
        problems = [] if down.returncode == 0 else [f"scripts/local-k8s down failed: "
                                                     f"{down.stderr[-3000:]}"]
        # the kubelet's sandboxes and shims may take a moment to go
        for _ in range(20):
            diff = snapshot_diff(before, machine_snapshot())
            if not diff:
                break
            time.sleep(0.5)
        problems += diff
        if problems:
            pytest.fail("the node left the machine changed:\n" + "\n".join(problems),
                        pytrace=False)
