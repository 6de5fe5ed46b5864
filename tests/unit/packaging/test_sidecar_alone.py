"""The sidecar needs only its own distribution's dependencies and its own package: nothing of
the operator's or the demo's (kopf, kubernetes, openai, rich), and neither the operator's
package (echelon_operator) nor the tools' (echelon_tools), is imported, or needed, to run it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NOT_THE_SIDECARS = ("kopf", "kubernetes", "openai", "rich", "anthropic", "google")
# the project's packages the sidecar image does not hold (sidecar/Dockerfile copies only
# sidecar/echelon_sidecar)
NOT_THE_SIDECARS_PACKAGES = ("echelon_operator", "echelon_tools")
ABSENT = NOT_THE_SIDECARS + NOT_THE_SIDECARS_PACKAGES

# Runs in a fresh interpreter where importing any of those fails, as in the sidecar image: an
# environment that holds only `pip install echelon` of the sidecar's folder.
PROBE = f"""
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ABSENT!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not installed)")
        return None
sys.meta_path.insert(0, Absent())
import pkgutil, echelon_sidecar
from echelon_sidecar import cli
for info in pkgutil.walk_packages(echelon_sidecar.__path__, "echelon_sidecar."):
    __import__(info.name)
try:
    cli.main(["--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({ABSENT!r}))
print("LOADED", loaded)
"""


def test_the_sidecar_imports_and_starts_without_the_operator_or_the_tools() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED []" in done.stdout


def test_the_distributions_own_dependencies_are_the_sidecars() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split("==")[0].split(";")[0].strip().lower() for dep in project["dependencies"]}
    assert names.isdisjoint(NOT_THE_SIDECARS)
    extras = project["optional-dependencies"]
    assert {d.split("==")[0] for d in extras["operator"]} == {"kopf", "kubernetes"}
    assert {d.split("==")[0] for d in extras["demo"]} == {"openai", "rich"}
