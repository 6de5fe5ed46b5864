"""JSON Schema (OpenAI tools / json_schema response formats) → Gemini's OpenAPI ``Schema``.

Gemini's ``Schema`` is an OpenAPI 3.0 subset: upper-case ``type`` names, ``nullable``
instead of ``null`` types, ``anyOf``, string-only ``enum``, and a few constraints. The
conversion:

=================================  =============================================================
JSON Schema                        Gemini Schema
=================================  =============================================================
``type: "string"`` …               ``type: "STRING"`` … (``null`` → ``NULL``)
``type: [T, "null"]``              ``type: T`` + ``nullable: true`` (several types → ``anyOf``)
``anyOf`` / ``oneOf``              ``anyOf`` (a lone ``{"type": "null"}`` branch → ``nullable``)
``allOf`` with one member          merged into the parent (what pydantic emits for refs)
``$ref`` to ``#/$defs``,           inlined (a recursive schema → UnsupportedFeature)
``#/definitions``
``const`` (string)                 ``enum: [const]``
properties, required, items,       kept (``required`` limited to declared properties)
enum (strings), description,
title, default, min/max*,
pattern, nullable,
propertyOrdering
format                             kept when Gemini knows it (date-time, enum, int32, int64,
                                   float, double), otherwise noted in the description
``$schema``, ``$id``, ``$comment``,  dropped (annotations only); ``examples[0]`` → ``example``
``additionalProperties: bool``,
readOnly, writeOnly, deprecated,
strict
=================================  =============================================================

Anything else (non-string enums, schema-valued ``additionalProperties``, ``not``,
``if``/``then``/``else``, ``patternProperties``, ``exclusiveMinimum``, ``multipleOf``,
``uniqueItems``, tuple ``items``/``prefixItems`` …) changes what is valid and has no Gemini
form: UnsupportedFeature naming the keyword and where it is.
"""

from __future__ import annotations

from typing import Any

from ._common import items, obj
from .errors import InvalidRequest, UnsupportedFeature

__all__ = ["json_schema_to_gemini"]

_P = "gemini"
_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
    "null": "NULL",
}
_KEEP = frozenset({
    "description", "title", "default", "example", "nullable", "pattern",
    "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
    "minProperties", "maxProperties", "propertyOrdering",
})
_DROP = frozenset({
    "$schema", "$id", "$comment", "$anchor", "readOnly", "writeOnly", "deprecated", "strict",
    "examples", "additionalProperties", "$defs", "definitions", "contentMediaType",
    "contentEncoding",
})
_FORMATS = {"STRING": {"date-time", "enum"}, "INTEGER": {"int32", "int64"},
            "NUMBER": {"float", "double"}}


def json_schema_to_gemini(schema: Any, *, path: str) -> dict[str, Any]:
    """Convert `schema`; `path` names where it sits in the request (for error messages)."""
    schema = obj(schema, path)
    defs = {**obj(schema.get("definitions"), f"{path}.definitions"),
            **obj(schema.get("$defs"), f"{path}.$defs")}
    return _Converter(defs).convert(schema, path)


