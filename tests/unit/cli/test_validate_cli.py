"""`echelon validate`: exit 0 with a summary when valid, exit 1 with every problem when not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from echelon_operator.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_validate_accepts_every_example_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--quiet", str(REPO / "configs")]) == 0
    out = capsys.readouterr().out
    assert "OK " in out and "INVALID" not in out
    assert "configs/llms: 7 groups, 23 tiers, 6 pools, 4 nodes, 7 models" in out


def test_validate_lists_every_problem_and_exits_1(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "task_groups:\n"
        "  g:\n"
        "    e1: {models: [nope], timeout: 0}\n"
        "    e2: {models: [m], timout: 3}\n"
        "models:\n"
        "  m: {provider: openai, model: gpt-4o}\n"
    )
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"INVALID {bad}: 3 error(s)" in out
    assert "task_groups.g.e1.models[0]: model 'nope' is not in the model catalog" in out
    assert "task_groups.g.e1.timeout: 0 is out of range: expected a number > 0" in out
    assert "task_groups.g.e2.timout: unknown key 'timout'" in out


def test_a_file_inside_a_tree_is_validated_with_its_tree(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = REPO / "configs/llms/groups/thinking_group.yaml"
    assert main(["validate", str(path)]) == 0
    assert "configs/llms (holding" in capsys.readouterr().out


def test_strict_turns_warnings_into_failure() -> None:
    assert main(["validate", "--strict", str(REPO / "configs/_task_groups.yaml")]) == 1


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", str(REPO / "configs/k8s")]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["valid"] and entry["summary"].startswith("3 groups")


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("task_groups: [1, 2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "echelon_operator.cli", "validate", str(bad)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert "not valid YAML" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


def test_missing_path_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 1
    assert "no such file or directory" in capsys.readouterr().out


def test_quiet_counts_the_route_warnings_without_listing_them_and_exits_0(
        capsys: pytest.CaptureFixture[str]) -> None:
    combined = str(REPO / "configs/_task_groups.yaml")
    assert main(["validate", combined]) == 0
    listed = capsys.readouterr().out
    assert "polling_pools.single_turn_pool.task_groups: pool mixes tiers" in listed
    assert "polling_pools.execute_pool.task_groups: pool mixes tiers" in listed
    assert "polling_pools.high_concurrency_pool.rotation_strategy" in listed
    count = listed.splitlines()[0].rsplit("(", 1)[1]
    assert main(["validate", "--quiet", str(REPO / "configs")]) == 0
    quiet = capsys.readouterr().out
    assert f"OK {combined}: " in quiet and count in quiet
    assert "pool mixes tiers" not in quiet and "warning:" not in quiet
