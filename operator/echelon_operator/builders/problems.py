"""Say where a problem is in the user's own terms: the resource and its field path.

Validation runs on the rendered combined config, whose paths look like
``task_groups.thinking-group.echelon1.models[0]``. Users wrote a TaskGroup manifest, so that
becomes ``TaskGroup thinking-group spec.echelons.echelon1.models[0]``; global config keeps its
own (snake_case) paths under ``global config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from echelon_sidecar.config import Problem, format_path
from echelon_sidecar.config.naming import camel_path

__all__ = ["describe_problem", "problem_subject"]

_KINDS = {"task_groups": "TaskGroup", "polling_pools": "PollingPool"}
_GLOBAL = ("models", "workflow_nodes", "concurrency_control", "rate_limiting")


def problem_subject(problem: Problem) -> tuple[str, str] | None:
    """``(kind, name)`` of the resource a problem is about, if it is a TaskGroup/PollingPool."""
    path = problem.path
    if len(path) >= 2 and path[0] in _KINDS:
        return _KINDS[str(path[0])], str(path[1])
    return None


def describe_problem(problem: Problem, config: Mapping[str, Any] | None = None) -> str:
    """``TaskGroup a spec.fallbackConfig.fallbackGroups[0]: reference 'x' names no ... (hint)``."""
    path = problem.path
    where: str
    if len(path) >= 2 and path[0] in _KINDS:
        kind, name, rest = _KINDS[str(path[0])], str(path[1]), list(path[2:])
        if kind == "TaskGroup" and rest and isinstance(rest[0], str) and config is not None:
            tiers = ((config.get("task_groups") or {}).get(name) or {}).get("echelons") or {}
            if rest[0] in tiers:
                rest.insert(0, "echelons")
        parts = list(camel_path(rest))
        where = f"{kind} {name}" + (f" {format_path(('spec', *parts))}" if parts else "")
    elif path and path[0] in _GLOBAL:
        where = f"global config {format_path(path)}"
    elif path:
        where = f"config {format_path(path)}"
    else:
        where = "config"
    text = f"{where}: {problem.message}"
    if problem.hint:
        text += f" ({problem.hint})"
    return text
