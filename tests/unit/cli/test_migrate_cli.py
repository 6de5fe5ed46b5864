"""`echelon migrate`: manifests that validate, global fallback folded in, behaviour kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from echelon_operator.cli import main
from echelon_sidecar.config import Resolver, kubernetes_name, load_config

REPO = Path(__file__).resolve().parents[3]
COMBINED = REPO / "configs/_task_groups.yaml"


@pytest.fixture
def migrated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    out = tmp_path / "out"
    assert main(["migrate", str(COMBINED), "-o", str(out)]) == 0
    return out, capsys.readouterr().out


def test_writes_one_manifest_per_group_and_pool_that_validates(migrated: tuple[Path, str]) -> None:
    out, report = migrated
    source = load_config(COMBINED).config
    names = sorted(p.name for p in out.iterdir())
    assert names.count("echelon-global-config.yaml") == 1
    assert sum(n.startswith("taskgroup-") for n in names) == len(source.task_groups)
    assert sum(n.startswith("pollingpool-") for n in names) == len(source.polling_pools)
    assert main(["validate", str(out)]) == 0
    assert "thinking_group -> thinking-group" in report
    doc = yaml.safe_load((out / "taskgroup-thinking-group.yaml").read_text())
    assert doc["kind"] == "TaskGroup" and doc["metadata"]["name"] == "thinking-group"
    assert "fallbackConfig" in doc["spec"] and "fallbackStrategy" not in doc["spec"]


def test_behaviour_is_unchanged_after_folding_the_global_fallback(
        migrated: tuple[Path, str]) -> None:
    out, _ = migrated
    before = load_config(COMBINED).config
    after = load_config(out)
    assert after.config.global_fallback is None
    rb, ra = Resolver(before), Resolver(after.config)
    for name in before.task_groups:
        b = rb.effective_fallback(name)
        a = ra.effective_fallback(kubernetes_name(name))
        assert (a.strategy, a.max_attempts, a.retry_delay, a.circuit_breaker) == (
            b.strategy, b.max_attempts, b.retry_delay, b.circuit_breaker), name
        entry = rb.parse_ref(name)
        plan_b = [str(s) for s in rb.plan_chain(entry)]
        plan_a = [str(s) for s in ra.plan_chain(ra.parse_ref(kubernetes_name(name)))]
        assert [s.replace("_", "-") for s in plan_b] == [s.replace("_", "-") for s in plan_a]


def test_invalid_input_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("task_groups:\n  g:\n    e1: {models: [x]}\n")
    out = tmp_path / "out"
    assert main(["migrate", str(bad), "-o", str(out)]) == 1
    assert not out.exists()
    assert "no model catalog" in capsys.readouterr().err
