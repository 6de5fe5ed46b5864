"""`echelon crds`: CRDs generated from the config model; --check catches staleness, also of the
Helm chart's copies (files/crds/) and of its RBAC rules (files/rbac-rules.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from echelon_operator import rbac
from echelon_operator.cli import main
from echelon_operator.crds import CRD_FILES, build_crds, chart_dir_for, generated_files

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "echelon"


def test_committed_crds_match_the_model() -> None:
    assert main(["crds", "--check", "--output-dir", str(REPO / "crds")]) == 0


def test_the_repository_check_covers_the_charts_crd_copies_and_rbac_rules() -> None:
    assert chart_dir_for(REPO / "crds") == REPO / "charts" / "echelon"
    paths = set(generated_files(REPO / "crds"))
    assert {CHART / "files" / "crds" / name for name in CRD_FILES.values()} <= paths
    assert CHART / "files" / "rbac-rules.yaml" in paths


def _repo_layout(tmp_path: Path) -> tuple[Path, Path]:
    """A CRD dir with a chart beside it, like the repository's."""
    chart = tmp_path / "charts" / "echelon"
    chart.mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: echelon\nversion: 0.1.0\n")
    return tmp_path / "crds", chart


def test_crds_writes_the_charts_copies_identical_to_the_crds(tmp_path: Path) -> None:
    crds, chart = _repo_layout(tmp_path)
    assert main(["crds", "--output-dir", str(crds)]) == 0
    for name in CRD_FILES.values():
        assert (chart / "files" / "crds" / name).read_text() == (crds / name).read_text()
    assert main(["crds", "--check", "--output-dir", str(crds)]) == 0


def test_check_fails_when_the_charts_crd_copy_is_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crds, chart = _repo_layout(tmp_path)
    assert main(["crds", "--output-dir", str(crds)]) == 0
    copy = chart / "files" / "crds" / "pollingpools.echelon.dev.yaml"
    text = copy.read_text()
    copy.write_text(text.replace("plural: pollingpools", "plural: pollingpoolz"))
    assert copy.read_text() != text
    assert main(["crds", "--check", "--output-dir", str(crds)]) == 1
    assert str(copy) in capsys.readouterr().err
    copy.unlink()
    assert main(["crds", "--check", "--output-dir", str(crds)]) == 1


def test_check_fails_when_the_charts_rbac_rules_are_stale(tmp_path: Path) -> None:
    crds, chart = _repo_layout(tmp_path)
    assert main(["crds", "--output-dir", str(crds)]) == 0
    rules = chart / "files" / "rbac-rules.yaml"
    rules.write_text(rules.read_text().replace("- patch", "- delete", 1))
    assert main(["crds", "--check", "--output-dir", str(crds)]) == 1


def test_charts_rbac_rules_are_the_rbac_modules_rule_lists(tmp_path: Path) -> None:
    crds, chart = _repo_layout(tmp_path)
    assert main(["crds", "--output-dir", str(crds)]) == 0
    doc = yaml.safe_load((chart / "files" / "rbac-rules.yaml").read_text())
    assert doc == {"cluster": rbac.rules("cluster"), "namespaced": rbac.rules("namespaced"),
                   "cluster-peering": rbac.rules("cluster", peering=True),
                   "namespaced-peering": rbac.rules("namespaced", peering=True)}


def test_without_a_chart_beside_it_only_the_crds_are_written(tmp_path: Path) -> None:
    assert main(["crds", "--output-dir", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        [*CRD_FILES.values(), *(f"pre-1.25/{name}" for name in CRD_FILES.values()),
         "peering/kopfpeerings.kopf.dev.yaml", "peering/clusterkopfpeerings.kopf.dev.yaml"])


def test_the_pre_1_25_copies_are_the_crds_without_their_admission_rules(tmp_path: Path) -> None:
    assert main(["crds", "--output-dir", str(tmp_path)]) == 0
    for kind, name in CRD_FILES.items():
        with_rules = (tmp_path / name).read_text()
        without = yaml.safe_load((tmp_path / "pre-1.25" / name).read_text())
        assert "x-kubernetes-validations" in with_rules
        assert "x-kubernetes-validations" not in yaml.safe_dump(without)
        assert without["spec"]["names"] == build_crds()[kind]["spec"]["names"]


def test_check_fails_when_a_schema_changes_without_regenerating(tmp_path: Path) -> None:
    assert main(["crds", "--output-dir", str(tmp_path)]) == 0
    assert main(["crds", "--check", "--output-dir", str(tmp_path)]) == 0
    path = tmp_path / "taskgroups.echelon.dev.yaml"
    path.write_text(path.read_text().replace("maximum: 3600", "maximum: 7200"))
    assert main(["crds", "--check", "--output-dir", str(tmp_path)]) == 1


def test_check_fails_when_the_model_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["crds", "--output-dir", str(tmp_path)]) == 0
    from echelon_operator import crds

    original = crds.build_crds

    def changed() -> dict:
        out = original()
        spec = out["TaskGroup"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        spec["properties"]["spec"]["properties"]["newField"] = {"type": "string"}
        return out

    monkeypatch.setattr(crds, "build_crds", changed)
    assert main(["crds", "--check", "--output-dir", str(tmp_path)]) == 1


def _walk(schema: dict, path: str = "") -> list[str]:
    problems = []
    if "anyOf" in schema or "$ref" in schema or "oneOf" in schema:
        problems.append(path)
    if "type" not in schema and "x-kubernetes-preserve-unknown-fields" not in schema:
        problems.append(path + " (no type)")
    for name, sub in schema.get("properties", {}).items():
        problems += _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += _walk(schema["additionalProperties"], path + ".*")
    if isinstance(schema.get("items"), dict):
        problems += _walk(schema["items"], path + "[]")
    return problems


def test_schemas_are_structural_with_enums_bounds_and_descriptions() -> None:
    crds = build_crds()
    for crd in crds.values():
        version = crd["spec"]["versions"][0]
        schema = version["schema"]["openAPIV3Schema"]
        assert _walk(schema) == []
        assert version["subresources"] == {"status": {}}
        assert crd["spec"]["names"]["categories"] == ["echelon"]
    tg = crds["TaskGroup"]["spec"]["versions"][0]
    spec = tg["schema"]["openAPIV3Schema"]["properties"]["spec"]
    tier = spec["properties"]["echelons"]["additionalProperties"]
    assert tier["properties"]["timeout"]["exclusiveMinimum"] is True
    assert tier["properties"]["functionCalling"]["enum"] == ["required", "auto"]
    assert "description" in spec["properties"]["echelons"]
    strategy = spec["properties"]["fallbackConfig"]["properties"]["strategy"]
    assert set(strategy["enum"]) == {"echelon_down", "task_group_switch", "provider_failover",
                                     "model_rotate"}
    assert crds["TaskGroup"]["spec"]["names"]["shortNames"] == ["tg"]
    assert crds["PollingPool"]["spec"]["names"]["shortNames"] == ["pp"]
    columns = [c["name"] for c in tg["additionalPrinterColumns"]]
    assert columns == ["Tiers", "Strategy", "Open", "Ready", "Age"]
    pp_columns = [c["name"] for c in crds["PollingPool"]["spec"]["versions"][0][
        "additionalPrinterColumns"]]
    assert pp_columns == ["Groups", "Rotation", "Sidecars", "Open", "Ready", "Age"]
    yaml.safe_dump(crds)  # serialisable
