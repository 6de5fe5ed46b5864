"""Shared test helpers: payload loading, stream reassembly, and shape checks against the
official SDKs' types (pydantic models for responses, TypedDicts for request params)."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import orjson
import pydantic
from anthropic import types as at
from anthropic.types import message_create_params as amcp
from openai.types import chat as oc
from openai.types.chat import completion_create_params as occp

from echelon_sidecar.translate import SSEDecoder, SSEEvent

PAYLOADS = Path(__file__).parent / "payloads"

#: extension keys the canonical form documents (see translate/_common.py)
CANONICAL_EXTENSIONS = {"reasoning_content", "thinking_blocks", "extra_content", "is_error"}


def load_json(name: str) -> Any:
    return orjson.loads((PAYLOADS / name).read_bytes())


def load_sse(name: str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed((PAYLOADS / name).read_bytes()) + decoder.flush()


def deep(value: Any) -> Any:
    return copy.deepcopy(value)


# --------------------------------------------------------------------------- reassembly


def reassemble_openai(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """OpenAI chunks → ``{"choices": {index: message-like}, "usage": ...}``."""
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for chunk in chunks:
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            msg = choices.setdefault(choice["index"], {"tool_calls": {}, "finish_reason": None})
            delta = choice["delta"]
            for key in ("content", "reasoning_content", "refusal"):
                if delta.get(key):
                    msg[key] = msg.get(key, "") + delta[key]
            for tb in delta.get("thinking_blocks") or ():
                msg.setdefault("thinking_blocks", []).append(tb)
            for call in delta.get("tool_calls") or ():
                slot = msg["tool_calls"].setdefault(
                    call["index"], {"id": None, "type": "function",
                                    "function": {"name": "", "arguments": ""}})
                if call.get("id"):
                    slot["id"] = call["id"]
                if call.get("extra_content"):
                    slot["extra_content"] = call["extra_content"]
                fn = call.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                msg["finish_reason"] = choice["finish_reason"]
    for msg in choices.values():
        msg["tool_calls"] = [msg["tool_calls"][k] for k in sorted(msg["tool_calls"])]
    return {"choices": choices, "usage": usage}


def normalize_message(msg: dict[str, Any]) -> dict[str, Any]:
    """A message with tool-call arguments parsed (whitespace in JSON text is not meaningful)."""
    out = {k: v for k, v in msg.items() if v not in (None, [], "")}
    out.pop("role", None)
    if "tool_calls" in out:
        out["tool_calls"] = [
            {
                **c,
                "function": {
                    **c["function"],
                    "arguments": orjson.loads(c["function"]["arguments"]),
                },
            }
            for c in out["tool_calls"]
        ]
    return out


def reassemble_anthropic(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Anthropic stream events → the final ``message`` dict (what the SDK accumulates)."""
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    for name, data in events:
        assert name == data["type"], (name, data)
        if name == "message_start":
            message = deep(data["message"])
        elif name == "content_block_start":
            assert data["index"] == len(message["content"]), "blocks must arrive in order"
            message["content"].append(deep(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = message["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] += delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop":
            if data["index"] in partial:
                message["content"][data["index"]]["input"] = orjson.loads(partial[data["index"]])
        elif name == "message_delta":
            message.update(data["delta"])
            message["usage"].update({k: v for k, v in data["usage"].items() if v is not None})
    return message


# --------------------------------------------------------------------------- shape checks


def assert_no_extras(model: pydantic.BaseModel, allowed: set[str] = CANONICAL_EXTENSIONS,
                     path: str = "$") -> None:
    """No field outside the SDK model (a misspelt field name) except documented extensions."""
    extra = set((model.model_extra or {}).keys()) - allowed
    assert not extra, f"unexpected fields at {path}: {extra}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, pydantic.BaseModel):
                assert_no_extras(item, allowed, f"{path}.{name}[{i}]")


def assert_keys(value: Any, td: Any, path: str, extra: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """`value` is a dict with only `td`'s keys (plus `extra`) and all its required keys."""
    assert isinstance(value, dict), f"{path} is not an object"
    known = set(td.__required_keys__) | set(td.__optional_keys__) | set(extra)
    assert set(value) <= known, f"{path}: unknown keys {set(value) - known} for {td.__name__}"
    missing = set(td.__required_keys__) - set(value)
    assert not missing, f"{path}: missing {missing} for {td.__name__}"


_A_BLOCKS = {
    "text": at.TextBlockParam, "image": at.ImageBlockParam, "document": at.DocumentBlockParam,
    "thinking": at.ThinkingBlockParam, "redacted_thinking": at.RedactedThinkingBlockParam,
    "tool_use": at.ToolUseBlockParam, "tool_result": at.ToolResultBlockParam,
}
_A_SOURCES = {
    ("image", "base64"): at.Base64ImageSourceParam, ("image", "url"): at.URLImageSourceParam,
    ("document", "base64"): at.Base64PDFSourceParam, ("document", "text"): at.PlainTextSourceParam,
}
_A_CHOICES = {"auto": at.ToolChoiceAutoParam, "any": at.ToolChoiceAnyParam,
              "tool": at.ToolChoiceToolParam, "none": at.ToolChoiceNoneParam}
_A_THINKING = {"enabled": at.ThinkingConfigEnabledParam, "disabled": at.ThinkingConfigDisabledParam,
               "adaptive": at.ThinkingConfigAdaptiveParam}
#: sampling parameters the Messages API accepts but anthropic SDK 2.x no longer types
ANTHROPIC_UNTYPED = {"temperature", "top_p", "top_k", "stream"}


def assert_anthropic_block(block: dict[str, Any], path: str) -> None:
    assert_keys(block, _A_BLOCKS[block["type"]], path)
    if block["type"] in ("image", "document"):
        assert_keys(block["source"], _A_SOURCES[block["type"], block["source"]["type"]],
                    f"{path}.source")
    if block["type"] == "tool_result" and isinstance(block.get("content"), list):
        for i, inner in enumerate(block["content"]):
            assert_anthropic_block(inner, f"{path}.content[{i}]")


def assert_anthropic_request(req: dict[str, Any]) -> None:
    assert_keys(req, amcp.MessageCreateParamsNonStreaming, "$", ANTHROPIC_UNTYPED)
    roles = [m["role"] for m in req["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), f"roles must alternate: {roles}"
    for i, msg in enumerate(req["messages"]):
        assert_keys(msg, at.MessageParam.__args__[0], f"messages[{i}]")
        if isinstance(msg["content"], list):
            for j, block in enumerate(msg["content"]):
                assert_anthropic_block(block, f"messages[{i}].content[{j}]")
    if isinstance(req.get("system"), list):
        for j, block in enumerate(req["system"]):
            assert_keys(block, at.TextBlockParam, f"system[{j}]")
    for i, tool in enumerate(req.get("tools", ())):
        assert_keys(tool, at.ToolParam, f"tools[{i}]")
    if "tool_choice" in req:
        assert_keys(req["tool_choice"], _A_CHOICES[req["tool_choice"]["type"]], "tool_choice")
    if "thinking" in req:
        assert_keys(req["thinking"], _A_THINKING[req["thinking"]["type"]], "thinking")
    if "metadata" in req:
        assert_keys(req["metadata"], at.MetadataParam, "metadata")
    if "output_config" in req:
        assert_keys(req["output_config"], at.OutputConfigParam, "output_config")
        assert_keys(
            req["output_config"]["format"], at.JSONOutputFormatParam, "output_config.format"
        )


_O_MESSAGES = {
    "system": oc.ChatCompletionSystemMessageParam,
    "developer": oc.ChatCompletionDeveloperMessageParam,
    "user": oc.ChatCompletionUserMessageParam,
    "assistant": oc.ChatCompletionAssistantMessageParam,
    "tool": oc.ChatCompletionToolMessageParam,
}
_O_PARTS = {"text": oc.ChatCompletionContentPartTextParam,
            "image_url": oc.ChatCompletionContentPartImageParam,
            "input_audio": oc.ChatCompletionContentPartInputAudioParam}


def assert_openai_request(req: dict[str, Any]) -> None:
    """Canonical requests: OpenAI params plus the documented extension keys."""
    assert_keys(req, occp.CompletionCreateParamsNonStreaming, "$", {"stream", "thinking", "top_k"})
    for i, msg in enumerate(req["messages"]):
        assert_keys(msg, _O_MESSAGES[msg["role"]], f"messages[{i}]", CANONICAL_EXTENSIONS)
        if isinstance(msg.get("content"), list):
            for j, part in enumerate(msg["content"]):
                if part["type"] != "file":
                    assert_keys(part, _O_PARTS[part["type"]], f"messages[{i}].content[{j}]")
        for j, call in enumerate(msg.get("tool_calls") or ()):
            assert_keys(call, oc.ChatCompletionMessageFunctionToolCallParam,
                        f"messages[{i}].tool_calls[{j}]", CANONICAL_EXTENSIONS)
    for i, tool in enumerate(req.get("tools", ())):
        assert_keys(tool, oc.ChatCompletionFunctionToolParam, f"tools[{i}]")
