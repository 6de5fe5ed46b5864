"""Shared inputs for the operator's unit tests: the sample manifests of configs/k8s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from echelon_operator.builders import GlobalConfig, parse_global_configmap
from echelon_sidecar.config import PollingPoolSpec, TaskGroupSpec

K8S_SAMPLES = Path(__file__).resolve().parents[3] / "configs" / "k8s"


def load_samples() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S_SAMPLES.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies it."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


@pytest.fixture
def samples() -> list[dict[str, Any]]:
    return load_samples()


@pytest.fixture
def groups(samples: list[dict[str, Any]]) -> dict[str, TaskGroupSpec]:
    return {d["metadata"]["name"]: TaskGroupSpec.model_validate(d["spec"])
            for d in samples if d["kind"] == "TaskGroup"}


@pytest.fixture
def pools(samples: list[dict[str, Any]]) -> dict[str, PollingPoolSpec]:
    return {d["metadata"]["name"]: PollingPoolSpec.model_validate(d["spec"])
            for d in samples if d["kind"] == "PollingPool"}


@pytest.fixture
def global_cfg(samples: list[dict[str, Any]]) -> GlobalConfig:
    cm = next(d for d in samples if d["kind"] == "ConfigMap")
    cfg, problems = parse_global_configmap("ns", cm["metadata"]["name"], cm["data"])
    assert problems == []
    return cfg


@pytest.fixture
def deployment(samples: list[dict[str, Any]]) -> dict[str, Any]:
    dep = next(d for d in samples if d["kind"] == "Deployment")
    dep["metadata"]["namespace"] = "ns"
    dep["metadata"]["resourceVersion"] = "41"
    return dep
