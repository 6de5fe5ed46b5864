"""The soak in the test suite: 30 s (``--soak-seconds`` or ``ECHELON_SOAK_SECONDS`` for longer;
the full mode is ``python -m tests.reliability.soak``, 600 s). See soak.py for what it proves."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from .soak import CONCURRENCY_LIMIT, RPM_LIMIT, run_soak


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_a_soak_with_flipping_faults_and_reloads_loses_nothing_and_leaks_nothing(
    soak_seconds: float, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    report = await run_soak(soak_seconds, folder=tmp_path)
    summary = json.dumps(report.to_json(), indent=1)
    assert not report.problems(), summary
    # the soak really exercised what it checks
    assert report.sent >= soak_seconds * report.rate * 0.9, summary
    assert report.answered["error"] and report.fault_flips >= soak_seconds / 2 - 2, summary
    assert report.max_in_flight_a == CONCURRENCY_LIMIT, "the tier's limit was reached"
    assert report.max_rpm_d == RPM_LIMIT or soak_seconds * 4 < RPM_LIMIT, summary
    unhandled = [r.getMessage() for r in caplog.records
                 if r.levelno >= logging.ERROR and r.name != "echelon.sidecar.reload"]
    assert not unhandled, unhandled[:5]
