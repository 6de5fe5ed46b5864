"""Load a config from combined files, per-group / per-pool trees or Kubernetes manifests.

Every input lands in the same :class:`EchelonConfig`. Problems name the file, the line, the
field path and what is expected; nothing is silently ignored.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from .base import canonical_name
from .catalog import ModelEntry
from .deprecation import log_deprecated
from .fallback import GlobalFallback
from .groups import TaskGroup, TaskGroupSpec
from .limits import ConcurrencyControl, RateLimiting
from .nodes import WorkflowNode
from .pools import PollingPool, PollingPoolSpec
from .problems import Problem
from .pydantic_errors import problems_from_validation
from .root import EchelonConfig, SidecarSettings
from .salvage import salvage
from .yamlio import LineMap, read_yaml_documents

__all__ = [
    "API_GROUP",
    "GLOBAL_CONFIG_LABEL",
    "LoadedConfig",
    "Origin",
    "config_files",
    "load_config",
    "load_config_text",
]

API_GROUP = "echelon.dev"
#: A ConfigMap with this label holds global config (models, workflow_nodes, ...) as YAML values.
GLOBAL_CONFIG_LABEL = "echelon.dev/config"

ENTITY_SECTIONS: dict[str, type[BaseModel]] = {
    "task_groups": TaskGroup,
    "polling_pools": PollingPool,
    "workflow_nodes": WorkflowNode,
    "models": ModelEntry,
}
SINGLE_SECTIONS: dict[str, type[BaseModel]] = {
    "global_fallback": GlobalFallback,
    "concurrency_control": ConcurrencyControl,
    "rate_limiting": RateLimiting,
    "sidecar": SidecarSettings,
}
_ALIASES = {
    "taskGroups": "task_groups",
    "pollingPools": "polling_pools",
    "workflowNodes": "workflow_nodes",
    "globalFallback": "global_fallback",
    "concurrencyControl": "concurrency_control",
    "rateLimiting": "rate_limiting",
}
_BARE_FILES = {
    "global_fallback": "global_fallback",
    "models": "models",
    "nodes": "workflow_nodes",
    "workflow_nodes": "workflow_nodes",
    "concurrency_control": "concurrency_control",
    "rate_limiting": "rate_limiting",
}
_YAML_SUFFIXES = (".yaml", ".yml", ".json")

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Origin:
    """Where an entity was declared: file, path of the entity inside it, and its lines."""

    source: str
    prefix: Path_
    lines: LineMap | None
    label: str | None = None

    def problem(self, message: str, rel: Path_ = (), *, severity: str = "error",
                hint: str | None = None) -> Problem:
        path = (*self.prefix, *rel)
        line = self.lines.line_of(path) if self.lines else None
        source = f"{self.source} ({self.label})" if self.label else self.source
        return Problem(message, path, source, line, severity, hint)  # type: ignore[arg-type]


@dataclass
class LoadedConfig:
    """A validated config with its warnings and where each entity came from."""

    config: EchelonConfig
    warnings: list[Problem]
    origins: dict[tuple[str, str], Origin]
    sources: list[str]
    ignored: list[str] = field(default_factory=list)

    @property
    def version(self) -> str:
        dumped = self.config.model_dump(mode="json", exclude_none=True)
        return hashlib.sha256(orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


@dataclass
class _Collector:
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    singles: dict[str, Any] = field(default_factory=dict)
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)
    manifest: dict[tuple[str, str], bool] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add_entity(self, section: str, name: Any, data: Any, origin: Origin,
                   manifest: bool = False) -> None:
        if not isinstance(name, str) or not name:
            self.problems.append(origin.problem(f"name {name!r} must be a non-empty string"))
            return
        table = self.raw.setdefault(section, {})
        clash = next((n for n in table if canonical_name(n) == canonical_name(name)), None)
        if clash is not None:
            first = self.origins[(section, clash)]
            self.problems.append(origin.problem(
                f"{_singular(section)} {name!r} is declared twice",
                hint=f"first declared in {first.source}"
                + (f":{first.lines.line_of(first.prefix)}" if first.lines else "")
                + ("; '_' and '-' are the same in names" if clash != name else ""),
            ))
            return
        table[name] = data
        self.origins[(section, name)] = origin
        self.manifest[(section, name)] = manifest

    def add_single(self, section: str, data: Any, origin: Origin) -> None:
        if section in self.singles:
            first = self.origins[(section, "")]
            self.problems.append(origin.problem(
                f"{section} is given twice", hint=f"first given in {first.source}"
            ))
            return
        self.singles[section] = data
        self.origins[(section, "")] = origin


def config_files(path: Path) -> list[Path]:
    """The YAML/JSON files of ``path`` (a file, or a directory searched recursively).

    Hidden names are skipped, which also skips the ``..data`` machinery of ConfigMap volumes
    while following their visible symlinks.
    """
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(
            [Problem(f"no such file or directory: {path}", source=str(path))],
            f"cannot load config from {path}",
        )
    found: list[Path] = []
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            found.extend(config_files(child))
        elif child.suffix in _YAML_SUFFIXES:
            found.append(child)
    return found


def load_config(paths: Path | str | Sequence[Path | str], *,
                log_deprecations: bool = True) -> LoadedConfig:
    """Load and validate one config made of every given file and directory.

    A config that loads with a deprecated section (``global_fallback``) is also logged at
    WARNING on the ``echelon.config`` logger, once per load -- what a sidecar's operator sees
    in its logs. A caller that reports ``warnings`` itself (``echelon validate``) passes
    ``log_deprecations=False``.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    collector = _Collector()
    for given in paths:
        for file in config_files(Path(given)):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                collector.problems.append(Problem(f"cannot read file: {exc}", source=str(file)))
                continue
            _collect_text(collector, text, str(file), file)
    return _finish(collector, log_deprecations)


