"""The operator benchmarks' harnesses work (N=1, a few simulated sidecars); the numbers
themselves are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..cluster import REPO_ROOT, Cluster


def test_operator_bench_runs_with_one_group(k8s: Cluster, crds: None) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.operator_bench", "--groups", "1",
         "--kubeconfig", str(k8s.kubeconfig)],
        cwd=REPO_ROOT, env=k8s.env, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    modes = sorted(r["mode"] for r in report["results"])
    assert modes == ["one-pool", "pools"]
    for result in report["results"]:
        assert result["groups"] == 1
        assert result["configmaps_right_s"] > 0 and result["edit_rerender_s"] > 0
        assert result["operator_rss_mb_peak"] > 0


@pytest.mark.slow
def test_operator_scale_bench_runs_with_a_few_simulated_sidecars(k8s: Cluster, crds: None
                                                                 ) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.operator_scale", "--pods", "6", "--pools", "2",
         "--deployments", "1", "--rounds", "1", "--interval", "3",
         "--kubeconfig", str(k8s.kubeconfig)],
        cwd=REPO_ROOT, env=k8s.env, capture_output=True, text=True, timeout=280, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    (case,) = report["results"]
    assert case["pods"] == 6 and case["farm"]["requests"] > 0
    phases = [r["phase"] for r in case["rounds"]]
    assert "steady" in phases and "after a change" in phases
    assert case["change"]["circuits_opened"] == 1
    assert case["operator_rss_mb_peak"] > 0
