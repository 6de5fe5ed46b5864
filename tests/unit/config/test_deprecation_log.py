"""A config that loads with global_fallback is logged at WARNING, once per load, besides the
validation warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from echelon_operator.cli import main
from echelon_sidecar.config import load_config, load_config_text

from .conftest import CATALOG, REPO

WITH_GLOBAL_FALLBACK = """
task_groups:
  g: {e1: {models: [m-openai]}}
global_fallback:
  max_attempts: 3
""" + CATALOG


def deprecations(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "echelon.config" and "global_fallback is deprecated" in r.getMessage()]


def test_loading_a_config_with_global_fallback_logs_one_deprecation_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="echelon.config")
    loaded = load_config_text(WITH_GLOBAL_FALLBACK, "combined.yaml")
    (record,) = deprecations(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("combined.yaml:4: global_fallback is deprecated")
    assert "echelon migrate" in record.getMessage()
    assert any("global_fallback is deprecated" in w.message for w in loaded.warnings)


def test_each_load_logs_the_deprecation_once(caplog: pytest.LogCaptureFixture,
                                             tmp_path: Path) -> None:
    caplog.set_level(logging.WARNING, logger="echelon.config")
    path = tmp_path / "config.yaml"
    path.write_text(WITH_GLOBAL_FALLBACK)
    load_config(path)
    load_config(tmp_path)
    assert len(deprecations(caplog)) == 2
    assert all(str(path) in r.getMessage() for r in deprecations(caplog))


def test_a_config_without_global_fallback_logs_no_deprecation(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="echelon.config")
    load_config(REPO / "configs/llms")
    assert not [r for r in caplog.records if r.name == "echelon.config"]


def test_validate_lists_the_deprecation_without_logging_it_again(
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.WARNING, logger="echelon.config")
    assert main(["validate", str(REPO / "configs/_task_groups.yaml")]) == 0
    assert "global_fallback is deprecated" in capsys.readouterr().out
    assert not deprecations(caplog)