def load_config_text(text: str, source: str = "<text>", *,
                     log_deprecations: bool = True) -> LoadedConfig:
    """Load and validate a config from YAML text (one combined document stream); see
    :func:`load_config` for ``log_deprecations``."""
    collector = _Collector()
    _collect_text(collector, text, source, None)
    return _finish(collector, log_deprecations)


# -- collecting ------------------------------------------------------------------------------

def _collect_text(c: _Collector, text: str, source: str, file: Path | None) -> None:
    c.sources.append(source)
    try:
        docs = read_yaml_documents(text, source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML forbids: no mark
            line = text.count("\n", 0, exc.position) + 1
            char = exc.character
            shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
            reason = f"the control character {shown} is not allowed in YAML"
        c.problems.append(Problem(f"not valid YAML: {reason}", (), source, line))
        return
    for doc in docs:
        _collect_document(c, doc.data, doc.lines, source, file)


def _collect_document(c: _Collector, data: Any, lines: LineMap, source: str,
                      file: Path | None) -> None:
    if not isinstance(data, dict):
        c.problems.append(Problem(
            f"a config document must be a mapping, not {type(data).__name__}", (), source, 1
        ))
        return
    if "apiVersion" in data and "kind" in data:
        _collect_manifest(c, data, lines, source)
        return
    keys = {_ALIASES.get(k, k) for k in data}
    parts = file.parent.parts if file is not None else ()
    stem = file.stem if file is not None else ""
    # a per-group / per-pool file, unless it is a combined file kept in that folder
    if "groups" in parts and "task_groups" not in keys:
        name = data.get("name", stem)
        c.add_entity("task_groups", name, data, Origin(source, (), lines))
    elif ("polling_pools" in parts or "pools" in parts) and "polling_pools" not in keys:
        name = data.get("name", stem)
        c.add_entity("polling_pools", name, data, Origin(source, (), lines))
    elif keys & (ENTITY_SECTIONS.keys() | SINGLE_SECTIONS.keys()):
        _collect_combined(c, data, lines, source)
    elif stem not in _BARE_FILES and any(
        difflib.get_close_matches(str(k), list(ENTITY_SECTIONS) + list(SINGLE_SECTIONS), n=1)
        for k in data
    ):
        _collect_combined(c, data, lines, source)  # reports each unknown key with a suggestion
    elif stem in _BARE_FILES:
        section = _BARE_FILES[stem]
        _collect_combined(c, {section: data}, _shift(lines, section), source)
    else:
        c.problems.append(Problem(
            "cannot tell what this document holds",
            (), source, 1,
            hint="expected top-level task_groups / polling_pools / models / workflow_nodes / "
            "global_fallback, a TaskGroup or PollingPool manifest, or a file under groups/ or "
            "polling_pools/",
        ))


def _collect_combined(c: _Collector, data: dict[str, Any], lines: LineMap, source: str) -> None:
    for key, value in data.items():
        section = _ALIASES.get(key, key)
        origin = Origin(source, (key,), lines)
        if section in ENTITY_SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                c.problems.append(origin.problem(
                    f"{key} must be a mapping of name -> settings, not {type(value).__name__}"
                ))
                continue
            for name, body in value.items():
                c.add_entity(section, name, body, Origin(source, (key, name), lines))
        elif section in SINGLE_SECTIONS:
            c.add_single(section, value, origin)
        else:
            known = sorted(set(ENTITY_SECTIONS) | set(SINGLE_SECTIONS))
            close = difflib.get_close_matches(str(key), known, n=1)
            c.problems.append(origin.problem(
                f"unknown top-level key {key!r}",
                hint=f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(known)}",
            ))