class _Converter:
    def __init__(self, defs: dict[str, Any]) -> None:
        self._defs = defs
        self._expanding: list[str] = []

    def convert(self, schema: Any, path: str) -> dict[str, Any]:
        if not isinstance(schema, dict):
            raise InvalidRequest(path, "must be a JSON schema object")
        if "$ref" in schema:
            return self._ref(schema, path)
        schema = self._merge_all_of(schema, path)
        out: dict[str, Any] = {}
        notes: list[str] = []
        self._type(schema, out, path)
        for key, value in schema.items():
            if key not in ("type", "anyOf", "oneOf"):
                self._keyword(key, value, f"{path}.{key}", out, notes)
        return _finish(schema, out, notes)

    def _keyword(
        self, key: str, value: Any, where: str, out: dict[str, Any], notes: list[str]
    ) -> None:
        """Convert one keyword of a schema into ``out``; a format Gemini lacks goes to notes."""
        if key in _KEEP:
            out[key] = value
        elif key == "properties":
            out["properties"] = {
                name: self.convert(sub, f"{where}.{name}")
                for name, sub in obj(value, where).items()
            }
        elif key == "items":
            if isinstance(value, list):
                raise UnsupportedFeature("tuple items", _P, f"at {where}")
            out["items"] = self.convert(value, where)
        elif key in ("required", "enum", "const"):
            _strings_keyword(key, value, where, out)
        elif key == "format":
            if isinstance(value, str) and value in _FORMATS.get(out.get("type", ""), ()):
                out["format"] = value
            else:
                notes.append(f"format: {value}")
        elif key == "additionalProperties" and not isinstance(value, bool):
            raise UnsupportedFeature("additionalProperties schema", _P, f"maps at {where}")
        elif key not in _DROP:
            raise UnsupportedFeature(f"JSON schema keyword {key!r}", _P, f"at {where}")

    def _type(self, schema: dict[str, Any], out: dict[str, Any], path: str) -> None:
        branches = schema.get("anyOf", schema.get("oneOf"))
        type_ = schema.get("type")
        if isinstance(type_, list):
            non_null = [t for t in type_ if t != "null"]
            if len(non_null) != len(type_):
                out["nullable"] = True
            if len(non_null) == 1:
                type_ = non_null[0]
            else:
                branches = [{"type": t} for t in non_null]
                type_ = None
        if type_ is not None:
            if not isinstance(type_, str) or type_ not in _TYPES:
                raise UnsupportedFeature(f"JSON schema type {type_!r}", _P, f"at {path}.type")
            out["type"] = _TYPES[type_]
        if branches is None:
            return
        if not isinstance(branches, list):
            raise InvalidRequest(f"{path}.anyOf", "must be a list of schemas")
        rest = [b for b in branches if not (isinstance(b, dict) and b == {"type": "null"})]
        if len(rest) != len(branches):
            out["nullable"] = True
        if len(rest) == 1:
            out.update(self.convert(rest[0], f"{path}.anyOf[0]"))
        elif rest:
            out["anyOf"] = [self.convert(b, f"{path}.anyOf[{i}]") for i, b in enumerate(rest)]

    def _merge_all_of(self, schema: dict[str, Any], path: str) -> dict[str, Any]:
        all_of = schema.get("allOf")
        if all_of is None:
            return schema
        if not isinstance(all_of, list) or len(all_of) != 1:
            raise UnsupportedFeature(
                "allOf", _P, f"only a single-member allOf can be inlined ({path})"
            )
        member = all_of[0]
        if isinstance(member, dict) and "$ref" in member:
            member = self._resolve(member["$ref"], f"{path}.allOf[0]")
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return {**member, **rest}

    def _resolve(self, ref: Any, path: str) -> dict[str, Any]:
        for prefix in ("#/$defs/", "#/definitions/"):
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix):] in self._defs:
                target = self._defs[ref[len(prefix):]]
                if isinstance(target, dict):
                    return target
        raise UnsupportedFeature("$ref", _P, f"{path}: only local #/$defs references resolve")

    def _ref(self, schema: dict[str, Any], path: str) -> dict[str, Any]:
        ref = schema["$ref"]
        if ref in self._expanding:
            raise UnsupportedFeature("recursive JSON schema", _P, f"{path} refers to {ref} again")
        target = self._resolve(ref, f"{path}.$ref")
        self._expanding.append(ref)
        try:
            merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            return self.convert(merged, path)
        finally:
            self._expanding.pop()


def _strings_keyword(key: str, value: Any, where: str, out: dict[str, Any]) -> None:
    """``required`` (property names), ``enum`` and ``const``: Gemini takes strings only."""
    if key == "required":
        if not all(isinstance(n, str) for n in items(value, where)):
            raise InvalidRequest(where, "must be a list of property names")
        out["required"] = list(items(value, where))
    elif key == "enum":
        if not all(isinstance(v, str) for v in items(value, where)):
            raise UnsupportedFeature("non-string enum", _P, f"Gemini enums are strings ({where})")
        out["enum"] = list(items(value, where))
    else:  # const
        if not isinstance(value, str):
            raise UnsupportedFeature("non-string const", _P, f"at {where}")
        out["enum"] = [value]
        out.setdefault("type", "STRING")


def _finish(schema: dict[str, Any], out: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """The converted schema completed: its first example, ``required`` limited to the declared
    properties, and the notes (formats Gemini lacks) added to its description."""
    if "examples" in schema and isinstance(schema["examples"], list) and schema["examples"]:
        out.setdefault("example", schema["examples"][0])
    if "required" in out and "properties" in out:
        out["required"] = [n for n in out["required"] if n in out["properties"]]
    if notes:
        desc = out.get("description")
        out["description"] = (f"{desc}\n\n" if desc else "") + "(" + "; ".join(notes) + ")"
    return out
