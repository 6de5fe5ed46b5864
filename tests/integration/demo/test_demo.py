"""`echelon demo` runs end to end (a smoke check of the main job, not a timing test)."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_and_reports_fallbacks_and_circuits() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "echelon_operator.cli", "demo", "--requests", "30", "--no-live",
         "--concurrency", "3"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "summary: requests served per tier" in out
    assert "thinking_group.echelon2" in out  # echelon1 failing: served one tier down
    assert "closed -> open" in out  # a circuit opened
    assert "faults cleared" in out
    assert "Traceback" not in out + proc.stderr
