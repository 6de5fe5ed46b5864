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

from ..conftest import merge_patch

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
        assert vols == [
            {"name": "echelon-config", "configMap": {"name": "echelon-pool-other-pool"}}
        ]


def test_the_sidecar_env_setting_reaches_the_injected_container_after_the_secrets() -> None:
    settings = OperatorSettings(sidecar_env={"OTEL_SERVICE_NAME": "echelon-sidecar",
                                             "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"})
    container = sidecar_container("p", settings, REFS)
    names = [e["name"] for e in container["env"]]
    assert names[-4:] == ["ECHELON_KEY_A", "ECHELON_KEY_B", "OTEL_EXPORTER_OTLP_ENDPOINT",
                          "OTEL_SERVICE_NAME"]
    assert container["env"][-2] == {"name": "OTEL_EXPORTER_OTLP_ENDPOINT",
                                    "value": "http://otel:4318"}


# -- native sidecars ------------------------------------------------------------------------

def native_live(deployment: dict, pool: str = "thinking-pool") -> dict:
    return with_api_defaults(merge_patch(
        deployment, inject_sidecar(deployment, pool, SETTINGS, REFS, native=True)))


def test_a_native_sidecar_is_the_first_init_container_with_restart_always_and_a_startup_probe(
    deployment,
) -> None:
    deployment["spec"]["template"]["spec"]["initContainers"] = [{"name": "migrate",
                                                                 "image": "app:1"}]
    after = merge_patch(deployment, inject_sidecar(deployment, "thinking-pool", SETTINGS, REFS,
                                                   native=True))
    pod = after["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["app"]
    assert [c["name"] for c in pod["initContainers"]] == ["echelon-sidecar", "migrate"]
    sidecar = pod["initContainers"][0]
    assert sidecar["restartPolicy"] == "Always"
    # the application's containers start once the sidecar has its config and listens
    assert sidecar["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "echelon-admin",
                                                  "scheme": "HTTP"}
    assert sidecar["startupProbe"]["periodSeconds"] == 1
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["volumes"] == [{"name": "echelon-config",
                               "configMap": {"name": "echelon-pool-thinking-pool"}}]


def test_native_injection_is_idempotent_despite_api_server_defaults(deployment) -> None:
    live = native_live(deployment)
    for c in live["spec"]["template"]["spec"]["initContainers"]:
        c["startupProbe"].setdefault("successThreshold", 1)
    assert inject_sidecar(live, "thinking-pool", SETTINGS, REFS, native=True) is None


def test_a_regular_sidecar_moves_to_the_init_containers_when_the_server_gains_native_sidecars(
    deployment,
) -> None:
    old = with_api_defaults(merge_patch(
        deployment, inject_sidecar(deployment, "thinking-pool", SETTINGS, REFS)))
    patch = inject_sidecar(old, "thinking-pool", SETTINGS, REFS, native=True)
    assert patch is not None
    after = with_api_defaults(merge_patch(old, patch))
    pod = after["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["app"]
    assert [c["name"] for c in pod["initContainers"]] == ["echelon-sidecar"]
    assert inject_sidecar(after, "thinking-pool", SETTINGS, REFS, native=True) is None
    # and back (the operator forced to --sidecar-mode container): one container, no init list
    back = merge_patch(after, inject_sidecar(after, "thinking-pool", SETTINGS, REFS))
    pod = back["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["app", "echelon-sidecar"]
    assert "initContainers" not in pod
    assert "restartPolicy" not in pod["containers"][1]


def test_removing_a_native_sidecar_restores_the_original_spec_exactly(deployment) -> None:
    deployment["spec"]["template"]["spec"]["initContainers"] = [{"name": "migrate",
                                                                 "image": "app:1"}]
    original = with_api_defaults(deployment)
    live = native_live(deployment)
    after = merge_patch(live, remove_sidecar(live))
    assert after["spec"] == original["spec"]
    assert remove_sidecar(after) is None


def test_removing_the_only_init_container_drops_the_list(deployment) -> None:
    original = with_api_defaults(deployment)
    live = native_live(deployment)
    after = merge_patch(live, remove_sidecar(live))
    assert "initContainers" not in after["spec"]["template"]["spec"]
    assert after["spec"] == original["spec"]


def test_an_init_container_of_the_same_name_without_restart_always_is_not_a_sidecar() -> None:
    from echelon_operator.workloads import find_sidecar

    assert find_sidecar({"initContainers": [{"name": "echelon-sidecar"}]}) is None
    assert find_sidecar({"initContainers": [{"name": "echelon-sidecar",
                                             "restartPolicy": "Always"}]}) is not None


@pytest.mark.parametrize(("info", "version"), [
    ({"gitVersion": "v1.31.4", "major": "1", "minor": "31"}, (1, 31)),
    ({"gitVersion": "v1.30.2-gke.1587003", "major": "1", "minor": "30+"}, (1, 30)),
    ({"gitVersion": "", "major": "1", "minor": "29+"}, (1, 29)),
    ({"gitVersion": "v1.20.2"}, (1, 20)),
])
def test_the_server_version_is_read_from_its_version_document(info, version) -> None:
    from echelon_operator.builders.sidecar import parse_server_version

    assert parse_server_version(info) == version


def test_auto_mode_picks_native_sidecars_from_kubernetes_1_29_and_a_setting_forces_either() -> None:
    from echelon_operator.builders.sidecar import native_sidecars, parse_server_version

    with pytest.raises(ValueError, match="cannot read a Kubernetes version"):
        parse_server_version({"gitVersion": "weird"})
    assert native_sidecars("auto", (1, 29)) and native_sidecars("auto", (1, 37))
    assert not native_sidecars("auto", (1, 28)) and not native_sidecars("auto", (1, 20))
    assert native_sidecars("native", (1, 28)) and not native_sidecars("container", (1, 33))
    # before 1.28 the API server would drop restartPolicy and leave an init container that
    # never ends: forcing native gives regular containers there
    assert not native_sidecars("native", (1, 27))


# -- other workload kinds --------------------------------------------------------------------

def cronjob() -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "report", "namespace": "ns", "resourceVersion": "7",
                         "labels": {"echelon.dev/pool": "thinking-pool"}},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {
                "parallelism": 2,
                "template": {"metadata": {"labels": {"app": "report"}}, "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "report", "image": "report:1"}]}}}}}}


def test_a_cronjob_gets_the_sidecar_in_its_job_template_and_its_pods_the_pool_label() -> None:
    from echelon_operator.workloads import CRONJOB

    cj = cronjob()
    patch = inject_sidecar(cj, "thinking-pool", SETTINGS, REFS, kind=CRONJOB, native=True,
                           pod_label="thinking-pool")
    assert set(patch["spec"]) == {"jobTemplate"}
    after = merge_patch(cj, patch)
    template = after["spec"]["jobTemplate"]["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "report", "echelon.dev/pool": "thinking-pool"}
    assert [c["name"] for c in template["spec"]["initContainers"]] == ["echelon-sidecar"]
    assert injected_pool(after) == "thinking-pool"
    assert inject_sidecar(after, "thinking-pool", SETTINGS, REFS, kind=CRONJOB, native=True,
                          pod_label="thinking-pool") is None
    back = merge_patch(after, remove_sidecar(after, kind=CRONJOB))
    assert back["spec"] == cronjob()["spec"]


def test_a_statefulset_is_injected_like_a_deployment(deployment) -> None:
    from echelon_operator.workloads import STATEFULSET

    sts = copy.deepcopy(deployment)
    sts["kind"] = "StatefulSet"
    after = merge_patch(sts, inject_sidecar(sts, "p", SETTINGS, [], kind=STATEFULSET,
                                            native=True))
    assert [c["name"] for c in after["spec"]["template"]["spec"]["initContainers"]] == [
        "echelon-sidecar"]
