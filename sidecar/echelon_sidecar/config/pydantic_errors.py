"""Turn pydantic's validation errors into Problems a user can act on."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from .problems import Problem
from .yamlio import LineMap

__all__ = ["problems_from_validation"]

Path = tuple[str | int, ...]


def problems_from_validation(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    source: str,
    prefix: Path,
    lines: LineMap | None,
) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc: Path = tuple(p for p in err["loc"] if not _is_union_tag(p))
        path = (*prefix, *loc)
        message, hint = _describe(err, model, loc)
        line = lines.line_of(path) if lines else None
        out.append(Problem(message, path, source, line, "error", hint))
    return out


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _describe(err: Any, model: type[BaseModel], loc: Path) -> tuple[str, str | None]:
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        allowed = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else (
            f"allowed keys: {', '.join(sorted(allowed))}" if allowed else None
        )
        return f"unknown key {key!r}", hint
    if kind == "missing":
        return "required key is missing", None
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()), "?")
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"{value!r} is out of range: expected a number {op} {bound}", None
    if kind == "literal_error":
        return f"{value!r} is not allowed: expected {ctx.get('expected', '?')}", None
    if kind in ("too_short", "too_long"):
        return f"{err['msg'].lower()}", None
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "model_attributes_type":
        expected = {
            "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "an integer",
            "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
            "bool_type": "true or false", "string_type": "a string", "list_type": "a list",
            "dict_type": "a mapping", "model_type": "a mapping",
            "model_attributes_type": "a mapping",
        }.get(kind, err["msg"].lower().replace("input should be ", ""))
        return f"{value!r} has the wrong type: expected {expected}", None
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match the pattern {ctx.get('pattern')}", None
    if kind == "value_error":
        msg = str(err["msg"]).removeprefix("Value error, ")
        return msg, None
    if kind == "assertion_error":
        return str(err["msg"]).removeprefix("Assertion failed, "), None
    return f"{err['msg']} (got {value!r})", None


def _fields_at(model: type[BaseModel], loc: Path) -> list[str]:
    """Field names of the model found by walking ``loc`` (best effort)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None:
            return []
        info = next(
            (f for n, f in fields.items() if part in (n, f.alias)), None
        )
        if info is None:
            # a dict value (e.g. a tier under echelons): stay on the value's model
            continue
        current = _model_of(info.annotation)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _model_of(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if args:
        for arg in reversed(args):
            found = _model_of(arg)
            if found is not None:
                return found
    return None
