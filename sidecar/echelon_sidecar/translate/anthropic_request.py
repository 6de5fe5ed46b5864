"""Canonical (OpenAI Chat Completions) request → Anthropic Messages request.

Mapping table
-------------
=============================  ==============================================================
OpenAI                         Anthropic
=============================  ==============================================================
system / developer messages    ``system`` (a string, or text blocks when there are several)
user content parts             text / image (data: URL → base64 source, http(s) → url source)
                               / document (``file`` parts holding a PDF or text data URL)
assistant content + tool_calls text blocks + ``tool_use`` blocks (arguments parsed to ``input``)
assistant ``thinking_blocks``  replayed verbatim before the text (needed in tool-use loops)
``role: tool``                 ``tool_result`` blocks in a user turn; consecutive ones merged;
                               consecutive same-role turns merged, tool results first
tools (function)               ``tools[{name, description, input_schema, strict}]``
tool_choice none/auto/         ``{type: none|auto|any|tool}``; ``parallel_tool_calls: false``
required/named                 → ``disable_parallel_tool_use: true``
max_completion_tokens /        ``max_tokens`` (default `default_max_tokens`)
max_tokens
temperature, top_p, top_k      same names. anthropic SDK 2.x no longer types them; the API
                               takes them for models with sampling parameters, and
                               ``sampling_params=False`` refuses them for models without
stop                           ``stop_sequences``
user / safety_identifier       ``metadata.user_id``
response_format json_schema    ``output_config.format {type: json_schema, schema}`` (native
                               structured outputs: the answer comes back as a text block)
response_format json_object    a forced tool, ``JSON_RESPONSE_TOOL``, whose ``tool_use`` comes
                               back as the message's text content (see anthropic_tools)
thinking / reasoning_effort    ``thinking``: a budget below 1024 is raised to 1024; a budget
                               ≥ max_tokens raises max_tokens to default + budget when the
                               caller set no max tokens, else UnsupportedFeature
=============================  ==============================================================

Raised as UnsupportedFeature (never dropped): n > 1, logprobs, logit_bias, audio in or out,
frequency/presence penalties, legacy functions, custom or allowed_tools tool choices,
verbosity, web search, temperature > 1, and thinking combined with a forced tool choice,
temperature ≠ 1, top_p < 0.95 or top_k (Anthropic's extended-thinking constraints).
Dropped because they do not change the answer: seed (best effort even on OpenAI), store,
metadata, service_tier, prompt cache hints, prediction, stream_options, message ``name``,
image ``detail``, assistant ``reasoning_content`` without signed ``thinking_blocks``.
"""

from __future__ import annotations

import base64
from typing import Any

from ._common import (
    THINKING_BLOCKS,
    TOOL_IS_ERROR,
    items,
    max_output_tokens,
    messages_of,
    name_at,
    number,
    obj,
    parse_arguments,
    parse_data_url,
    reject_common,
    resolve_thinking,
    safe_id,
    stop_list,
    text_of,
)
from .anthropic_tools import (
    JSON_RESPONSE_TOOL,
    apply_response_format,
    convert_tool_choice,
    convert_tools,
)
from .errors import InvalidRequest, UnsupportedFeature

__all__ = ["ANTHROPIC_MIN_THINKING_BUDGET", "openai_to_anthropic_request"]

ANTHROPIC_MIN_THINKING_BUDGET = 1024
_P = "anthropic"
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def openai_to_anthropic_request(
    body: dict[str, Any],
    *,
    model: str,
    default_max_tokens: int,
    sampling_params: bool = True,
) -> dict[str, Any]:
    """Translate a canonical request into an Anthropic Messages request body.

    `sampling_params=False` is for models that refuse ``temperature``/``top_p``/``top_k``
    (anthropic SDK 2.x no longer types them): a request that sets one then raises
    UnsupportedFeature instead of being sent.
    """
    reject_common(body, _P)
    _reject_unsupported(body)
    system, turns = _convert_messages(messages_of(body))
    if not turns:
        raise UnsupportedFeature(
            "system-only conversation", _P, "Anthropic needs at least one non-empty user message")
    out: dict[str, Any] = {"model": model}
    if system:
        out["system"] = system[0]["text"] if len(system) == 1 else system
    out["messages"] = turns

    max_tokens = max_output_tokens(body)
    explicit_max = max_tokens is not None
    out["max_tokens"] = max_tokens if max_tokens is not None else default_max_tokens

    _sampling(body, out, sampling_params)
    stops = stop_list(body.get("stop"))
    if stops:
        out["stop_sequences"] = stops
    user = body.get("safety_identifier") or body.get("user")
    if user:
        out["metadata"] = {"user_id": str(user)}
    if body.get("stream"):
        out["stream"] = True

    tools = convert_tools(body.get("tools"))
    choice = convert_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"), tools)
    choice = apply_response_format(body.get("response_format"), out, tools, choice)
    if tools:
        out["tools"] = tools
    if choice is not None:
        out["tool_choice"] = choice
    _thinking(body, out, explicit_max, default_max_tokens)
    return out


