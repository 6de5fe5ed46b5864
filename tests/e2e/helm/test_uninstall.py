"""helm uninstall leaves no Echelon object behind except the CRDs, which crds.keep keeps."""

from __future__ import annotations

from ..cluster import Cluster
from ..operator.conftest import get, wait_for
from .conftest import CRD_NAMES, Chart

NAMESPACED = "all,configmaps,serviceaccounts,roles,rolebindings,secrets"


def _left(k8s: Cluster, namespace: str, release: str) -> list[str]:
    selector = f"app.kubernetes.io/instance={release}"
    names = k8s.kubectl("get", NAMESPACED, "-n", namespace, "-l", selector,
                        "-o", "name").stdout.split()
    names += k8s.kubectl("get", "clusterroles,clusterrolebindings", "-l", selector,
                         "-o", "name").stdout.split()
    # helm's own release records
    names += k8s.kubectl("get", "secrets", "-n", namespace, "-l", "owner=helm",
                         "-o", "name").stdout.split()
    return names


def test_uninstall_removes_everything_but_the_kept_crds(
    k8s: Cluster, chart: Chart, namespace: str
) -> None:
    # this release takes the session's CRDs over (crds.install=true, keep=true), as an
    # install into a fresh cluster would own them
    release = chart.install("--take-ownership", sets={"crds.install": True, "crds.keep": True})
    for name in CRD_NAMES:
        crd = get(k8s, "", "crd", name)
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["annotations"]["meta.helm.sh/release-namespace"] == namespace
        assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == "echelon"
    before = _left(k8s, namespace, "echelon")
    for kind in ("deployment.apps/echelon", "service/echelon", "configmap/echelon-global-config",
                 "serviceaccount/echelon", f"clusterrole.rbac.authorization.k8s.io/echelon-"
                 f"{namespace}", "role.rbac.authorization.k8s.io/echelon-global-config"):
        assert kind in before, before

    out = chart.uninstall(release)
    assert "kept due to the resource policy" in out

    wait_for(lambda: not _left(k8s, namespace, "echelon"), timeout=60,
             what="every object of the release gone (pods by garbage collection)")
    for name in CRD_NAMES:
        crd = get(k8s, "", "crd", name)
        assert crd is not None, f"{name} was deleted"
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert established["Established"] == "True"

    # installing again under the same name adopts the kept CRDs
    again = chart.install(sets={"crds.install": True, "crds.keep": True})
    assert get(k8s, "", "crd", CRD_NAMES[0])["metadata"]["annotations"][
        "meta.helm.sh/release-name"] == "echelon"
    chart.uninstall(again)
    assert all(get(k8s, "", "crd", name) is not None for name in CRD_NAMES)
