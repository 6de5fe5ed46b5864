"""`kubectl explain` helps: the CRDs' field descriptions come from the config model's docs."""

from __future__ import annotations

import pytest

from ..cluster import Cluster
from .conftest import wait_for


@pytest.mark.parametrize(("field", "needles"), [
    ("taskgroup.spec.echelons", ["echelons", "tier", "DESCRIPTION"]),
    ("taskgroup.spec.fallbackConfig.strategy", ["echelon_down", "task_group_switch"]),
    ("tg.spec.fallbackConfig.circuitBreaker", ["failureThreshold", "recoveryTime",
                                               "halfOpenRequests"]),
    ("pollingpool.spec.rotationStrategy", ["round_robin", "least_recently_used", "weighted"]),
    ("pp.spec.rateLimiting", ["token_bucket", "sliding_window", "bucketSize", "refillRate"]),
])
def test_kubectl_explain_describes_each_field(
    k8s: Cluster, crds: None, field: str, needles: list[str]
) -> None:
    def explained() -> str | None:
        # the API server publishes a changed CRD's OpenAPI a few seconds after Established
        proc = k8s.kubectl("explain", field, check=False, timeout=60)
        if proc.returncode != 0 or any(n not in proc.stdout for n in needles):
            raise AssertionError(f"kubectl explain {field}: {proc.stdout}{proc.stderr}")
        return proc.stdout

    out = wait_for(explained, timeout=60, interval=1, what=f"kubectl explain {field}")
    description = out.split("DESCRIPTION:", 1)[1].split("FIELDS:", 1)[0].strip()
    assert description and description != "<empty>", out
