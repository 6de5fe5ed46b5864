from __future__ import annotations

from typing import Any

import pytest
from google.genai import types as gt
from hypothesis import given, settings
from hypothesis import strategies as st

from echelon_sidecar.translate import UnsupportedFeature, json_schema_to_gemini


def convert(schema: dict[str, Any]) -> dict[str, Any]:
    out = json_schema_to_gemini(schema, path="tools[0].function.parameters")
    gt.Schema.model_validate(out)  # extra='forbid': a wrong field name fails here
    return out


def test_openai_strict_tool_schema_converts_to_the_openapi_subset() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name", "minLength": 1},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    assert convert(schema) == {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING", "description": "City name", "minLength": 1},
            "days": {"type": "INTEGER", "minimum": 1, "maximum": 14},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3},
            "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "days"],
    }


def test_null_unions_become_nullable() -> None:
    assert convert({"type": ["string", "null"]}) == {"type": "STRING", "nullable": True}
    assert convert({"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}) == {
        "type": "INTEGER", "nullable": True, "default": None}
    assert convert({"type": ["string", "integer"]}) == {
        "anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}
    assert convert({"oneOf": [{"type": "string"}, {"type": "number"}]}) == {
        "anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]}


def test_pydantic_style_refs_and_single_allof_are_inlined() -> None:
    schema = {
        "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "title": "Unit"}},
        "type": "object",
        "properties": {
            "unit": {"$ref": "#/$defs/Unit"},
            "fallback": {"allOf": [{"$ref": "#/$defs/Unit"}], "description": "used when unknown"},
        },
    }
    assert convert(schema)["properties"] == {
        "unit": {"type": "STRING", "enum": ["c", "f"], "title": "Unit"},
        "fallback": {"type": "STRING", "enum": ["c", "f"], "title": "Unit",
                     "description": "used when unknown"},
    }


def test_const_formats_and_examples() -> None:
    assert convert({"const": "fixed"}) == {"enum": ["fixed"], "type": "STRING"}
    assert convert({"type": "string", "format": "date-time"}) == {
        "type": "STRING",
        "format": "date-time",
    }
    assert convert({"type": "string", "format": "email", "description": "Contact"}) == {
        "type": "STRING", "description": "Contact\n\n(format: email)"}
    assert convert({"type": "number", "examples": [1.5, 2]}) == {"type": "NUMBER", "example": 1.5}


def test_required_is_limited_to_declared_properties() -> None:
    out = convert(
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"]}
    )
    assert out["required"] == ["a"]


@pytest.mark.parametrize(("schema", "feature"), [
    ({"type": "integer", "enum": [1, 2]}, "non-string enum"),
    ({"type": "number", "exclusiveMinimum": 0}, "JSON schema keyword 'exclusiveMinimum'"),
    ({"type": "number", "multipleOf": 5}, "JSON schema keyword 'multipleOf'"),
    ({"type": "object", "additionalProperties": {"type": "string"}}, "additionalProperties schema"),
    ({"type": "array", "items": [{"type": "string"}]}, "tuple items"),
    ({"allOf": [{"type": "string"}, {"minLength": 2}]}, "allOf"),
    ({"not": {"type": "string"}}, "JSON schema keyword 'not'"),
    ({"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}},
      "$ref": "#/$defs/N"}, "recursive JSON schema"),
    ({"$ref": "https://example.com/schema.json"}, "$ref"),
    ({"type": "date"}, "JSON schema type 'date'"),
])
def test_what_gemini_cannot_express_is_unsupported(schema: dict[str, Any], feature: str) -> None:
    with pytest.raises(UnsupportedFeature) as exc:
        json_schema_to_gemini(schema, path="response_format.json_schema.schema")
    assert exc.value.feature == feature
    assert exc.value.provider == "gemini"


_NAMES = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
_leaf = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "number", "boolean"])},
                          optional={"description": st.text(max_size=10)}),
    st.fixed_dictionaries({"type": st.just("string"),
                           "enum": st.lists(st.text(max_size=5), min_size=1, max_size=3)}),
)
_schemas = st.recursive(_leaf, lambda inner: st.one_of(
    st.fixed_dictionaries({"type": st.just("array"), "items": inner}),
    st.builds(lambda props, extra: {"type": "object", "properties": props,
                                    "required": sorted(props)[:1], "additionalProperties": extra},
              st.dictionaries(_NAMES, inner, min_size=1, max_size=3), st.booleans()),
    st.builds(lambda s: {"anyOf": [s, {"type": "null"}]}, inner),
), max_leaves=8)


def _json_type_names(schema: dict[str, Any]) -> list[str]:
    """Type names in document order, with null branches folded into nullable."""
    if "anyOf" in schema:
        return _json_type_names(schema["anyOf"][0])
    names = [schema["type"].upper()]
    for sub in (schema.get("properties") or {}).values():
        names += _json_type_names(sub)
    if "items" in schema:
        names += _json_type_names(schema["items"])
    return names


def _gemini_type_names(schema: dict[str, Any]) -> list[str]:
    names = [schema["type"]]
    for sub in (schema.get("properties") or {}).values():
        names += _gemini_type_names(sub)
    if "items" in schema:
        names += _gemini_type_names(schema["items"])
    return names


@settings(max_examples=200, deadline=None)
@given(schema=_schemas)
def test_supported_schemas_always_convert_to_a_valid_gemini_schema(schema: dict[str, Any]) -> None:
    out = convert(schema)
    assert _gemini_type_names(out) == _json_type_names(schema)
