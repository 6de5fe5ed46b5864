"""Anthropic Messages request (from an Anthropic-format caller) → canonical OpenAI request.

===============================  ================================================================
Anthropic                        canonical OpenAI
===============================  ================================================================
``system`` string / text blocks  one ``system`` message (string, or text parts for several blocks)
``role: system`` in messages     a ``system`` message in place
user text / image / document     text / ``image_url`` (base64 → data: URL, url → url) /
                                 ``file`` parts (PDF or text as a data: URL, title → filename)
user ``tool_result``             ``role: tool`` messages placed before the rest of that turn;
                                 ``is_error`` → the ``is_error`` extension key
assistant text / tool_use        ``content`` / ``tool_calls`` (input → arguments JSON string)
assistant thinking blocks        ``reasoning_content`` + ``thinking_blocks`` (signed blocks only)
tools (custom)                   function tools (``input_schema`` → ``parameters``, strict kept)
tool_choice auto/any/tool/none   ``auto`` / ``required`` / named function / ``none``;
                                 ``disable_parallel_tool_use`` → ``parallel_tool_calls: false``
max_tokens                       ``max_completion_tokens``
thinking                         canonical ``thinking`` (same shape)
output_config.format / effort    ``response_format`` json_schema / ``reasoning_effort``
temperature, top_p, top_k        same names (``top_k`` is a canonical extension)
stop_sequences                   ``stop``
metadata.user_id                 ``user``
stream                           ``stream`` + ``stream_options.include_usage`` (the Anthropic
                                 stream's final ``message_delta`` needs the usage)
===============================  ================================================================

Server tools, containers, MCP servers, tool results holding images and ``between_tools``
thinking raise UnsupportedFeature; cache_control, service_tier, speed and similar hints
are dropped (they do not change the answer).
"""

from __future__ import annotations

import base64
from typing import Any

from ._common import (
    REASONING_CONTENT,
    THINKING_BLOCKS,
    TOOL_IS_ERROR,
    dumps,
    items,
    name_at,
    number,
    obj,
    str_at,
)
from .errors import InvalidRequest, UnsupportedFeature

__all__ = ["anthropic_to_openai_request"]

_P = "openai"
_EFFORTS = ("low", "medium", "high", "xhigh", "max")


