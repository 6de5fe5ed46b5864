"""What a kube-apiserver says about a custom resource's spec, without one: the OpenAPI keywords
the generated CRDs use, then their ``x-kubernetes-validations`` rules (CEL, by cel-python).

As the API server does it: values are converted to CEL by their schema type (``type: number``
is a double even when written ``60``), unknown fields are pruned (not refused), and the rules
of an object run only when it is present. ``refusals(schema, spec)`` lists the refusals as
``(path, message)``; empty means admitted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import celpy
from celpy import celtypes

Refusal = tuple[str, str]


@cache
def _program(expression: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(expression))


def to_cel(schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` as the API server hands it to CEL, by ``schema``'s types."""
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties")
        if props is not None:
            return celtypes.MapType({celtypes.StringType(k): to_cel(props[k], v)
                                     for k, v in value.items() if k in props})
        extra = schema.get("additionalProperties") or {}
        return celtypes.MapType({celtypes.StringType(k): to_cel(extra, v)
                                 for k, v in value.items()})
    if kind == "array":
        return celtypes.ListType([to_cel(schema.get("items") or {}, v) for v in value])
    if kind == "string":
        return celtypes.StringType(value)
    if kind == "boolean":
        return celtypes.BoolType(value)
    if kind == "integer":
        return celtypes.IntType(value)
    if kind == "number":
        return celtypes.DoubleType(float(value))
    raise TypeError(f"no CEL type for schema {schema!r}")


def _is_type(kind: str | None, value: Any) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def _bounds(schema: Mapping[str, Any], value: Any, path: str) -> list[Refusal]:
    out: list[Refusal] = []
    if "enum" in schema and value not in schema["enum"]:
        out.append((path, f"Unsupported value: {value!r}"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and (value <= low if schema.get("exclusiveMinimum") else value < low):
            out.append((path, f"should be greater than {low}"))
        if high is not None and (value >= high if schema.get("exclusiveMaximum")
                                 else value > high):
            out.append((path, f"should be less than {high}"))
    sizes = (("minLength", "maxLength", str), ("minItems", "maxItems", list),
             ("minProperties", "maxProperties", dict))
    for low_key, high_key, kind in sizes:
        if isinstance(value, kind):
            if low_key in schema and len(value) < schema[low_key]:
                out.append((path, f"{low_key} {schema[low_key]}"))
            if high_key in schema and len(value) > schema[high_key]:
                out.append((path, f"{high_key} {schema[high_key]}"))
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        out.append((path, f"should match {schema['pattern']!r}"))
    return out


def openapi_refusals(schema: Mapping[str, Any], value: Any, path: str = "spec") -> list[Refusal]:
    """The structural schema's own checks (types, enums, bounds, sizes, required)."""
    if not _is_type(schema.get("type"), value):
        return [(path, f"Invalid value: must be of type {schema.get('type')}")]
    out = _bounds(schema, value, path)
    if isinstance(value, dict):
        props = schema.get("properties")
        for name in schema.get("required") or []:
            if name not in value:
                out.append((f"{path}.{name}", "Required value"))
        for key, item in value.items():
            sub = (props or {}).get(key) if props is not None else schema.get(
                "additionalProperties")
            if isinstance(sub, Mapping):  # unknown fields are pruned, not refused
                out.extend(openapi_refusals(sub, item, f"{path}.{key}" if props is not None
                                            else f"{path}[{key}]"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(openapi_refusals(schema.get("items") or {}, item, f"{path}[{i}]"))
    return out


def rule_refusals(schema: Mapping[str, Any], value: Any, path: str = "spec") -> list[Refusal]:
    """The ``x-kubernetes-validations`` rules of every node present in ``value``."""
    out: list[Refusal] = []
    for rule in schema.get("x-kubernetes-validations") or []:
        result = _program(rule["rule"]).evaluate({"self": to_cel(schema, value)})
        if not isinstance(result, celtypes.BoolType):
            raise AssertionError(f"rule {rule['rule']!r} at {path} did not evaluate to a "
                                 f"bool: {result!r}")
        if not result:
            out.append((path, rule["message"]))
    if isinstance(value, dict):
        props = schema.get("properties")
        for key, item in value.items():
            sub = (props or {}).get(key) if props is not None else schema.get(
                "additionalProperties")
            if isinstance(sub, Mapping):
                out.extend(rule_refusals(sub, item, f"{path}.{key}" if props is not None
                                         else f"{path}[{key}]"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(rule_refusals(schema.get("items") or {}, item, f"{path}[{i}]"))
    return out


def refusals(schema: Mapping[str, Any], spec: Any) -> list[Refusal]:
    """Everything the API server refuses about ``spec`` (CEL rules only on a well-typed,
    in-bounds spec, as cel-python cannot evaluate ill-typed values)."""
    return openapi_refusals(schema, spec) or rule_refusals(schema, spec)