def _collect_manifest(c: _Collector, data: dict[str, Any], lines: LineMap, source: str) -> None:
    kind, api = data.get("kind"), str(data.get("apiVersion", ""))
    if kind == "List" and isinstance(data.get("items"), list):
        for index, item in enumerate(data["items"]):
            if isinstance(item, dict):
                _collect_manifest(c, item, _shift(lines, "items", index), source)
        return
    meta = data.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    label = f"{kind} {name}"
    if kind in ("TaskGroup", "PollingPool") and api.startswith(API_GROUP + "/"):
        if api != f"{API_GROUP}/v1alpha1":
            c.problems.append(Problem(
                f"apiVersion {api!r} is not served; use {API_GROUP}/v1alpha1", ("apiVersion",),
                source, lines.line_of(("apiVersion",)),
            ))
            return
        section = "task_groups" if kind == "TaskGroup" else "polling_pools"
        spec = data.get("spec")
        origin = Origin(source, ("spec",), lines, label)
        if not isinstance(spec, dict):
            c.problems.append(origin.problem("spec must be a mapping"))
            return
        c.add_entity(section, name, spec, origin, manifest=True)
        return
    if kind == "ConfigMap" and isinstance(meta, dict):
        labels = meta.get("labels") or {}
        if isinstance(labels, dict) and labels.get(GLOBAL_CONFIG_LABEL) == "global":
            values = data.get("data") or {}
            if not isinstance(values, dict):
                c.problems.append(Problem(
                    f"data of ConfigMap {name} must be a mapping of key -> YAML text, not "
                    f"{type(values).__name__}", ("data",), source, lines.line_of(("data",))))
                return
            for key, text in values.items():
                if str(key).endswith(_YAML_SUFFIXES) and isinstance(text, str):
                    _collect_text(c, text, f"{source} (ConfigMap {name}, key {key})", None)
            return
    c.ignored.append(f"{source}: {kind} {name}")


def _shift(lines: LineMap, *prefix: str | int) -> LineMap:
    """Line map of a sub-document re-rooted under ``prefix`` (or out of ``items[i]``)."""
    if prefix and prefix[0] == "items":
        n = len(prefix)
        return LineMap({p[n:]: ln for p, ln in lines.lines.items() if p[:n] == prefix})
    return LineMap({(*prefix, *p): ln for p, ln in lines.lines.items()})


# -- validating ------------------------------------------------------------------------------

def _finish(c: _Collector, log_deprecations: bool = True) -> LoadedConfig:
    from .validate import cross_check

    problems = list(c.problems)
    sections: dict[str, Any] = {}
    broken: dict[str, set[str]] = {}
    salvaged: set[tuple[str, str]] = set()
    for section, model in ENTITY_SECTIONS.items():
        built: dict[str, Any] = {}
        for name, data in c.raw.get(section, {}).items():
            origin = c.origins[(section, name)]
            use: type[BaseModel] = model
            if c.manifest.get((section, name)):
                use = TaskGroupSpec if model is TaskGroup else PollingPoolSpec
            try:
                value = use.model_validate(data)
            except ValidationError as exc:
                found = problems_from_validation(
                    exc, use, source=_src(origin), prefix=origin.prefix, lines=origin.lines
                )
                if use is TaskGroup and isinstance(data, dict) and "echelons" not in data:
                    found = [_inline_tier_path(p, origin) for p in found]
                problems.extend(found)
                repaired = salvage(use, data, exc)
                if repaired is None:
                    broken.setdefault(section, set()).add(canonical_name(str(name)))
                    continue
                value = repaired
                salvaged.add((section, name))
            if use is TaskGroupSpec:
                value = TaskGroup.model_validate(value.model_dump(exclude_unset=True))
            elif use is PollingPoolSpec:
                value = PollingPool.model_validate(value.model_dump(exclude_unset=True))
            built[name] = value
        sections[section] = built
    for section, model in SINGLE_SECTIONS.items():
        if section not in c.singles:
            continue
        origin = c.origins[(section, "")]
        try:
            sections[section] = model.model_validate(c.singles[section])
        except ValidationError as exc:
            problems.extend(problems_from_validation(
                exc, model, source=_src(origin), prefix=origin.prefix, lines=origin.lines
            ))
    # Cross-checks run even when some entities failed their schema (on what could be salvaged),
    # so one run lists every problem; references to a lost entity are not reported as dangling.
    try:
        config = EchelonConfig.model_validate(sections)
    except ValidationError:
        raise ConfigError(_sorted(problems), _summary(problems)) from None
    problems.extend(cross_check(config, c.origins, c.manifest, broken, salvaged))
    if any(p.is_error for p in problems):
        raise ConfigError(_sorted(problems), _summary(problems))
    if log_deprecations:
        log_deprecated(config, c.origins)
    return LoadedConfig(config, _sorted(problems), c.origins, c.sources, c.ignored)


def _inline_tier_path(problem: Problem, origin: Origin) -> Problem:
    """Tiers written inline (source format) are reported without the ``echelons`` step."""
    n = len(origin.prefix)
    if problem.path[n:n + 1] != ("echelons",):
        return problem
    path = (*problem.path[:n], *problem.path[n + 1:])
    line = origin.lines.line_of(path) if origin.lines else problem.line
    return replace(problem, path=path, line=line)


def _src(origin: Origin) -> str:
    return f"{origin.source} ({origin.label})" if origin.label else origin.source


def _summary(problems: Iterable[Problem]) -> str:
    errors = sum(1 for p in problems if p.is_error)
    return f"invalid configuration: {errors} error(s)"


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.severity != "error", p.source or "", p.line or 0))


def _singular(section: str) -> str:
    return {"task_groups": "task group", "polling_pools": "polling pool",
            "workflow_nodes": "workflow node", "models": "model"}.get(section, section)
