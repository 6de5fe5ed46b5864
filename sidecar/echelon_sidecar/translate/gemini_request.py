"""Canonical (OpenAI Chat Completions) request → Gemini ``generateContent`` request body.

=============================  ================================================================
OpenAI                         Gemini (REST JSON, camelCase)
=============================  ================================================================
system / developer messages    ``systemInstruction.parts[{text}]``
user / assistant               ``contents[{role: user | model, parts}]``; consecutive
                               same-role turns merged
text / image_url / input_audio ``text`` / ``inlineData{mimeType, data}`` (data: URLs) or
/ file parts                   ``fileData{mimeType, fileUri}`` (http(s) URLs, MIME from the
                               extension)
assistant tool_calls           ``functionCall{name, args}``; ``thoughtSignature`` from the call's
                               ``extra_content.google.thought_signature``, else
                               `DUMMY_THOUGHT_SIGNATURE` on a turn's first call (see below)
``role: tool``                 ``functionResponse{name, response: {output | error}}`` in a user
                               turn; the name is recovered from the earlier tool_calls by id
tools (function)               ``tools[{functionDeclarations[{name, description, parameters}]}]``
                               (JSON schema → Gemini schema, gemini_schema)
tool_choice none/auto/         ``toolConfig.functionCallingConfig.mode`` NONE / AUTO / ANY;
required/named/allowed_tools   named and allowed_tools(required) → ANY + allowedFunctionNames
parallel_tool_calls: false     nothing is sent: Gemini has no such setting and may answer
                               with several functionCall parts. The response translators keep
                               only the first (gemini_response, ``parallel_tool_calls=False``,
                               set by the provider), so the caller gets at most one tool call;
                               the first is the one Gemini 3 puts the thought signature on
temperature, top_p, top_k, n,  ``generationConfig`` temperature, topP, topK, candidateCount,
max tokens, stop, seed,        maxOutputTokens, stopSequences, seed, presencePenalty,
penalties                      frequencyPenalty
response_format json_object /  ``responseMimeType: application/json`` (+ ``responseSchema``)
json_schema
thinking / reasoning_effort    ``generationConfig.thinkingConfig{thinkingBudget,
                               includeThoughts}``; disabled → budget 0; adaptive → -1 (dynamic)
=============================  ================================================================

Tool call ids: Gemini matches function responses to calls by name and order, so no ids are
sent. Thought signatures: Gemini 3 models refuse a history whose function calls lack the
signature they produced; calls that came from another provider (a fallback) carry none, and
Google documents `DUMMY_THOUGHT_SIGNATURE` for exactly that case.

Raised as UnsupportedFeature: logprobs, logit_bias, audio output, legacy functions,
allowed_tools in auto mode, custom tools, OpenAI file ids, images whose MIME type cannot be
told, schemas Gemini cannot express, verbosity, web search. Dropped because they do not
change the answer: user/safety_identifier, store, metadata, service_tier, prompt cache hints,
prediction, message ``name``, image ``detail``, ``reasoning_content``/``thinking_blocks`` in
history (Gemini reads only the thought signatures), a function's ``strict`` flag.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from ._common import (
    EXTRA_CONTENT,
    TOOL_IS_ERROR,
    function_def,
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
    stop_list,
    text_of,
)
from .errors import InvalidRequest, UnsupportedFeature
from .gemini_schema import json_schema_to_gemini

__all__ = ["DUMMY_THOUGHT_SIGNATURE", "openai_to_gemini_request"]

#: Google's documented placeholder for function calls that have no real thought signature.
DUMMY_THOUGHT_SIGNATURE = "skip_thought_signature_validator"
_P = "gemini"
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mp3"}


def openai_to_gemini_request(body: dict[str, Any]) -> dict[str, Any]:
    """Translate a canonical request into a Gemini ``generateContent`` body.

    ``stream`` is not part of the body: the provider picks ``streamGenerateContent?alt=sse``.
    """
    reject_common(body, _P)
    system, contents = _contents(messages_of(body))
    if not contents:
        raise UnsupportedFeature(
            "system-only conversation", _P, "Gemini needs at least one non-empty user message")
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": t} for t in system]}
    declarations = _declarations(body.get("tools"))
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
    tool_config = _tool_config(body.get("tool_choice"), bool(declarations))
    if tool_config:
        out["toolConfig"] = {"functionCallingConfig": tool_config}
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    return out


def _contents(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id → function name
    for i, msg in enumerate(messages):
        role, path = msg["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            text = text_of(msg.get("content"), f"{path}.content", _P)
            if text:
                system.append(text)
        elif role == "user":
            _append(contents, "user", _user_parts(msg.get("content"), f"{path}.content"))
        elif role == "assistant":
            _append(contents, "model", _model_parts(msg, path, names))
        elif role == "tool":
            _append(contents, "user", [_function_response(msg, path, names)])
        elif role == "function":
            raise UnsupportedFeature("functions", _P, "legacy 'function' messages; use tools")
        else:
            raise InvalidRequest(f"{path}.role", f"unknown role {role!r}")
    return system, contents


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _user_parts(content: Any, path: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(path, "must be a string or a list of content parts")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        ppath = f"{path}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise InvalidRequest(f"{ppath}.text", "must be a string")
            if part["text"]:
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            url = obj(part.get("image_url"), f"{ppath}.image_url").get("url")
            parts.append(_media_part(url, f"{ppath}.image_url.url"))
        elif kind == "input_audio":
            audio = obj(part.get("input_audio"), f"{ppath}.input_audio")
            fmt = audio.get("format")
            mime = _AUDIO_MIME.get(fmt) if isinstance(fmt, str) else None
            if mime is None or not isinstance(audio.get("data"), str):
                raise InvalidRequest(
                    f"{ppath}.input_audio", "needs base64 'data' and format wav|mp3"
                )
            parts.append({"inlineData": {"mimeType": mime, "data": audio["data"]}})
        elif kind == "file":
            file = obj(part.get("file"), f"{ppath}.file")
            if file.get("file_id"):
                raise UnsupportedFeature("file_id", _P, "OpenAI file ids cannot be sent to Gemini")
            parts.append(_media_part(file.get("file_data"), f"{ppath}.file.file_data"))
        else:
            raise InvalidRequest(ppath, f"unknown content part type {kind!r}")
    return parts


def _media_part(url: Any, path: str) -> dict[str, Any]:
    if not isinstance(url, str):
        raise InvalidRequest(path, "must be a string")
    if url.startswith("data:"):
        mime, data = parse_data_url(url, path)
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("http://", "https://", "gs://")):
        guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
        if guessed is None:
            raise UnsupportedFeature(
                "media URL", _P, f"cannot tell the MIME type of {path}; send a data: URL instead"
            )
        return {"fileData": {"mimeType": guessed, "fileUri": url}}
    raise InvalidRequest(path, "must be an http(s) URL or a base64 data URL")


def _model_parts(msg: dict[str, Any], path: str, names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = msg.get("content")
    if content:
        text = text_of(content, f"{path}.content", _P)
        if text:
            parts.append({"text": text})
    refusal = msg.get("refusal")
    if refusal:
        parts.append({"text": text_of(refusal, f"{path}.refusal", _P)})
    for j, call in enumerate(items(msg.get("tool_calls"), f"{path}.tool_calls")):
        cpath = f"{path}.tool_calls[{j}]"
        call = obj(call, cpath)
        if call.get("type", "function") != "function":
            raise UnsupportedFeature("custom tool calls", _P, "only function tools are translated")
        fn = obj(call.get("function"), f"{cpath}.function")
        name = name_at(fn.get("name"), f"{cpath}.function.name")
        names[name_at(call.get("id"), f"{cpath}.id")] = name
        part: dict[str, Any] = {
            "functionCall": {
                "name": name,
                "args": parse_arguments(fn.get("arguments"), f"{cpath}.function.arguments"),
            }
        }
        extra = obj(call.get(EXTRA_CONTENT), f"{cpath}.{EXTRA_CONTENT}")
        signature = obj(extra.get("google"), f"{cpath}.{EXTRA_CONTENT}.google").get(
            "thought_signature"
        )
        if not isinstance(signature, (str, type(None))):
            raise InvalidRequest(
                f"{cpath}.{EXTRA_CONTENT}.google.thought_signature", "must be a string"
            )
        if signature:
            part["thoughtSignature"] = signature
        elif j == 0:
            part["thoughtSignature"] = DUMMY_THOUGHT_SIGNATURE
        parts.append(part)
    return parts


def _function_response(msg: dict[str, Any], path: str, names: dict[str, str]) -> dict[str, Any]:
    call_id = msg.get("tool_call_id")
    if not isinstance(call_id, str) or call_id not in names:
        raise InvalidRequest(
            f"{path}.tool_call_id",
            "does not match the id of a tool call in an earlier assistant message",
        )
    text = text_of(msg.get("content"), f"{path}.content", _P)
    key = "error" if msg.get(TOOL_IS_ERROR) else "output"
    return {"functionResponse": {"name": names[call_id], "response": {key: text}}}


def _declarations(tools: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(items(tools, "tools")):
        fn = function_def(tool, i, _P)
        decl: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            decl["description"] = fn["description"]
        params = fn.get("parameters")
        if params and (params.get("properties") or params.get("type") != "object"):
            # Gemini rejects an OBJECT with no properties: a parameterless function omits it
            decl["parameters"] = json_schema_to_gemini(
                params, path=f"tools[{i}].function.parameters"
            )
        out.append(decl)
    return out


def _tool_config(choice: Any, has_tools: bool) -> dict[str, Any] | None:
    if choice is None:
        return None
    if not has_tools:
        if choice == "none":
            return None
        raise InvalidRequest("tool_choice", "is set but the request has no tools")
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "required":
        return {"mode": "ANY"}
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function":
        fn = obj(choice.get("function"), "tool_choice.function")
        return {"mode": "ANY",
                "allowedFunctionNames": [name_at(fn.get("name"), "tool_choice.function.name")]}
    if kind == "allowed_tools":
        where = "tool_choice.allowed_tools"
        allowed = obj(choice.get("allowed_tools"), where)
        if allowed.get("mode") != "required":
            raise UnsupportedFeature(
                "tool_choice allowed_tools (auto)", _P, "Gemini restricts tools only in ANY mode"
            )
        names = [
            name_at(
                obj(
                    obj(t, f"{where}.tools[{k}]").get("function"), f"{where}.tools[{k}].function"
                ).get("name"),
                f"{where}.tools[{k}].function.name",
            )
            for k, t in enumerate(items(allowed.get("tools"), f"{where}.tools"))
        ]
        return {"mode": "ANY", "allowedFunctionNames": names}
    if kind == "custom":
        raise UnsupportedFeature("tool_choice custom", _P, "no Gemini equivalent")
    raise InvalidRequest("tool_choice", "must be none, auto, required or a named function")


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for src, dst in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"),
                     ("seed", "seed"), ("presence_penalty", "presencePenalty"),
                     ("frequency_penalty", "frequencyPenalty")):
        if number(body, src) is not None:
            config[dst] = body[src]
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise InvalidRequest("n", "must be a positive integer")
    if n is not None and n != 1:
        config["candidateCount"] = n
    max_tokens = max_output_tokens(body)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stops = stop_list(body.get("stop"))
    if stops:
        config["stopSequences"] = stops
    fmt = obj(body.get("response_format"), "response_format")
    kind = fmt.get("type")
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        if kind == "json_schema":
            schema = obj(fmt.get("json_schema"), "response_format.json_schema").get("schema")
            if not isinstance(schema, dict):
                raise InvalidRequest("response_format.json_schema.schema", "must be a JSON schema")
            config["responseSchema"] = json_schema_to_gemini(
                schema, path="response_format.json_schema.schema")
    elif kind not in (None, "text"):
        raise InvalidRequest("response_format.type", "must be text, json_object or json_schema")
    thinking = resolve_thinking(body)
    if thinking is not None:
        if thinking["type"] == "enabled" and thinking["budget_tokens"] > 0:
            config["thinkingConfig"] = {"thinkingBudget": thinking["budget_tokens"],
                                        "includeThoughts": True}
        elif thinking["type"] == "adaptive":
            config["thinkingConfig"] = {"thinkingBudget": -1, "includeThoughts": True}
        else:
            config["thinkingConfig"] = {"thinkingBudget": 0}
    return config