def anthropic_to_openai_request(body: dict[str, Any]) -> dict[str, Any]:
    """Translate an Anthropic ``/v1/messages`` request body into the canonical form."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model", "must be a non-empty string")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise InvalidRequest("max_tokens", "is required and must be a non-negative integer")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise InvalidRequest("messages", "must be a non-empty list of messages")
    for key in ("container", "mcp_servers"):
        if body.get(key):
            raise UnsupportedFeature(key, _P, "Anthropic server-side features are not translated")

    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _system_content(system, "system")})
    for i, msg in enumerate(raw_messages):
        messages.extend(_convert_message(msg, f"messages[{i}]"))

    out: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_completion_tokens": max_tokens,
    }
    for key in ("temperature", "top_p", "top_k"):
        if number(body, key) is not None:
            out[key] = body[key]
    stops = items(body.get("stop_sequences"), "stop_sequences")
    if stops:
        out["stop"] = [str_at(s, f"stop_sequences[{k}]") for k, s in enumerate(stops)]
    user_id = str_at(obj(body.get("metadata"), "metadata").get("user_id"), "metadata.user_id")
    if user_id:
        out["user"] = user_id
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    _tools(body, out)
    _thinking_and_output(body, out)
    return out


def _system_content(system: Any, path: str) -> str | list[dict[str, Any]]:
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise InvalidRequest(path, "must be a string or a list of text blocks")
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise InvalidRequest(f"{path}[{j}]", "must be a text block")
        parts.append({"type": "text", "text": block.get("text", "")})
    return parts[0]["text"] if len(parts) == 1 else parts


def _convert_message(msg: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(msg, dict):
        raise InvalidRequest(path, "must be an object")
    role, content = msg.get("role"), msg.get("content")
    if role == "system":
        return [{"role": "system", "content": _system_content(content, f"{path}.content")}]
    if role not in ("user", "assistant"):
        raise InvalidRequest(f"{path}.role", "must be 'user' or 'assistant'")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"{path}.content", "must be a string or a list of content blocks")
    if role == "assistant":
        return [_assistant(content, f"{path}.content")]
    return _user(content, f"{path}.content")


def _user(blocks: list[Any], path: str) -> list[dict[str, Any]]:
    tool_msgs: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        bpath = f"{path}[{j}]"
        kind = obj(block, bpath).get("type")
        if kind == "text":
            parts.append({"type": "text", "text": str_at(block.get("text"), f"{bpath}.text")})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block, bpath)}})
        elif kind == "document":
            parts.append(_file_part(block, bpath))
        elif kind == "tool_result":
            tool_msgs.append(_tool_message(block, bpath))
        else:
            raise UnsupportedFeature(f"{kind} block", _P, f"cannot be translated ({bpath})")
    out = tool_msgs
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _image_url(block: dict[str, Any], path: str) -> str:
    source = obj(block.get("source"), f"{path}.source")
    if source.get("type") == "base64":
        mime = name_at(source.get("media_type"), f"{path}.source.media_type")
        return f"data:{mime};base64,{str_at(source.get('data'), f'{path}.source.data')}"
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    raise UnsupportedFeature(f"image source {source.get('type')}", _P, f"at {path}.source")


def _file_part(block: dict[str, Any], path: str) -> dict[str, Any]:
    source = obj(block.get("source"), f"{path}.source")
    data = str_at(source.get("data"), f"{path}.source.data")
    if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
        data_url = f"data:application/pdf;base64,{data}"
        default_name = "document.pdf"
    elif source.get("type") == "text":
        encoded = base64.b64encode(data.encode()).decode()
        data_url, default_name = f"data:text/plain;base64,{encoded}", "document.txt"
    else:
        raise UnsupportedFeature(f"document source {source.get('type')}", _P, f"at {path}.source")
    title = str_at(block.get("title"), f"{path}.title")
    return {"type": "file", "file": {"file_data": data_url, "filename": title or default_name}}


def _tool_message(block: dict[str, Any], path: str) -> dict[str, Any]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{path}.tool_use_id", "must be a non-empty string")
    content = block.get("content", "")
    if isinstance(content, list):
        parts = []
        for k, item in enumerate(content):
            if not isinstance(item, dict) or item.get("type") != "text":
                kind = item.get("type") if isinstance(item, dict) else None
                raise UnsupportedFeature(
                    f"{kind} in tool_result",
                    _P,
                    f"tool results carry text only ({path}.content[{k}])",
                )
            parts.append(
                {"type": "text", "text": str_at(item.get("text"), f"{path}.content[{k}].text")}
            )
        content = parts
    elif not isinstance(content, str):
        raise InvalidRequest(f"{path}.content", "must be a string or a list of blocks")
    msg: dict[str, Any] = {"role": "tool", "tool_call_id": call_id, "content": content}
    if block.get("is_error"):
        msg[TOOL_IS_ERROR] = True
    return msg


def _assistant(blocks: list[Any], path: str) -> dict[str, Any]:
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        bpath = f"{path}[{j}]"
        kind = obj(block, bpath).get("type")
        if kind == "text":
            texts.append({"type": "text", "text": str_at(block.get("text"), f"{bpath}.text")})
        elif kind == "tool_use":
            calls.append(
                {
                    "id": name_at(block.get("id"), f"{bpath}.id"),
                    "type": "function",
                    "function": {
                        "name": name_at(block.get("name"), f"{bpath}.name"),
                        "arguments": dumps(obj(block.get("input"), f"{bpath}.input")),
                    },
                }
            )
        elif kind == "thinking":
            thinking = str_at(block.get("thinking"), f"{bpath}.thinking")
            signature = str_at(block.get("signature"), f"{bpath}.signature")
            reasoning.append(thinking)
            if signature:
                thinking_blocks.append(
                    {"type": "thinking", "thinking": thinking, "signature": signature}
                )
        elif kind == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking",
                                    "data": str_at(block.get("data"), f"{bpath}.data")})
        else:
            raise UnsupportedFeature(f"{kind} block", _P, f"cannot be translated ({path}[{j}])")
    msg: dict[str, Any] = {"role": "assistant"}
    if len(texts) == 1:
        msg["content"] = texts[0]["text"]
    else:
        msg["content"] = texts or None
    if calls:
        msg["tool_calls"] = calls
    if reasoning:
        msg[REASONING_CONTENT] = "".join(reasoning)
    if thinking_blocks:
        msg[THINKING_BLOCKS] = thinking_blocks
    return msg


def _tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = items(body.get("tools"), "tools")
    if tools:
        converted = []
        for i, tool in enumerate(tools):
            tool = obj(tool, f"tools[{i}]")
            if tool.get("type") not in (None, "custom"):
                raise UnsupportedFeature(
                    f"{tool['type']} tool", _P, "server tools are not translated"
                )
            fn: dict[str, Any] = {"name": name_at(tool.get("name"), f"tools[{i}].name")}
            description = str_at(tool.get("description"), f"tools[{i}].description")
            if description:
                fn["description"] = description
            fn["parameters"] = obj(tool.get("input_schema"), f"tools[{i}].input_schema") or {
                "type": "object", "properties": {}}
            if tool.get("strict"):
                fn["strict"] = True
            converted.append({"type": "function", "function": fn})
        out["tools"] = converted
    choice = body.get("tool_choice")
    if not choice:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise InvalidRequest("tool_choice", "must be {type: auto|any|none} or {type: tool, name}")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def _thinking_and_output(body: dict[str, Any], out: dict[str, Any]) -> None:
    thinking = obj(body.get("thinking"), "thinking")
    if thinking:
        kind = thinking.get("type")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or isinstance(budget, bool):
                raise InvalidRequest("thinking.budget_tokens", "must be an integer")
            out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        elif kind in ("disabled", "adaptive"):
            out["thinking"] = {"type": kind}
        elif kind == "between_tools":
            raise UnsupportedFeature(f"thinking type {kind}", _P, "no canonical equivalent")
        else:
            raise InvalidRequest("thinking.type", "must be enabled, disabled or adaptive")
    config = obj(body.get("output_config"), "output_config")
    fmt = obj(config.get("format"), "output_config.format")
    if fmt:
        if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            raise InvalidRequest("output_config.format", "must be {type: json_schema, schema}")
        out["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "response", "schema": fmt["schema"], "strict": True}}
    effort = config.get("effort")
    if effort is not None:
        if effort not in _EFFORTS:
            raise InvalidRequest("output_config.effort", f"must be one of {', '.join(_EFFORTS)}")
        out["reasoning_effort"] = effort
