"""inject_sidecar / remove_sidecar: exact, idempotent, reversible patches of a Deployment."""

from __future__ import annotations

import copy

import pytest

from echelon_operator.builders import (
    SecretRef,
    inject_sidecar,
    injected_pool,
    remove_sidecar,
    sidecar_container,
)
from echelon_operator.settings import OperatorSettings

from .conftest import merge_patch

SETTINGS = OperatorSettings(sidecar_image="example.org/echelon:1", admin_port=9191)
REFS = [SecretRef("ECHELON_KEY_B", "creds", "b"), SecretRef("ECHELON_KEY_A", "creds", "a")]


def with_api_defaults(dep: dict) -> dict:
    """What the API server adds to what it was sent (defaults the builders do not set)."""
    dep = copy.deepcopy(dep)
    pod = dep["spec"]["template"]["spec"]
    for c in pod["containers"]:
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        for probe in ("livenessProbe", "readinessProbe"):
            if probe in c:
                c[probe].setdefault("successThreshold", 1)
    for v in pod.get("volumes", []):
        if "configMap" in v:
            v["configMap"].setdefault("defaultMode", 420)
    dep["metadata"]["resourceVersion"] = str(int(dep["metadata"]["resourceVersion"]) + 1)
    return dep


def test_injection_adds_container_volume_and_annotation(deployment) -> None:
    patch = inject_sidecar(deployment, "thinking-pool", SETTINGS, REFS)
    assert patch is not None
    assert patch["metadata"]["resourceVersion"] == "41"
    after = merge_patch(deployment, patch)
    pod = after["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["app", "echelon-sidecar"]
    assert pod["containers"][0] == deployment["spec"]["template"]["spec"]["containers"][0]
    sidecar = pod["containers"][1]
    assert sidecar["image"] == "example.org/echelon:1"
    assert sidecar["args"] == ["--config", "/etc/echelon", "--pool", "thinking-pool",
                               "--host", "127.0.0.1", "--port", "8080",
                               "--admin-host", "0.0.0.0", "--admin-port", "9191"]
    assert {p["name"]: p["containerPort"] for p in sidecar["ports"]} == {
        "echelon-http": 8080, "echelon-admin": 9191}
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "echelon-admin",
                                                    "scheme": "HTTP"}
    assert sidecar["volumeMounts"] == [{"name": "echelon-config", "mountPath": "/etc/echelon",
                                        "readOnly": True}]
    assert sidecar["env"] == [
        # its pod's name, for its share of the budgets (sidecar.pods)
        {"name": "ECHELON_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "ECHELON_KEY_A", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "a"}}},
        {"name": "ECHELON_KEY_B", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "b"}}},
    ]
    security = sidecar["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert not security["allowPrivilegeEscalation"]
    assert pod["volumes"] == [{"name": "echelon-config",
                               "configMap": {"name": "echelon-pool-thinking-pool"}}]
    assert injected_pool(after) == "thinking-pool"


def test_injection_is_idempotent_despite_api_server_defaults(deployment) -> None:
    patch = inject_sidecar(deployment, "thinking-pool", SETTINGS, REFS)
    live = with_api_defaults(merge_patch(deployment, patch))
    assert inject_sidecar(live, "thinking-pool", SETTINGS, REFS) is None


def test_changed_secrets_or_settings_correct_the_sidecar(deployment) -> None:
    live = with_api_defaults(merge_patch(
        deployment, inject_sidecar(deployment, "thinking-pool", SETTINGS, REFS)))
    assert inject_sidecar(live, "thinking-pool", SETTINGS, REFS[:1]) is not None
    assert inject_sidecar(live, "thinking-pool", SETTINGS, []) is not None
    other = OperatorSettings(sidecar_image="example.org/echelon:2", admin_port=9191)
    patch = inject_sidecar(live, "thinking-pool", other, REFS)
    assert patch is not None
    containers = patch["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "echelon-sidecar"]  # replaced, not added


def test_the_template_does_not_depend_on_the_pools_config(deployment) -> None:
    # the builder only sees the pool's name and its Secret refs: a TaskGroup / pool edit
    # that keeps the same models cannot change the pod template
    assert sidecar_container("p", SETTINGS, REFS) == sidecar_container("p", SETTINGS,
                                                                       list(reversed(REFS)))


def test_removal_restores_the_original_spec_exactly(deployment) -> None:
    original = with_api_defaults(deployment)
    live = with_api_defaults(merge_patch(
        deployment, inject_sidecar(deployment, "thinking-pool", SETTINGS, REFS)))
    patch = remove_sidecar(live)
    assert patch is not None
    after = merge_patch(live, patch)
    assert after["spec"] == original["spec"]
    assert "echelon.dev/injected-pool" not in after["metadata"].get("annotations", {})
    assert remove_sidecar(after) is None


def test_removal_keeps_the_apps_own_volumes(deployment) -> None:
    deployment["spec"]["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    live = merge_patch(deployment, inject_sidecar(deployment, "p", SETTINGS, []))
    after = merge_patch(live, remove_sidecar(live))
    assert after["spec"]["template"]["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]


def test_a_deployment_the_operator_never_changed_is_never_patched_for_removal(
    deployment,
) -> None:
    deployment["spec"]["template"]["spec"]["containers"].append(
        {"name": "echelon-sidecar", "image": "mine"})
    assert remove_sidecar(deployment) is None


@pytest.mark.parametrize("pool", ["thinking-pool", "other-pool"])
def test_switching_pools_rewrites_the_sidecar(deployment, pool) -> None:
    live = merge_patch(deployment, inject_sidecar(deployment, "thinking-pool", SETTINGS, REFS))
    patch = inject_sidecar(live, pool, SETTINGS, REFS)
    if pool == "thinking-pool":
        assert patch is None
    else:
        after = merge_patch(live, patch)
        assert injected_pool(after) == "other-pool"
        vols = after["spec"]["template"]["spec"]["volumes"]
        assert vols == [{"name": "echelon-config", "configMap": {"name": "echelon-pool-other-pool"}}]


def test_the_sidecar_env_setting_reaches_the_injected_container_after_the_secrets() -> None:
    settings = OperatorSettings(sidecar_env={"OTEL_SERVICE_NAME": "echelon-sidecar",
                                             "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"})
    container = sidecar_container("p", settings, REFS)
    names = [e["name"] for e in container["env"]]
    assert names[-4:] == ["ECHELON_KEY_A", "ECHELON_KEY_B", "OTEL_EXPORTER_OTLP_ENDPOINT",
                          "OTEL_SERVICE_NAME"]
    assert container["env"][-2] == {"name": "OTEL_EXPORTER_OTLP_ENDPOINT",
                                    "value": "http://otel:4318"}
