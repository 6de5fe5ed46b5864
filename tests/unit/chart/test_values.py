"""values.yaml: every key commented starting with its own name; ci/all-options-values.yaml sets
every key; the example catalog is the samples' catalog; no registry host anywhere."""

from __future__ import annotations

import re
from typing import Any

import yaml

from echelon_operator.builders.globalconfig import parse_global_configmap

from .helm import ALL_OPTIONS, CHART, REPO, one, render

VALUES = CHART / "values.yaml"
EXAMPLE_CATALOG = CHART / "examples" / "sample-catalog-values.yaml"
#: values whose inside is Kubernetes' own shape (resources, securityContext, ...): their keys
#: are commented as a block, not one by one
KUBERNETES_SHAPED = ("resources", "podSecurityContext", "securityContext")
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][A-Za-z0-9]*):")


def commented_keys() -> list[tuple[str, str, list[str]]]:
    """(dotted path, key, the comment block right above it) of each chart-defined key."""
    out = []
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in VALUES.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        match = KEY.match(line)
        if not match:
            comment = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parents = [key for _, key in stack]
        stack.append((indent, match["key"]))
        if not any(p in KUBERNETES_SHAPED for p in parents):
            out.append((".".join([*parents, match["key"]]), match["key"], comment))
        comment = []
    return out


def test_every_value_is_commented_starting_with_its_name() -> None:
    keys = commented_keys()
    assert len(keys) > 60
    for path, key, comment in keys:
        assert comment, f"{path} has no comment"
        first = comment[0]
        assert first.startswith((f"{key} ", f"{key}:", f"{path} ", f"{path}:")), (
            f"{path}: the comment should start with its name, not {first!r}")


def test_values_are_camel_case() -> None:
    for path, key, _ in commented_keys():
        assert re.fullmatch(r"[a-z][A-Za-z0-9]*", key), f"{path} is not camelCase"


def _leaves(values: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if isinstance(values, dict) and values:
        return {leaf for key, value in values.items() for leaf in _leaves(value, (*path, key))}
    return {path}


def test_all_options_values_set_every_value() -> None:
    defaults = yaml.safe_load(VALUES.read_text())
    options = yaml.safe_load(ALL_OPTIONS.read_text())
    missing = []
    for leaf in _leaves(defaults):
        node: Any = options
        for key in leaf:
            if not isinstance(node, dict) or key not in node:
                missing.append(".".join(leaf))
                break
            node = node[key]
    assert not missing, f"ci/all-options-values.yaml does not set: {missing}"


def test_example_catalog_is_the_samples_catalog() -> None:
    docs = render(values=[EXAMPLE_CATALOG])
    cm = one(docs, "ConfigMap")
    chart, problems = parse_global_configmap("echelon-system", "c", cm["data"])
    assert problems == []
    sample = yaml.safe_load((REPO / "configs" / "k8s" / "00-global-config.yaml").read_text())
    samples, problems = parse_global_configmap("default", "s", sample["data"])
    assert problems == []
    assert chart.models == samples.models
    assert chart.workflow_nodes == samples.workflow_nodes


REGISTRY_HOSTS = re.compile(
    r"docker\.io|ghcr\.io|quay\.io|registry\.k8s\.io|k8s\.gcr\.io|gcr\.io|public\.ecr\.aws|"
    r"\.azurecr\.io|registry\.gitlab\.com|mcr\.microsoft\.com|docker\.pkg\.github\.com")


def test_no_file_of_the_chart_names_a_registry_host() -> None:
    paths = [p for p in CHART.rglob("*") if p.is_file()]
    paths += [REPO / "operator" / "Dockerfile", REPO / "sidecar" / "Dockerfile",
              REPO / "docs" / "helm.md", REPO / "README.md"]
    for path in paths:
        found = REGISTRY_HOSTS.search(path.read_text())
        assert not found, f"{path.relative_to(REPO)} names {found.group(0)}"
