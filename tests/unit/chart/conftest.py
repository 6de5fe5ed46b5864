"""Fixtures of the chart tests: rendered manifests, cached per set of values (helm is slow-ish)."""

from __future__ import annotations

from typing import Any

import pytest

from .helm import ALL_OPTIONS, MONITORING_APIS, render


@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    """The chart rendered with its default values (release echelon in echelon-system)."""
    return render()


@pytest.fixture(scope="module")
def all_options_docs() -> list[dict[str, Any]]:
    """The chart rendered with ci/all-options-values.yaml and the monitoring APIs present."""
    return render(values=[ALL_OPTIONS], api_versions=MONITORING_APIS, namespace="ops",
                  release="x")
