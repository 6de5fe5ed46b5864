"""The operator's RBAC rules, as data, in ONE place (the Helm chart renders from it).

Split by purpose, least privilege:

- **kopf** (the framework itself): post Events; in cluster-wide mode observe Namespaces and
  CRDs; with ``--peering``, its peering objects.
- **echelon** (what the operator does, in every watched namespace): watch and patch TaskGroups
  and PollingPools and write their status; create and patch the pools' ConfigMaps (and read
  the labelled global-config ones); watch and patch Deployments, StatefulSets and CronJobs
  (to add/remove the sidecar); watch Jobs (never patched: a Job's pod template cannot change);
  list Pods (to find the sidecars to poll); create Events. And read ``/version`` (every
  authenticated user may: the ``system:public-info-viewer`` ClusterRole), to learn whether the
  server runs native sidecars.
- **operator namespace**: read the one global-config ConfigMap named in the settings.

Never: Secrets (the sidecar container gets credentials through ``secretKeyRef`` env vars, which
the kubelet resolves; the operator never reads a Secret), deletes (ConfigMaps go with their pool
by garbage collection), or anything cluster-scoped in namespaced mode.

``python -m echelon_operator.rbac --help`` prints the rules or ready-to-apply manifests.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, Literal

import yaml

from .names import API_GROUP

__all__ = [
    "echelon_rules",
    "kopf_cluster_rules",
    "kopf_namespace_rules",
    "main",
    "manifests",
    "operator_namespace_rules",
    "rules",
]

Mode = Literal["cluster", "namespaced"]
WATCH = ["get", "list", "watch"]


def _rule(groups: list[str], resources: list[str], verbs: list[str],
          names: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return rule


def kopf_cluster_rules(peering: bool = False) -> list[dict[str, Any]]:
    """Cluster-scoped rights kopf needs in cluster-wide mode only."""
    out = [
        # runtime observation of namespaces and of CRDs (kopf's "scanning")
        _rule([""], ["namespaces"], ["list", "watch"]),
        _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], ["list", "watch"]),
    ]
    if peering:
        out.append(_rule(["kopf.dev"], ["clusterkopfpeerings"], [*WATCH, "patch", "create"]))
    return out


def kopf_namespace_rules(peering: bool = False) -> list[dict[str, Any]]:
    """Rights kopf needs in each namespace it serves."""
    out = [_rule(["", "events.k8s.io"], ["events"], ["create"])]
    if peering:
        out.append(_rule(["kopf.dev"], ["kopfpeerings"], [*WATCH, "patch", "create"]))
    return out


def echelon_rules() -> list[dict[str, Any]]:
    """What Echelon does in each watched namespace."""
    return [
        # kopf also patches the resources it handles (its progress annotations)
        _rule([API_GROUP], ["taskgroups", "pollingpools"], [*WATCH, "patch"]),
        _rule([API_GROUP], ["taskgroups/status", "pollingpools/status"], ["get", "patch"]),
        # ownerReferences with blockOwnerDeletion on the pools' ConfigMaps
        _rule([API_GROUP], ["pollingpools/finalizers"], ["update"]),
        # the pools' ConfigMaps (created and patched) and the global-config ones (read)
        _rule([""], ["configmaps"], [*WATCH, "create", "patch"]),
        # add / remove the sidecar in labelled Deployments, StatefulSets and CronJobs
        _rule(["apps"], ["deployments", "statefulsets"], [*WATCH, "patch"]),
        _rule(["batch"], ["cronjobs"], [*WATCH, "patch"]),
        # Jobs: counted and checked, never patched (their pod template is immutable)
        _rule(["batch"], ["jobs"], WATCH),
        # find the sidecars to poll
        _rule([""], ["pods"], ["list"]),
        _rule(["", "events.k8s.io"], ["events"], ["create"]),
    ]


def operator_namespace_rules(global_config_name: str = "echelon-global-config"
                             ) -> list[dict[str, Any]]:
    """In the operator's own namespace: read its global-config ConfigMap (and nothing else)."""
    return [_rule([""], ["configmaps"], ["get"], [global_config_name])]


