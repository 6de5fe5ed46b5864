"""The RBAC rules: least privilege, one source, printable for the chart."""

from __future__ import annotations

import yaml

from echelon_operator import rbac


def _all_rules(table: dict) -> list[dict]:
    return [r for rules in table.values() for r in rules]


def test_no_rule_grants_secrets_or_deletes_or_wildcards() -> None:
    for mode in ("namespaced", "cluster"):
        for peering in (False, True):
            for rule in _all_rules(rbac.rules(mode, peering=peering)):
                assert "secrets" not in rule["resources"]
                assert "delete" not in rule["verbs"] and "*" not in rule["verbs"]
                assert "*" not in rule["resources"] and "*" not in rule["apiGroups"]


def test_namespaced_mode_needs_nothing_cluster_scoped() -> None:
    table = rbac.rules("namespaced")
    assert table["clusterRole"] == []
    resources = {res for r in table["watchedNamespaceRole"] for res in r["resources"]}
    assert {"taskgroups", "pollingpools", "pollingpools/status", "configmaps", "deployments",
            "pods", "events"} <= resources
    assert "namespaces" not in resources


def test_kopf_rules_are_kept_apart_from_echelons() -> None:
    assert {"namespaces", "customresourcedefinitions"} == {
        res for r in rbac.kopf_cluster_rules() for res in r["resources"]}
    assert any("kopfpeerings" in r["resources"] for r in rbac.kopf_namespace_rules(peering=True))
    assert not any("kopfpeerings" in r["resources"] for r in rbac.kopf_namespace_rules())


def test_operator_namespace_role_reads_only_its_global_config() -> None:
    assert rbac.operator_namespace_rules("cfg") == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
         "resourceNames": ["cfg"]}]


def test_manifests_bind_one_role_per_watched_namespace(capsys) -> None:
    assert rbac.main(["-n", "a", "-n", "b", "--operator-namespace", "ops"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = [(d["kind"], d["metadata"].get("namespace")) for d in docs]
    assert kinds == [("Role", "a"), ("RoleBinding", "a"), ("Role", "b"), ("RoleBinding", "b"),
                     ("Role", "ops"), ("RoleBinding", "ops")]
    assert docs[1]["subjects"] == [{"kind": "ServiceAccount", "name": "echelon-operator",
                                    "namespace": "ops"}]


def test_cluster_mode_prints_a_cluster_role(capsys) -> None:
    assert rbac.main(["--mode", "cluster", "--rules"]) == 0
    table = yaml.safe_load(capsys.readouterr().out)
    assert table["watchedNamespaceRole"] == []
    assert any("namespaces" in r["resources"] for r in table["clusterRole"])


def test_every_workload_kind_is_watched_and_only_jobs_are_never_patched() -> None:
    rules = rbac.echelon_rules()

    def verbs(group: str, resource: str) -> set[str]:
        return {v for r in rules if group in r["apiGroups"] and resource in r["resources"]
                for v in r["verbs"]}

    for group, resource in (("apps", "deployments"), ("apps", "statefulsets"),
                            ("batch", "cronjobs")):
        assert verbs(group, resource) == {"get", "list", "watch", "patch"}, resource
    # a Job's pod template is immutable: the operator counts and checks Jobs, never writes them
    assert verbs("batch", "jobs") == {"get", "list", "watch"}
