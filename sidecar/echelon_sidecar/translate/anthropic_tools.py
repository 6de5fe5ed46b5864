"""Tools, tool choice and JSON mode on Anthropic (used by anthropic_request).

``response_format: json_object`` has no Anthropic equivalent: Anthropic's structured
outputs (``output_config.format``) need a full schema and forbid open objects. It is carried
by a forced tool, `JSON_RESPONSE_TOOL`, whose input schema is "any object":

- no caller tools (or ``tool_choice: "none"``): ``tool_choice {type: tool, name: JSON tool}``;
- caller tools with ``tool_choice`` auto or absent: ``{type: any}`` over the caller's tools
  plus the JSON tool, so the model either calls one of its tools or answers through the
  JSON tool — the same choice an OpenAI model has in JSON mode;
- a named caller tool: kept (that turn is a tool call, JSON mode does not apply);
- ``tool_choice: "required"`` cannot be expressed (UnsupportedFeature).

Parallel tool use is disabled whenever the JSON tool may be called. On the way back
`anthropic_to_openai_response` and `AnthropicStreamToOpenAI` turn the JSON tool's input
into the message's text content and finish reason ``stop``, so the caller sees exactly what
OpenAI's JSON mode gives. The name is reserved: a caller tool with it is refused.
``json_schema`` formats use native structured outputs instead (see anthropic_request).
"""

from __future__ import annotations

from typing import Any

from ._common import function_def, items, name_at, obj
from .errors import InvalidRequest, UnsupportedFeature

__all__ = [
    "JSON_RESPONSE_TOOL",
    "apply_response_format",
    "convert_tool_choice",
    "convert_tools",
]

#: The tool that carries ``response_format: json_object`` on Anthropic. Reserved name.
JSON_RESPONSE_TOOL = "echelon_json_response"
_P = "anthropic"
_JSON_TOOL_DEF = {
    "name": JSON_RESPONSE_TOOL,
    "description": "Give your final answer by calling this tool with the answer as a JSON object.",
    "input_schema": {"type": "object"},
}


def convert_tools(tools: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(items(tools, "tools")):
        fn = function_def(tool, i, _P)
        if fn["name"] == JSON_RESPONSE_TOOL:
            raise InvalidRequest(f"tools[{i}].function.name", f"{JSON_RESPONSE_TOOL!r} is reserved")
        converted: dict[str, Any] = {
            "name": fn["name"],
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            converted["description"] = fn["description"]
        if fn.get("strict"):
            converted["strict"] = True
        out.append(converted)
    return out


def convert_tool_choice(
    choice: Any, parallel: Any, tools: list[dict[str, Any]]
) -> dict[str, Any] | None:
    result: dict[str, Any] | None
    if choice is None:
        result = {"type": "auto"} if parallel is False and tools else None
    elif choice == "none":
        return {"type": "none"} if tools else None
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        fn = obj(choice.get("function"), "tool_choice.function")
        result = {"type": "tool", "name": name_at(fn.get("name"), "tool_choice.function.name")}
    elif isinstance(choice, dict) and choice.get("type") in ("allowed_tools", "custom"):
        raise UnsupportedFeature(f"tool_choice {choice['type']}", _P, "no Anthropic equivalent")
    else:
        raise InvalidRequest("tool_choice", "must be none, auto, required or a named function")
    if result is not None and not tools:
        raise InvalidRequest("tool_choice", "is set but the request has no tools")
    if result is not None and parallel is False:
        result["disable_parallel_tool_use"] = True
    return result


def apply_response_format(
    fmt: Any, out: dict[str, Any], tools: list[dict[str, Any]], choice: dict[str, Any] | None
) -> dict[str, Any] | None:
    if fmt is None:
        return choice
    kind = obj(fmt, "response_format").get("type")
    if kind == "text":
        return choice
    if kind == "json_schema":
        schema = obj(fmt.get("json_schema"), "response_format.json_schema").get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format.json_schema.schema", "must be a JSON schema")
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        return choice
    if kind != "json_object":
        raise InvalidRequest("response_format.type", "must be text, json_object or json_schema")
    ctype = choice["type"] if choice else None
    if ctype == "tool":
        return choice  # the caller forces one of its own tools: JSON mode cannot apply
    if ctype == "any":
        raise UnsupportedFeature(
            "response_format", _P, "json_object with tool_choice 'required' cannot be expressed"
        )
    forced: dict[str, Any] = (
        {"type": "any"}
        if tools and ctype != "none"
        else {"type": "tool", "name": JSON_RESPONSE_TOOL}
    )
    forced["disable_parallel_tool_use"] = True
    tools.append(dict(_JSON_TOOL_DEF))
    return forced
