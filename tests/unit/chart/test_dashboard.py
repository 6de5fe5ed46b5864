"""The Grafana dashboard the chart ships (files/dashboards/echelon.json, dashboard.enabled):
a ConfigMap for Grafana's sidecar, whose panels query the sidecar's own metrics and labels.
(tests/integration/prometheus runs every panel query against a real Prometheus.)"""

from __future__ import annotations

import json
import re
from typing import Any

from .helm import CHART, find, one, render
from .test_render import _exposed_metrics

DASHBOARD = CHART / "files" / "dashboards" / "echelon.json"


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query of every panel, rows' panels included."""
    out: list[tuple[str, str]] = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets") or []:
                out.append((inner["title"], target["expr"]))
    return out


def test_the_dashboard_is_opt_in() -> None:
    assert not [d for d in find(render(), "ConfigMap") if d["metadata"]["name"].endswith(
        "-dashboard")]


def test_the_dashboard_configmap_is_labelled_for_grafanas_sidecar() -> None:
    docs = render(sets={"dashboard.enabled": True})
    cm = one(docs, "ConfigMap", "echelon-dashboard")
    assert cm["metadata"]["namespace"] == "echelon-system"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["labels"]["app.kubernetes.io/component"] == "dashboard"
    assert json.loads(cm["data"]["echelon.json"]) == json.loads(DASHBOARD.read_text())


def test_the_dashboard_namespace_labels_and_annotations_come_from_values() -> None:
    docs = render(sets={"dashboard.enabled": True, "dashboard.namespace": "monitoring",
                        "dashboard.labels.team": "llm",
                        "dashboard.annotations.grafana_folder": "Echelon"})
    cm = one(docs, "ConfigMap", "echelon-dashboard")
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["team"] == "llm"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Echelon"}


def test_every_panel_uses_the_datasource_variable_and_the_sidecars_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "echelon-overview"
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert names == {"datasource", "namespace", "group"}
    exposed = {**_exposed_metrics(), "echelon_in_flight_requests": set()}
    queries = panel_queries(dashboard)
    assert len(queries) >= 15
    for title, expr in queries:
        assert "$namespace" in expr, f"{title}: not filtered by namespace"
        for metric, selector in re.findall(r"(echelon_[a-z_]+)(?:\{([^}]*)\})?", expr):
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            labels = exposed.get(metric, exposed.get(base))
            assert labels is not None, f"{title}: {metric} is not a sidecar metric"
            for label in re.findall(r"(\w+)\s*[=!~]+", selector or ""):
                assert label in labels | {"namespace", "pod", "le"}, \
                    f"{title}: {metric} has no label {label}"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel.get("description"), f"{panel['title']}: no description"
