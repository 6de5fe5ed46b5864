"""The chart's alerts under ``promtool test rules``: each fires on what it is about and stays
quiet otherwise (tests/unit/chart/alerts/*.test.yaml), on the PrometheusRule as helm renders it.

promtool is Debian's (``scripts/install-prometheus``); the tests are skipped, saying why, only
where it cannot be installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ...prometheus import promtool
from .helm import MONITORING_APIS, one, render

ALERT_TESTS = Path(__file__).parent / "alerts"


@pytest.fixture(scope="module")
def rule_groups() -> list[dict[str, Any]]:
    """The PrometheusRule's groups, rendered with the default values (alerts enabled)."""
    docs = render(sets={"metrics.prometheusRule.enabled": True}, api_versions=MONITORING_APIS)
    groups: list[dict[str, Any]] = one(docs, "PrometheusRule")["spec"]["groups"]
    return groups


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False, stdin=subprocess.DEVNULL)


def _workdir(tmp_path: Path, groups: list[dict[str, Any]]) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    for path in ALERT_TESTS.glob("*.test.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_the_rendered_rules_pass_promtool_check(rule_groups: list[dict[str, Any]],
                                               tmp_path: Path) -> None:
    work = _workdir(tmp_path, rule_groups)
    proc = _promtool("check", "rules", "rules.yaml", cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_fires_and_stays_quiet_in_promtools_unit_tests(
    rule_groups: list[dict[str, Any]], tmp_path: Path
) -> None:
    work = _workdir(tmp_path, rule_groups)
    files = sorted(p.name for p in work.glob("*.test.yaml"))
    assert files
    proc = _promtool("test", "rules", *files, cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_each_alert_has_a_firing_case_and_a_quiet_case(
    rule_groups: list[dict[str, Any]]
) -> None:
    alerts = {r["alert"] for g in rule_groups for r in g["rules"] if "alert" in r}
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in ALERT_TESTS.glob("*.test.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert alerts == {"EchelonCircuitOpen", "EchelonFallbackSuccessRateLow",
                      "EchelonPoolNoHealthyInstance", "EchelonConfigReloadFailing",
                      "EchelonOperatorDown"}
    assert alerts - firing == set(), "alerts no test makes fire"
    assert alerts - quiet == set(), "alerts no test keeps quiet"
    assert (firing | quiet) - alerts == set(), "tests of alerts the chart does not have"
