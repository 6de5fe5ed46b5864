"""The OpenAPI schemas of ``POST /v1/responses`` (the OpenAI Responses API, stateless), used
by :func:`.openapi.data_spec`.

The request schema describes what the fuzzing in tests/reliability generates (a string or a
few messages, the common settings); the sidecar serves the whole input-item vocabulary that
docs/routing.md lists. The answer is a Response object; a stream is its typed events.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["RESPONSES_EVENTS", "RESPONSES_SUMMARY", "responses_schemas"]

RESPONSES_SUMMARY = ("OpenAI Responses API without server-side state (nothing is stored; send "
                     "the whole conversation in input; previous_response_id is refused), served "
                     "by the model's fallback chain or pool.")

RESPONSES_EVENTS = [
    "response.created", "response.in_progress", "response.output_item.added",
    "response.content_part.added", "response.output_text.delta", "response.output_text.done",
    "response.refusal.delta", "response.refusal.done", "response.content_part.done",
    "response.function_call_arguments.delta", "response.function_call_arguments.done",
    "response.output_item.done", "response.completed", "response.incomplete", "error",
    "response.failed",
]

_NULLABLE_STRING = {"type": "string", "nullable": True}

_INPUT_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "type": {"type": "string", "enum": ["message"]},
        "role": {"type": "string", "enum": ["user", "assistant", "system", "developer"]},
        "content": {"type": "string", "maxLength": 2000},
    },
}

_REQUEST = {
    "type": "object",
    "required": ["input"],
    "properties": {
        "model": {"type": "string", "description": "A group reference (group or group.tier), a "
                  "polling pool or a workflow node; absent or 'default': the sidecar's pool."},
        "input": {"oneOf": [
            {"type": "string", "minLength": 1, "maxLength": 2000},
            {"type": "array", "minItems": 1, "maxItems": 8,
             "items": {"$ref": "#/components/schemas/ResponsesInputMessage"}}],
            "description": "The whole conversation (there is no stored state): a string, or "
                           "input items (messages, function_call, function_call_output)."},
        "instructions": {"type": "string", "maxLength": 2000},
        "stream": {"type": "boolean"},
        "store": {"type": "boolean", "description": "Served either way; nothing is stored."},
        "max_output_tokens": {"type": "integer", "minimum": 1, "maximum": 4096},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    },
}

_OUTPUT_ITEM = {
    "type": "object",
    "required": ["type"],
    "description": "A message (role assistant, output_text / refusal parts) or a function_call "
                   "(call_id, name, arguments).",
    "properties": {
        "type": {"type": "string", "enum": ["message", "function_call"]},
        "id": {"type": "string"},
        "status": {"type": "string"},
        "role": {"type": "string", "enum": ["assistant"]},
        "content": {"type": "array", "items": {"type": "object", "required": ["type"]}},
        "call_id": {"type": "string"},
        "name": {"type": "string"},
        "arguments": {"type": "string"},
    },
}

_RESPONSE = {
    "type": "object",
    "required": ["id", "object", "created_at", "status", "model", "output"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["response"]},
        "created_at": {"type": "integer"},
        "status": {"type": "string", "enum": ["completed", "incomplete"]},
        "model": {"type": "string"},
        "output": {"type": "array", "items": {"$ref": "#/components/schemas/ResponsesOutputItem"}},
        "incomplete_details": {"type": "object", "nullable": True,
                               "properties": {"reason": _NULLABLE_STRING}},
        "usage": {"type": "object", "nullable": True, "properties": {
            "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"}}},
        "store": {"type": "boolean", "enum": [False]},
    },
}


def responses_schemas() -> dict[str, Any]:
    """The component schemas of the Responses endpoint (fresh copies)."""
    return copy.deepcopy({"ResponsesRequest": _REQUEST, "ResponsesInputMessage": _INPUT_MESSAGE,
                          "ResponsesOutputItem": _OUTPUT_ITEM, "Response": _RESPONSE})
