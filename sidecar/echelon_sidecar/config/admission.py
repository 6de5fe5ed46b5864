"""Admission rules: what the API server itself can check about one resource alone.

A model validator that needs nothing but the object it validates (unique tier priorities, the
fields each ``rate_limiting.algorithm`` allows, ...) has a CEL twin here, attached to the same
model through ``json_schema_extra``. The CRD generator (``echelon crds``) copies them into the
CRDs as ``x-kubernetes-validations``, so ``kubectl apply`` of such a resource is refused by the
API server (Kubernetes 1.25+) with the rule's message, prefixed by the path of the object the
rule sits on (``spec.rateLimiting: Invalid value: "object": ...``). Checks that need other
resources (references, fallback cycles, the model catalog) stay with the operator.

The rules and the validators must refuse the same inputs: ``tests/unit/config/
test_admission_rules.py`` evaluates every rule (cel-python) against good and bad objects, and
a property test compares the two verdicts on generated resources. Expressions use only what
every Kubernetes release with CRD validation rules (1.25+) has: ``has``, ``all``, ``filter``,
``size``, ``matches``; iterated lists and maps carry ``maxItems`` / ``maxProperties`` and
their strings ``maxLength``, so that the API server's cost estimate stays within its budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

__all__ = [
    "KEY",
        "cel_literal",
    "field_or_default",
    "has_any",
    "rule",
    "same_settings",
    "validations",
]

#: the OpenAPI extension the API server evaluates
KEY = "x-kubernetes-validations"


def rule(expression: str, message: str) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry: a CEL expression that must hold for ``self``."""
    return {"rule": " ".join(expression.split()), "message": message}


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` of a model or field carrying ``rules``."""
    return {KEY: list(rules)}


def cel_literal(value: Any, *, double: bool = False) -> str:
    """A CEL literal of a JSON value (``double``: of a ``type: number`` field, always ``.0``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if double or isinstance(value, float):
        text = repr(float(value))
        return text if any(c in text for c in ".en") else f"{text}.0"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"no CEL literal for {value!r}")


def _is_number(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return annotation is float or "float" in str(annotation)


def field_or_default(model: type[BaseModel], obj: str, name: str) -> str:
    """CEL: the value of field ``name`` of ``obj`` (an object of ``model``), or its default."""
    info = model.model_fields[name]
    alias = info.alias or to_camel(name)
    return (f"(has({obj}.{alias}) ? {obj}.{alias} : "
            f"{cel_literal(info.default, double=_is_number(model, name))})")


def same_settings(model: type[BaseModel], a: str, b: str) -> str:
    """CEL: ``a`` and ``b`` (objects of ``model``) hold the same value in every field once the
    defaults are applied: what ``==`` of the two parsed models says."""
    parts = []
    for name, info in model.model_fields.items():
        alias = info.alias or to_camel(name)
        if info.default is None:  # unset is a value of its own
            parts.append(f"(has({a}.{alias}) == has({b}.{alias}) && "
                         f"(!has({a}.{alias}) || {a}.{alias} == {b}.{alias}))")
        else:
            parts.append(f"{field_or_default(model, a, name)} == "
                         f"{field_or_default(model, b, name)}")
    return " && ".join(parts)


def has_any(obj: str, fields: Iterable[str]) -> str:
    """CEL: ``obj`` has at least one of ``fields`` (snake_case names)."""
    return " || ".join(f"has({obj}.{to_camel(f)})" for f in fields)