def _reject_unsupported(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n not in (None, 1):
        raise UnsupportedFeature("n", _P, f"one completion per request, n={n} was asked")
    for key in ("frequency_penalty", "presence_penalty"):
        if number(body, key):
            raise UnsupportedFeature(key, _P, "Anthropic has no repetition penalties")


def _sampling(body: dict[str, Any], out: dict[str, Any], allowed: bool) -> None:
    for key in ("temperature", "top_p", "top_k"):
        value = number(body, key)
        if value is None:
            continue
        if not allowed:
            raise UnsupportedFeature(key, _P, "this model does not accept sampling parameters")
        if key == "temperature" and not 0 <= value <= 1:
            raise UnsupportedFeature(key, _P, f"Anthropic accepts 0..1, the request has {value}")
        out[key] = value


# --------------------------------------------------------------------------- messages


def _convert_messages(
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        role, path = msg["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            content = msg.get("content")
            parts = content if isinstance(content, list) else [content]
            for j, part in enumerate(parts):  # one block per part: block boundaries survive
                where = f"{path}.content" + (f"[{j}]" if isinstance(content, list) else "")
                text = text_of([part] if isinstance(part, dict) else part, where, _P)
                if text:
                    system.append({"type": "text", "text": text})
        elif role == "user":
            _append(turns, "user", _user_content(msg.get("content"), f"{path}.content"))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(msg, path))
        elif role == "tool":
            _append(turns, "user", [_tool_result(msg, path)])
        elif role == "function":
            raise UnsupportedFeature("functions", _P, "legacy 'function' messages; use tools")
        else:
            raise InvalidRequest(f"{path}.role", f"unknown role {role!r}")
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, content: str | list[dict[str, Any]]) -> None:
    if not content:
        return
    if turns and turns[-1]["role"] == role:
        prev = turns[-1]["content"]
        blocks = _as_blocks(prev) + _as_blocks(content)
        if role == "user":  # tool results must open the user turn that answers a tool_use
            blocks.sort(key=lambda b: b["type"] != "tool_result")
        turns[-1]["content"] = blocks
    else:
        turns.append({"role": role, "content": content})


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _user_content(content: Any, path: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(path, "must be a string or a list of content parts")
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        ppath = f"{path}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise InvalidRequest(f"{ppath}.text", "must be a string")
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), f"{ppath}.image_url"))
        elif kind == "input_audio":
            raise UnsupportedFeature("input_audio", _P, "Anthropic does not accept audio input")
        elif kind == "file":
            blocks.append(_document_block(part.get("file"), f"{ppath}.file"))
        else:
            raise InvalidRequest(ppath, f"unknown content part type {kind!r}")
    return blocks


def _image_block(image_url: Any, path: str) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, dict) else None
    if not isinstance(url, str):
        raise InvalidRequest(f"{path}.url", "must be a string")
    if url.startswith("data:"):
        mime, data = parse_data_url(url, f"{path}.url")
        if mime not in _IMAGE_TYPES:
            raise UnsupportedFeature(
                f"image type {mime}", _P, "Anthropic accepts jpeg/png/gif/webp"
            )
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest(f"{path}.url", "must be an http(s) URL or a base64 data URL")


def _document_block(file: Any, path: str) -> dict[str, Any]:
    if not isinstance(file, dict):
        raise InvalidRequest(path, "must be an object")
    if file.get("file_id"):
        raise UnsupportedFeature("file_id", _P, "OpenAI file ids cannot be sent to Anthropic")
    file_data = file.get("file_data")
    if not isinstance(file_data, str):
        raise InvalidRequest(f"{path}.file_data", "must be a base64 data URL")
    mime, data = parse_data_url(file_data, f"{path}.file_data")
    block: dict[str, Any]
    if mime == "application/pdf":
        block = {"type": "document", "source": {"type": "base64", "media_type": mime, "data": data}}
    elif mime == "text/plain":
        text = base64.b64decode(data).decode("utf-8", errors="replace")
        block = {"type": "document", "source": {"type": "text", "media_type": mime, "data": text}}
    else:
        raise UnsupportedFeature(f"file type {mime}", _P, "Anthropic documents are PDF or text")
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


