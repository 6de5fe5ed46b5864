"""OpenAPI 3.0 descriptions of the sidecar's two ports, served at ``GET /openapi.json`` on each.

``data_spec(models)`` describes the data port (OpenAI-compatible chat completions and
embeddings, Anthropic-compatible messages and token counting, the OpenAI Responses API -- its
schemas in ``openapi_responses`` --, the model listing); given the names this sidecar serves, the
``model`` fields list them. ``openapi_admin.admin_spec()`` describes the admin port (probes,
Prometheus metrics, ``/v1/status`` as in docs/status-api.md). Both are plain JSON-able dicts; the
reliability suite runs schemathesis against them (tests/reliability/test_openapi.py).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from .. import __version__
from .openapi_responses import RESPONSES_EVENTS, RESPONSES_SUMMARY, responses_schemas

__all__ = ["data_spec"]

_OPENAPI = "3.0.3"
_NULLABLE_STRING = {"type": "string", "nullable": True}
_NULLABLE_NUMBER = {"type": "number", "nullable": True}
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,252}$"
_TOKEN = r"^[\x21-\x7e]{1,256}$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}},
            **extra}


# -- shared schemas ------------------------------------------------------------------------------

_ATTEMPT = {
    "type": "object",
    "description": "One line of the attempt trail: an upstream call or a skip (no secrets, no "
                   "prompt text).",
    "required": ["index", "group", "tier", "model", "result", "reason"],
    "properties": {
        "index": {"type": "integer"},
        "call": {"type": "integer", "nullable": True},
        "phase": {"type": "string", "enum": ["pinned", "pool", "chain", "last_resort"]},
        "group": {"type": "string"},
        "tier": {"type": "string"},
        "model": {"type": "string"},
        "provider": {"type": "string"},
        "start": {"type": "number"},
        "duration": {"type": "number"},
        "result": {"type": "string", "enum": ["ok", "error", "skipped"]},
        "reason": {"type": "string"},
        "error_class": _NULLABLE_STRING,
        "status": {"type": "integer", "nullable": True},
        "message": _NULLABLE_STRING,
    },
}

_OPENAI_ERROR = {
    "type": "object",
    "description": "The OpenAI error shape; a request that exhausted its chain lists every "
                   "attempt.",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["message", "type"],
        "properties": {
            "message": {"type": "string"},
            "type": {"type": "string"},
            "param": _NULLABLE_STRING,
            "code": _NULLABLE_STRING,
            "attempts": {"type": "array", "items": _ref("Attempt")},
        },
    }},
}

_ANTHROPIC_ERROR = {
    "type": "object",
    "description": "The Anthropic error shape.",
    "required": ["type", "error"],
    "properties": {
        "type": {"type": "string", "enum": ["error"]},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {
                "type": {"type": "string"},
                "message": {"type": "string"},
                "attempts": {"type": "array", "items": _ref("Attempt")},
            },
        },
    },
}

_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
        "content": {"type": "string", "maxLength": 2000},
    },
}

_CHAT_REQUEST = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "model": {"type": "string", "description": "A group reference (group or group.tier), a "
                  "polling pool or a workflow node; absent or 'default': the sidecar's pool."},
        "messages": {"type": "array", "minItems": 1, "maxItems": 8, "items": _ref("Message")},
        "stream": {"type": "boolean"},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 4096},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    },
}

_ANTHROPIC_REQUEST = {
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        "model": {"type": "string"},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 4096},
        "system": {"type": "string", "maxLength": 2000},
        "messages": {"type": "array", "minItems": 1, "maxItems": 8, "items": {
            "type": "object",
            "required": ["role", "content"],
            "properties": {
                "role": {"type": "string", "enum": ["user", "assistant"]},
                "content": {"type": "string", "minLength": 1, "maxLength": 2000},
            },
        }},
        "stream": {"type": "boolean"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    },
}

_CHAT_COMPLETION = {
    "type": "object",
    "required": ["id", "object", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["chat.completion"]},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {"type": "array", "items": {
            "type": "object",
            "required": ["index", "message"],
            "properties": {
                "index": {"type": "integer"},
                "message": {"type": "object", "required": ["role"], "properties": {
                    "role": {"type": "string"},
                    "content": _NULLABLE_STRING,
                }},
                "finish_reason": _NULLABLE_STRING,
            },
        }},
        "usage": {"type": "object", "nullable": True},
    },
}

_ANTHROPIC_MESSAGE = {
    "type": "object",
    "required": ["id", "type", "role", "content"],
    "properties": {
        "id": {"type": "string"},
        "type": {"type": "string", "enum": ["message"]},
        "role": {"type": "string", "enum": ["assistant"]},
        "model": {"type": "string"},
        "content": {"type": "array", "items": {"type": "object", "required": ["type"]}},
        "stop_reason": _NULLABLE_STRING,
        "usage": {"type": "object"},
    },
}

_MODEL = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["model"]},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
        "kind": {"type": "string", "enum": ["group", "tier", "pool", "node"]},
        "endpoints": {"type": "array", "description": "The endpoints that serve this name "
                      "(chat when its route holds a chat model, embeddings when it holds an "
                      "embedding model, count_tokens always).", "items": {"type": "string"}},
        "embedding_space": {"type": "string", "description": "The embedding space its "
                            "embeddings requests are served in."},
        "embedding_dimensions": {"type": "integer", "nullable": True},
    },
}

_EMBEDDINGS_REQUEST = {
    "type": "object",
    "required": ["input"],
    "properties": {
        "model": {"type": "string", "description": "A group reference, pool or workflow node "
                  "whose route holds embedding models."},
        "input": {"oneOf": [
            {"type": "string", "minLength": 1, "maxLength": 2000},
            {"type": "array", "minItems": 1, "maxItems": 8,
             "items": {"type": "string", "minLength": 1, "maxLength": 500}},
            {"type": "array", "minItems": 1, "maxItems": 64,
             "items": {"type": "integer", "minimum": 0, "maximum": 200000}},
            {"type": "array", "minItems": 1, "maxItems": 8, "items": {
                "type": "array", "minItems": 1, "maxItems": 64,
                "items": {"type": "integer", "minimum": 0, "maximum": 200000}}},
        ]},
        "encoding_format": {"type": "string", "enum": ["float", "base64"]},
        "dimensions": {"type": "integer", "minimum": 1, "maximum": 4096},
        "user": {"type": "string", "maxLength": 256},
    },
}

_EMBEDDINGS = {
    "type": "object",
    "required": ["object", "data", "model", "usage"],
    "properties": {
        "object": {"type": "string", "enum": ["list"]},
        "data": {"type": "array", "items": {
            "type": "object",
            "required": ["object", "index", "embedding"],
            "properties": {
                "object": {"type": "string", "enum": ["embedding"]},
                "index": {"type": "integer", "minimum": 0},
                "embedding": {"oneOf": [
                    {"type": "array", "items": {"type": "number"}},
                    {"type": "string", "description": "base64 of little-endian float32"}]},
            },
        }},
        "model": {"type": "string"},
        "usage": {"type": "object", "required": ["prompt_tokens", "total_tokens"],
                  "properties": {
                      "prompt_tokens": {"type": "integer", "minimum": 0},
                      "total_tokens": {"type": "integer", "minimum": 0},
                      "estimated": {"type": "boolean", "description": "Estimated by the "
                                    "sidecar: the upstream (Gemini) reports no usage."}}},
    },
}

_COUNT_TOKENS_REQUEST = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string"},
        "system": {"type": "string", "maxLength": 2000},
        "messages": _ANTHROPIC_REQUEST["properties"]["messages"],  # type: ignore[index]
        "tools": {"type": "array", "maxItems": 4, "items": {
            "type": "object", "required": ["name", "input_schema"],
            "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                           "description": {"type": "string", "maxLength": 500},
                           "input_schema": {"type": "object", "required": ["type"],
                                            "properties": {"type": {"type": "string",
                                                                    "enum": ["object"]}}}}}},
        "thinking": {"type": "object", "required": ["type"], "properties": {
            "type": {"type": "string", "enum": ["enabled", "disabled"]},
            "budget_tokens": {"type": "integer", "minimum": 1024, "maximum": 32000}}},
    },
}

_TOKEN_COUNT = {
    "type": "object",
    "required": ["input_tokens"],
    "properties": {"input_tokens": {"type": "integer", "minimum": 0}},
}

_SERVED_HEADERS = {
    "X-Echelon-Served-By": {"description": "The model id that served the request.",
                            "schema": {"type": "string"}},
    "X-Echelon-Tier": {"description": "group.tier of the serving instance.",
                       "schema": {"type": "string"}},
    "X-Echelon-Attempts": {"description": "Upstream calls it took.",
                           "schema": {"type": "integer", "minimum": 1}},
    "X-Echelon-Fallbacks": {"description": "Moves to a later step or another pool instance.",
                            "schema": {"type": "integer", "minimum": 0}},
    "X-Request-Id": {"schema": {"type": "string"}},
}

_REQUEST_HEADERS = [
    {"name": "X-Echelon-Fallback-Groups", "in": "header", "required": False,
     "description": "Comma-separated group references replacing the group's fallback groups, "
                    "or 'none'.",
     "schema": {"type": "string", "maxLength": 300}},
    {"name": "X-Echelon-Node", "in": "header", "required": False,
     "description": "The calling workflow node: its routing and limits apply.",
     "schema": {"type": "string", "pattern": _NAME}},
    {"name": "X-Echelon-Session", "in": "header", "required": False,
     "description": "Pins a conversation to one instance.",
     "schema": {"type": "string", "pattern": _TOKEN}},
    {"name": "X-Echelon-Timeout", "in": "header", "required": False,
     "description": "Deadline of the whole request, seconds in (0, 3600].",
     "schema": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 3600}},
    {"name": "X-Request-Id", "in": "header", "required": False,
     "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,128}$"}},
]


_ANTHROPIC_EVENTS = ["message_start", "content_block_start", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop", "ping", "error"]


def _sse_event(names: list[str]) -> dict[str, Any]:
    """One event of a stream (OpenAPI before 3.2: the schema describes each event)."""
    return {"type": "object", "required": ["data", "event"], "properties": {
        "event": {"type": "string", "enum": names},
        "data": {"type": "string", "description": "A JSON object (OpenAI: or [DONE])."}}}


def _generation(request: str, answer: str, error: str, summary: str,
                event_names: list[str] | None = None, *, stream: bool = True) -> dict[str, Any]:
    err = _ref(error)
    events = _sse_event(event_names or (_ANTHROPIC_EVENTS if error == "AnthropicError"
                                        else ["message"]))
    retry = {"Retry-After": {"description": "Seconds until trying again may help.",
                             "schema": {"type": "integer", "minimum": 1}}}
    content: dict[str, Any] = {"application/json": {"schema": _ref(answer)}}
    if stream:
        content["text/event-stream"] = {"schema": events}
    return {
        "summary": summary,
        "parameters": copy.deepcopy(_REQUEST_HEADERS),
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref(request)}}},
        "responses": {
            "200": {
                "description": "Served (streams: text/event-stream; a stream that breaks after "
                               "its first byte ends with one error event)." if stream else
                               "Served.",
                "headers": _SERVED_HEADERS,
                "content": content,
            },
            "400": _json(err, "The request is wrong (body, field or header named), or an "
                         "upstream rejected it."),
            "401": _json(err, "An upstream refused the request's credentials."),
            "404": _json(err, "The model names no group, tier, pool or node (or an upstream "
                         "answered 404)."),
            "413": _json(err, "The body is over the size limit."),
            "422": _json(err, "An upstream found the request unprocessable."),
            "429": _json(err, "A rate or concurrency limit refused it, or every upstream was "
                         "rate limited.", headers=retry),
            "502": _json(err, "Every attempt of the fallback chain failed (the trail says "
                         "why)."),
            "503": _json(err, "Every circuit is open, no instance is available, or no valid "
                         "config is loaded yet.", headers=retry),
            "504": _json(err, "The request's deadline passed."),
        },
    }


def _count_tokens() -> dict[str, Any]:
    err = _ref("AnthropicError")
    parameters = [p for p in copy.deepcopy(_REQUEST_HEADERS)
                  if p["name"] in ("X-Echelon-Node", "X-Request-Id")]
    return {
        "summary": "Anthropic-compatible token count: the sidecar's estimate of the request's "
                   "input tokens, for any group, tier, pool or node; no upstream is called.",
        "parameters": parameters,
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref("AnthropicCountTokensRequest")}}},
        "responses": {
            "200": _json(_ref("TokenCount"), "The estimate.", headers={
                "X-Echelon-Token-Count": {"description": "Always 'estimated'.",
                                          "schema": {"type": "string", "enum": ["estimated"]}},
                "X-Request-Id": {"schema": {"type": "string"}}}),
            "400": _json(err, "The request is wrong (body, field or header named)."),
            "404": _json(err, "The model names no group, tier, pool or node."),
            "413": _json(err, "The body is over the size limit."),
            "503": _json(err, "No valid config is loaded yet."),
        },
    }


def _spec(title: str, description: str, paths: dict[str, Any],
          schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": _OPENAPI,
        "info": {"title": title, "version": __version__, "description": description},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _self_path() -> dict[str, Any]:
    return {"get": {"summary": "This description.", "responses": {"200": _json(
        {"type": "object", "required": ["openapi", "paths"]}, "The OpenAPI document.")}}}


def data_spec(models: Sequence[str] | None = None, *, nodes: Sequence[str] = (),
              groups: Sequence[str] = ()) -> dict[str, Any]:
    """The data port's OpenAPI document. Given what this sidecar serves, ``models`` (every
    name), ``nodes`` (workflow nodes) and ``groups`` (group references) become the documented
    values of ``model``, ``X-Echelon-Node`` and ``X-Echelon-Fallback-Groups``."""
    schemas: dict[str, Any] = {
        "Attempt": _ATTEMPT, "OpenAIError": _OPENAI_ERROR, "AnthropicError": _ANTHROPIC_ERROR,
        "Message": _MESSAGE, "ChatCompletionRequest": copy.deepcopy(_CHAT_REQUEST),
        "AnthropicMessagesRequest": copy.deepcopy(_ANTHROPIC_REQUEST),
        "ChatCompletion": _CHAT_COMPLETION, "AnthropicMessage": _ANTHROPIC_MESSAGE,
        "Model": _MODEL, **responses_schemas(),
        "EmbeddingsRequest": copy.deepcopy(_EMBEDDINGS_REQUEST),
        "Embeddings": _EMBEDDINGS,
        "AnthropicCountTokensRequest": copy.deepcopy(_COUNT_TOKENS_REQUEST),
        "TokenCount": _TOKEN_COUNT,
        "ModelList": {"type": "object", "required": ["object", "data"], "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ref("Model")}}},
    }
    if models:
        for name in ("ChatCompletionRequest", "AnthropicMessagesRequest", "ResponsesRequest",
                     "EmbeddingsRequest", "AnthropicCountTokensRequest"):
            schemas[name]["properties"]["model"]["enum"] = sorted(models)
    chat = _generation("ChatCompletionRequest", "ChatCompletion", "OpenAIError",
                       "OpenAI-compatible chat completion, served by the model's fallback chain "
                       "or pool.")
    messages = _generation("AnthropicMessagesRequest", "AnthropicMessage", "AnthropicError",
                           "Anthropic-compatible messages, served by the model's fallback chain "
                           "or pool.")
    responses = _generation("ResponsesRequest", "Response", "OpenAIError", RESPONSES_SUMMARY,
                            RESPONSES_EVENTS)
    embeddings = _generation("EmbeddingsRequest", "Embeddings", "OpenAIError",
                             "OpenAI-compatible embeddings, served by the model's fallback chain "
                             "or pool within one embedding space (X-Echelon-Usage: estimated "
                             "when the usage is the sidecar's estimate).", stream=False)
    embeddings["responses"]["200"]["headers"] = {**_SERVED_HEADERS, "X-Echelon-Usage": {
        "description": "'estimated' when the upstream (Gemini) reported no usage.",
        "schema": {"type": "string", "enum": ["estimated"]}}}
    count = _count_tokens()
    for operation in (chat, messages, responses, embeddings, count):
        headers = {p["name"]: p["schema"] for p in operation["parameters"]}
        if nodes:
            headers["X-Echelon-Node"]["enum"] = sorted(nodes)
        if groups and "X-Echelon-Fallback-Groups" in headers:
            headers["X-Echelon-Fallback-Groups"]["enum"] = ["none", *sorted(groups)]
    paths = {
        "/v1/chat/completions": {"post": chat},
        "/v1/messages": {"post": messages},
        "/v1/responses": {"post": responses},
        "/v1/embeddings": {"post": embeddings},
        "/v1/messages/count_tokens": {"post": count},
        "/v1/models": {"get": {"summary": "Every group, tier, pool and node served.",
                               "responses": {"200": _json(_ref("ModelList"), "The names.")}}},
        "/v1/models/{name}": {"get": {
            "summary": "One served name.",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": _NAME}}],
            "responses": {"200": _json(_ref("Model"), "It is served."),
                          "404": _json(_ref("OpenAIError"), "It is not.")}}},
        "/openapi.json": _self_path(),
    }
    return _spec("Echelon sidecar: data port", "OpenAI- and Anthropic-compatible endpoints "
                 "over per-task-group fallback chains and polling pools (loopback only).",
                 paths, schemas)
