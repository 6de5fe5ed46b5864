"""Global config (model catalog, workflow nodes, concurrency control, global rate limiting).

It lives in ConfigMaps labelled ``echelon.dev/config: global``: the one in the operator's own
namespace (from the Helm chart's values) and those in a pool's namespace, merged so that the
namespace's entries win by id (models, workflow nodes) or as a whole (concurrency control,
rate limiting). Values are YAML documents under keys ending in ``.yaml``/``.yml``/``.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from echelon_sidecar.config import ConcurrencyControl, ModelEntry, RateLimiting, WorkflowNode

__all__ = ["GlobalConfig", "merge_global_configs", "parse_global_configmap"]

_SECTIONS: dict[str, str] = {
    "models": "models",
    "workflow_nodes": "workflow_nodes",
    "workflowNodes": "workflow_nodes",
    "concurrency_control": "concurrency_control",
    "concurrencyControl": "concurrency_control",
    "rate_limiting": "rate_limiting",
    "rateLimiting": "rate_limiting",
}
_ENTRY_MODELS: dict[str, type[BaseModel]] = {"models": ModelEntry, "workflow_nodes": WorkflowNode}
_SINGLE_MODELS: dict[str, type[BaseModel]] = {
    "concurrency_control": ConcurrencyControl,
    "rate_limiting": RateLimiting,
}
_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class GlobalConfig:
    """The global sections as written (raw mappings, validated again with each pool's config)."""

    models: Mapping[str, Any] = field(default_factory=dict)
    workflow_nodes: Mapping[str, Any] = field(default_factory=dict)
    concurrency_control: Any = None
    rate_limiting: Any = None
    #: where it came from, e.g. ("ConfigMap echelon-system/echelon-global-config",)
    sources: tuple[str, ...] = ()


def parse_global_configmap(
    namespace: str, name: str, data: Mapping[str, str] | None
) -> tuple[GlobalConfig, list[str]]:
    """One labelled ConfigMap's sections, and the problems found in it (as messages)."""
    label = f"ConfigMap {namespace}/{name}"
    problems: list[str] = []
    sections: dict[str, Any] = {"models": {}, "workflow_nodes": {}}
    for key in sorted(data or {}):
        if not key.endswith(_SUFFIXES):
            continue
        where = f"{label}, key {key}"
        try:
            doc = yaml.safe_load((data or {})[key])
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            problems.append(f"{where}{line}: not valid YAML: {getattr(exc, 'problem', exc)}")
            continue
        if doc is None:
            continue
        if not isinstance(doc, dict):
            problems.append(f"{where}: expected a mapping of sections, not {type(doc).__name__}")
            continue
        for raw_section, value in doc.items():
            section = _SECTIONS.get(str(raw_section))
            if section is None:
                problems.append(
                    f"{where}: section {raw_section!r} is not global config and is ignored "
                    f"(allowed: models, workflow_nodes, concurrency_control, rate_limiting; task "
                    "groups and pools are TaskGroup and PollingPool resources)"
                )
                continue
            if section in _ENTRY_MODELS:
                if value is None:
                    continue
                if not isinstance(value, dict):
                    problems.append(f"{where}: {raw_section} must be a mapping of id -> settings")
                    continue
                for entry_id, body in value.items():
                    problems.extend(_check(_ENTRY_MODELS[section], body,
                                           f"{where}: {section}.{entry_id}"))
                    sections[section][str(entry_id)] = body
            else:
                problems.extend(_check(_SINGLE_MODELS[section], value, f"{where}: {section}"))
                sections[section] = value
    return GlobalConfig(sources=(label,), **sections), problems


def _check(model: type[BaseModel], body: Any, where: str) -> list[str]:
    try:
        model.model_validate(body)
    except ValidationError as exc:
        out = []
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            out.append(f"{where}{'.' + loc if loc else ''}: {err['msg']}")
        return out
    return []


def merge_global_configs(configs: Iterable[GlobalConfig]) -> GlobalConfig:
    """Later configs win: models and nodes by id, the single sections as a whole."""
    models: dict[str, Any] = {}
    nodes: dict[str, Any] = {}
    concurrency: Any = None
    rate: Any = None
    sources: list[str] = []
    for cfg in configs:
        models.update(cfg.models)
        nodes.update(cfg.workflow_nodes)
        if cfg.concurrency_control is not None:
            concurrency = cfg.concurrency_control
        if cfg.rate_limiting is not None:
            rate = cfg.rate_limiting
        sources.extend(cfg.sources)
    return GlobalConfig(models, nodes, concurrency, rate, tuple(sources))
