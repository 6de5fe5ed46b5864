"""`python -m bench --render RESULTS --merge LATER`: a later run's sections replace the earlier
run's, and the report says which sections come from which run."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from bench.harness import cli

#: the newest full run on record: a real results file, as the report reads it
RESULTS = sorted((Path(__file__).resolve().parents[3] / "bench" / "results").glob(
    "20[0-9][0-9]-[0-9][0-9]-[0-9][0-9].json"))[-1]


def _later(base: dict[str, Any], sections: list[str]) -> dict[str, Any]:
    later = copy.deepcopy(base)
    later["meta"].update(started="2026-12-03T00:00:00+0000", wall_s=1234.0,
                         command="python -m bench --full --sections " + ",".join(sections),
                         notes=["The relay changed."])
    later["meta"]["plan"]["sections"] = sections
    later["paced"]["points"]["openai"]["200"]["echelon"]["server_cpu_ms_per_1000_chunks"] = 1.5
    later["closed"] = "a later run's main section is not taken"
    return later


def _without(runs: list[dict[str, Any]], sections: set[str]) -> list[dict[str, Any]]:
    """The earlier runs as a later run measuring ``sections`` leaves them."""
    kept = [{**r, "sections": [s for s in r["sections"] if s not in sections]} for r in runs]
    return [r for r in kept if r["sections"]]


def test_the_later_sections_replace_the_earlier_and_the_report_says_so(tmp_path: Path) -> None:
    base = json.loads(RESULTS.read_text())
    results, later = tmp_path / "results.json", tmp_path / "later.json"
    results.write_text(json.dumps(base))
    later.write_text(json.dumps(_later(base, ["paced", "footprint"])))
    doc = tmp_path / "benchmarks.md"
    assert cli.main(["--render", str(results), "--merge", str(later), "--doc", str(doc)]) == 0
    merged = json.loads(results.read_text())
    point = merged["paced"]["points"]["openai"]["200"]["echelon"]
    assert point["server_cpu_ms_per_1000_chunks"] == 1.5
    assert merged["closed"] == base["closed"]
    assert merged["meta"]["started"] == base["meta"]["started"]
    *earlier, again = merged["meta"]["remeasured"]
    assert earlier == _without(base["meta"].get("remeasured", []), {"paced", "footprint"})
    assert again["sections"] == ["paced", "footprint"]
    text = doc.read_text()
    assert ("its paced-streams, footprint sections measured again in a later run, "
            "2026-12-03T00:00:00+0000 (1234 s)") in text
    assert "python -m bench --full --sections paced,footprint" in text
    assert "- The relay changed." in text


def test_merging_the_same_later_run_again_lists_it_once(tmp_path: Path) -> None:
    base = json.loads(RESULTS.read_text())
    results, later = tmp_path / "results.json", tmp_path / "later.json"
    results.write_text(json.dumps(base))
    later.write_text(json.dumps(_later(base, ["tls"])))
    for _ in range(2):
        assert cli.main(["--render", str(results), "--merge", str(later),
                         "--doc", str(tmp_path / "b.md")]) == 0
    runs = json.loads(results.read_text())["meta"]["remeasured"]
    assert runs[:-1] == _without(base["meta"].get("remeasured", []), {"tls"})
    assert runs[-1]["command"] == "python -m bench --full --sections tls"


def test_each_section_is_credited_to_the_last_run_that_measured_it(tmp_path: Path) -> None:
    base = json.loads(RESULTS.read_text())
    base["meta"]["remeasured"] = []
    results, doc = tmp_path / "results.json", tmp_path / "b.md"
    results.write_text(json.dumps(base))
    first, second = _later(base, ["paced", "tls"]), _later(base, ["tls"])
    second["meta"].update(started="2026-12-04T00:00:00+0000", wall_s=99.0,
                          command="python -m bench --full --sections tls")
    for n, later in enumerate([first, second]):
        path = tmp_path / f"later{n}.json"
        path.write_text(json.dumps(later))
        assert cli.main(["--render", str(results), "--merge", str(path), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert ("; its paced-streams section measured again in a later run, "
            "2026-12-03T00:00:00+0000 (1234 s), the second command below; its TLS section "
            "measured again in a later run, 2026-12-04T00:00:00+0000 (99 s), the third command "
            "below.") in text


def test_a_run_whose_sections_were_all_measured_again_is_no_longer_listed(
        tmp_path: Path) -> None:
    base = json.loads(RESULTS.read_text())
    base["meta"]["remeasured"] = []
    results, doc = tmp_path / "results.json", tmp_path / "b.md"
    results.write_text(json.dumps(base))
    first, second = _later(base, ["tls", "footprint"]), _later(base, ["footprint", "tls"])
    first["meta"]["notes"] = ["The first later run's note."]
    second["meta"].update(started="2026-12-04T00:00:00+0000", wall_s=99.0,
                          command="python -m bench --full --sections footprint,tls",
                          notes=["The second later run's note."])
    for n, later in enumerate([first, second]):
        path = tmp_path / f"later{n}.json"
        path.write_text(json.dumps(later))
        assert cli.main(["--render", str(results), "--merge", str(path), "--doc", str(doc)]) == 0
    (only,) = json.loads(results.read_text())["meta"]["remeasured"]
    assert only["command"] == "python -m bench --full --sections footprint,tls"
    text = doc.read_text()
    assert "The first later run's note." not in text
    assert "--sections tls,footprint" not in text
    assert "- The second later run's note." in text
    assert "the second command below" in text


def test_a_later_run_of_the_main_section_only_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = json.loads(RESULTS.read_text())
    results, later = tmp_path / "results.json", tmp_path / "later.json"
    results.write_text(json.dumps(base))
    later.write_text(json.dumps(_later(base, ["main"])))
    assert cli.main(["--render", str(results), "--merge", str(later),
                     "--doc", str(tmp_path / "b.md")]) == 2
    assert "measured none of the sections" in capsys.readouterr().err
    assert json.loads(results.read_text()) == base


def test_merge_needs_render(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--merge", "later.json"])
    assert "--merge goes with --render" in capsys.readouterr().err