def _assistant_blocks(msg: dict[str, Any], path: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    tpath = f"{path}.{THINKING_BLOCKS}"
    for j, tb in enumerate(items(msg.get(THINKING_BLOCKS), tpath)):
        tb = obj(tb, f"{tpath}[{j}]")
        fields = {"thinking": ("thinking", "signature"), "redacted_thinking": ("data",)}.get(
            str(tb.get("type")))
        if fields is None:
            raise InvalidRequest(f"{tpath}[{j}].type", "must be thinking or redacted_thinking")
        block = {"type": tb["type"], **{f: tb.get(f, "") for f in fields}}
        if not all(isinstance(block[f], str) for f in fields):
            raise InvalidRequest(f"{tpath}[{j}]", f"{', '.join(fields)} must be strings")
        blocks.append(block)
    content = msg.get("content")
    if content:
        text = text_of(content, f"{path}.content", _P)
        if text:
            blocks.append({"type": "text", "text": text})
    refusal = msg.get("refusal")
    if refusal:
        blocks.append({"type": "text", "text": text_of(refusal, f"{path}.refusal", _P)})
    for j, call in enumerate(items(msg.get("tool_calls"), f"{path}.tool_calls")):
        cpath = f"{path}.tool_calls[{j}]"
        call = obj(call, cpath)
        if call.get("type", "function") != "function":
            raise UnsupportedFeature("custom tool calls", _P, "only function tools are translated")
        fn = obj(call.get("function"), f"{cpath}.function")
        blocks.append({
            "type": "tool_use",
            "id": safe_id(name_at(call.get("id"), f"{cpath}.id")),
            "name": name_at(fn.get("name"), f"{cpath}.function.name"),
            "input": parse_arguments(fn.get("arguments"), f"{cpath}.function.arguments"),
        })
    return blocks


def _tool_result(msg: dict[str, Any], path: str) -> dict[str, Any]:
    call_id = msg.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{path}.tool_call_id", "must be a non-empty string")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": safe_id(call_id)}
    content = msg.get("content")
    if isinstance(content, list):
        parts = [{"type": "text", "text": t} for t in
                 (text_of([p], f"{path}.content", _P) for p in content) if t]
        if parts:
            block["content"] = parts
    else:
        text = text_of(content, f"{path}.content", _P)
        if text:
            block["content"] = text
    if msg.get(TOOL_IS_ERROR):
        block["is_error"] = True
    return block


def _thinking(
    body: dict[str, Any], out: dict[str, Any], explicit_max: bool, default_max_tokens: int
) -> None:
    thinking = resolve_thinking(body)
    if thinking is None:
        return
    kind = thinking["type"]
    if kind == "enabled" and thinking["budget_tokens"] == 0:
        kind = "disabled"
    if kind == "disabled":
        out["thinking"] = {"type": "disabled"}
        return
    if kind == "enabled":
        budget = max(ANTHROPIC_MIN_THINKING_BUDGET, thinking["budget_tokens"])
        if budget >= out["max_tokens"]:
            if explicit_max:
                raise UnsupportedFeature(
                    "thinking", _P,
                    f"the thinking budget ({budget} tokens) must be below max_tokens "
                    f"({out['max_tokens']}); raise max_tokens or lower the budget",
                )
            out["max_tokens"] = default_max_tokens + budget
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:
        out["thinking"] = {"type": "adaptive"}
    if out.get("temperature") not in (None, 1):
        raise UnsupportedFeature("temperature", _P, "extended thinking requires temperature 1")
    if out.get("top_p") is not None and out["top_p"] < 0.95:
        raise UnsupportedFeature("top_p", _P, "extended thinking requires top_p >= 0.95")
    if out.get("top_k") is not None:
        raise UnsupportedFeature("top_k", _P, "extended thinking does not allow top_k")
    if (out.get("tool_choice") or {}).get("type") in ("any", "tool"):
        what = "response_format json_object" if any(
            t["name"] == JSON_RESPONSE_TOOL for t in out.get("tools", ())
        ) else "a forced tool_choice"
        raise UnsupportedFeature(
            "thinking", _P, f"extended thinking cannot be combined with {what}"
        )
