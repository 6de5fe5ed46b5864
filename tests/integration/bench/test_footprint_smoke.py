"""`python -m bench footprint` starts sidecars, holds streams and reports (never a timing
assertion: what it measures depends on the machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow


def test_footprint_reports_ready_time_idle_rss_and_rss_with_open_streams(tmp_path: Path) -> None:
    out = tmp_path / "footprint.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "footprint", "--runs", "1", "--streams", "20",
         "--stream-chunks", "50", "--chunk-delay-ms", "50", "--settle", "0.2",
         "--config", "configs/llms", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    [(label, result)] = report["configs"].items()
    assert label == "configs/llms" and not result["failures"]
    assert result["ready_s"]["median"] > 0 and result["idle_rss_mb"]["median"] > 0
    assert report["floor"]["idle_rss_mb"]["median"] > 0
    steps = [s["idle_rss_mb"]["median"] for s in report["floor_steps"]]
    assert len(steps) == 5 and all(v > 0 for v in steps)
    assert steps[-1] > steps[0]  # importing aiohttp, pydantic and the rest costs memory
    streams = report["streams"]
    assert streams["opened"] == 20 and streams["errors"] == 0 and streams["rss_mb"] > 0
    assert 0 <= streams["open_at_sample"] <= 20
    assert {t["what"] for t in report["targets"]} == {"ready_s", "idle_rss_mb"}
    inside = report["in_image"]  # the image scripts/build-images wrote, unpacked: or why not
    if "skipped" in inside:
        assert inside["skipped"], inside
    else:
        [(label, result)] = inside["configs"].items()
        assert label == "configs/llms" and not result["failures"], result
        assert result["ready_s"]["median"] > 0 and result["idle_rss_mb"]["median"] > 0
        assert inside["user"] == "65532:65532"
        assert "in the image: configs/llms" in {t["config"] for t in report["targets"]}
        assert "The same starts inside the image" in proc.stdout
    assert "| configs/llms |" in proc.stdout
    assert "| + asyncio, ssl, uvloop |" in proc.stdout and "above the floor" in proc.stdout


def test_the_full_run_carries_the_footprint_section_with_the_image_size(tmp_path: Path) -> None:
    """`python -m bench --sections footprint`: the report's footprint section, and the sidecar
    image's size read from what scripts/build-images wrote."""
    from bench import footprint
    from bench.harness.report_scale import footprint_section

    images = tmp_path / "images"
    images.mkdir()
    assert footprint.image_size(images) is None
    (images / "echelon-sidecar-0.1.0.json").write_text(json.dumps(
        {"name": "localhost/echelon-sidecar:0.1.0", "size": 216_780_800,
         "compressed": 75_440_833}))
    assert footprint.image_size(images) == {"name": "localhost/echelon-sidecar:0.1.0",
                                            "size_mb": 216.8, "compressed_mb": 75.4}
    assert footprint_section({}) == []
    skipped = footprint_section({"footprint": {"skipped": "the footprint benchmark failed"}})
    assert "Not measured: the footprint benchmark failed" in skipped
