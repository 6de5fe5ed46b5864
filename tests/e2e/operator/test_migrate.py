"""`echelon migrate` output of the source documents' combined example applies cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..cluster import REPO_ROOT, Cluster
from .conftest import condition, get, wait_for


def test_migrated_manifests_apply_and_reconcile(
    k8s: Cluster, namespace: str, operator, tmp_path: Path
) -> None:
    out = tmp_path / "migrated"
    subprocess.run([str(Path(sys.executable).with_name("echelon")), "migrate",
                    str(REPO_ROOT / "configs" / "_task_groups.yaml"), "-o", str(out)],
                   check=True, capture_output=True, text=True, timeout=60)
    # the API server's schema accepts every manifest (server-side dry run, then for real)
    k8s.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(out))
    operator()
    applied = k8s.kubectl("apply", "-n", namespace, "-f", str(out)).stdout
    groups = [p.stem.removeprefix("taskgroup-") for p in out.glob("taskgroup-*.yaml")]
    pools = [p.stem.removeprefix("pollingpool-") for p in out.glob("pollingpool-*.yaml")]
    assert groups and pools and "configmap/echelon-global-config" in applied

    def valid(kind: str, name: str) -> bool:
        cond = condition(get(k8s, namespace, kind, name), "Invalid")
        return bool(cond and cond["status"] == "False")

    for name in groups:
        wait_for(lambda n=name: valid("taskgroup", n), what=f"TaskGroup {name} valid")
    for name in pools:
        wait_for(lambda n=name: valid("pollingpool", n), what=f"PollingPool {name} valid")
        wait_for(lambda n=name: get(k8s, namespace, "configmap", f"echelon-pool-{n}"),
                 what=f"{name}'s ConfigMap")
