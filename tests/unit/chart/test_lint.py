"""`helm lint --strict` is clean for the default values and for every option."""

from __future__ import annotations

import re

import pytest

from .helm import ALL_OPTIONS, CHART, helm


@pytest.mark.parametrize("values", [[], ["--values", str(ALL_OPTIONS)],
                                    ["--set", "rbac.scope=namespaced",
                                     "--set", "watchNamespaces={team-a}"]],
                         ids=["default", "all-options", "namespaced"])
def test_helm_lint_is_clean(values: list[str]) -> None:
    proc = helm("lint", "--strict", str(CHART), *values, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not re.search(r"\[(WARNING|ERROR)\]", proc.stdout), proc.stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


def test_helm_lint_names_a_misspelt_key() -> None:
    proc = helm("lint", str(CHART), "--set", "sidecar.dataPrt=8080", check=False)
    assert proc.returncode != 0
    assert "'dataPrt'" in proc.stdout + proc.stderr
