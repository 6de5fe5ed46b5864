"""NOTES.txt tells the user exactly what to run next (rendered by a client-side dry run)."""

from __future__ import annotations

import os
from typing import Any

from .helm import ALL_OPTIONS, helm, template_args


def notes(**kwargs: Any) -> str:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    out = helm("install", *template_args(**kwargs), "--dry-run=client", env=env).stdout
    assert "NOTES:" in out
    return out.split("NOTES:", 1)[1]


def test_notes_list_the_next_commands_for_the_watched_namespace() -> None:
    text = notes(values=[ALL_OPTIONS], namespace="ops", release="x")
    assert "kubectl -n ops rollout status deployment/echelon-ops" in text
    assert "helm test x -n ops" in text
    assert "kubectl -n team-a create secret generic llm-credentials" in text
    assert "--from-literal=anthropic=<anthropic API key>" in text
    assert ("kubectl -n team-a apply -f configs/k8s/10-taskgroups.yaml "
            "-f configs/k8s/20-pollingpools.yaml") in text
    assert "kubectl -n team-a label deployment <your-app> echelon.dev/pool=thinking-pool" in text
    assert "OPENAI_BASE_URL=http://127.0.0.1:18080/v1" in text and 'model="thinking_group"' in text
    assert "kubectl -n team-a get tg,pp" in text
    assert "00-global-config.yaml" not in text  # the chart has a catalog
    # enabled, but no Prometheus Operator API in a dry run: say so
    assert "no PodMonitor was created" in text and "no PrometheusRule was created" in text


def test_notes_without_a_catalog_point_at_the_samples_catalog() -> None:
    text = notes()
    assert "every namespace" in text
    assert "kubectl -n <app-namespace> apply -f configs/k8s/00-global-config.yaml" in text
    assert "WARNING" not in text


def test_notes_say_where_the_crds_come_from_when_the_chart_does_not_install_them() -> None:
    assert "crds.install is false" in notes(sets={"crds.install": False})
