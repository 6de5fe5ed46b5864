"""The reconcile benchmark's harness works (N=1); the numbers themselves are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys

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