def rules(mode: Mode = "namespaced", *, peering: bool = False,
          global_config_name: str = "echelon-global-config") -> dict[str, list[dict[str, Any]]]:
    """The rule lists by where they are bound.

    - ``clusterRole``: a ClusterRole bound cluster-wide (cluster mode), else empty;
    - ``watchedNamespaceRole``: a Role bound in each watched namespace (namespaced mode);
    - ``operatorNamespaceRole``: a Role bound in the operator's own namespace.
    """
    namespaced = [*kopf_namespace_rules(peering), *echelon_rules()]
    namespaced = _dedupe(namespaced)
    if mode == "cluster":
        return {
            "clusterRole": _dedupe([*kopf_cluster_rules(peering), *namespaced]),
            "watchedNamespaceRole": [],
            "operatorNamespaceRole": operator_namespace_rules(global_config_name),
        }
    return {
        "clusterRole": [],
        "watchedNamespaceRole": namespaced,
        "operatorNamespaceRole": operator_namespace_rules(global_config_name),
    }


def _dedupe(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def manifests(
    *,
    service_account: str = "echelon-operator",
    operator_namespace: str = "echelon-system",
    mode: Mode = "namespaced",
    namespaces: Sequence[str] = (),
    peering: bool = False,
    name: str = "echelon-operator",
    global_config_name: str = "echelon-global-config",
) -> list[dict[str, Any]]:
    """Roles / ClusterRoles and their bindings for one ServiceAccount."""
    table = rules(mode, peering=peering, global_config_name=global_config_name)
    subject = {"kind": "ServiceAccount", "name": service_account,
               "namespace": operator_namespace}
    labels = {"app.kubernetes.io/name": "echelon", "app.kubernetes.io/component": "operator"}
    out: list[dict[str, Any]] = []

    def role(kind: str, role_name: str, namespace: str | None, body: list[dict[str, Any]]) -> None:
        meta: dict[str, Any] = {"name": role_name, "labels": labels}
        if namespace:
            meta["namespace"] = namespace
        out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                    "metadata": meta, "rules": body})
        binding_meta = dict(meta)
        out.append({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding" if kind == "ClusterRole" else "RoleBinding",
            "metadata": binding_meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
            "subjects": [subject],
        })

    if mode == "cluster":
        role("ClusterRole", name, None, table["clusterRole"])
    else:
        for ns in namespaces:
            role("Role", name, ns, table["watchedNamespaceRole"])
    role("Role", f"{name}-global-config", operator_namespace, table["operatorNamespaceRole"])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m echelon_operator.rbac",
        description="Print the operator's RBAC: the rule lists (--rules) or Role/ClusterRole "
        "manifests with bindings for a ServiceAccount (default).",
    )
    parser.add_argument("--mode", choices=["cluster", "namespaced"], default="namespaced")
    parser.add_argument("--namespace", "-n", action="append", default=[], dest="namespaces",
                        help="a watched namespace (namespaced mode; repeatable)")
    parser.add_argument("--operator-namespace", default="echelon-system")
    parser.add_argument("--service-account", default="echelon-operator")
    parser.add_argument("--name", default="echelon-operator", help="name of the roles")
    parser.add_argument("--global-config", default="echelon-global-config",
                        help="name of the global-config ConfigMap in the operator namespace")
    parser.add_argument("--peering", action="store_true", help="include kopf peering rights")
    parser.add_argument("--rules", action="store_true",
                        help="print only the rule lists (clusterRole, watchedNamespaceRole, "
                        "operatorNamespaceRole), e.g. for the Helm chart")
    args = parser.parse_args(argv)
    if args.rules:
        data: Any = rules(args.mode, peering=args.peering, global_config_name=args.global_config)
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
        return 0
    if args.mode == "namespaced" and not args.namespaces:
        parser.error("namespaced mode needs at least one --namespace")
    docs = manifests(service_account=args.service_account,
                     operator_namespace=args.operator_namespace, mode=args.mode,
                     namespaces=args.namespaces, peering=args.peering, name=args.name,
                     global_config_name=args.global_config)
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
