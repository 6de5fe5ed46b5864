"""Upstream error bodies → the OpenAI error shape, and OpenAI errors → Anthropic's shape.

OpenAI shape: ``{"error": {"message", "type", "param", "code"}}``. The provider's message is
kept verbatim; ``type`` comes from the HTTP status (``OPENAI_ERROR_TYPES``) unless an
OpenAI-format body names its own; ``code`` keeps the provider's own code (OpenAI ``code``,
Anthropic ``error.type``, Gemini ``error.status``). Bodies that are not JSON (an HTML page
from a proxy, an empty body) still give a message: their text, or the status.

Anthropic shape: ``{"type": "error", "error": {"type", "message"}}`` with the type from the
status (``ANTHROPIC_ERROR_TYPES``).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

__all__ = [
    "ANTHROPIC_ERROR_TYPES",
    "OPENAI_ERROR_TYPES",
    "anthropic_error_to_openai",
    "openai_error_to_anthropic",
    "upstream_error_to_openai",
]

OPENAI_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "server_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_STATUS_FROM_ANTHROPIC_TYPE = {v: k for k, v in ANTHROPIC_ERROR_TYPES.items() if k != 422}
_MAX_TEXT = 2000


def _openai_type(status: int) -> str:
    if status in OPENAI_ERROR_TYPES:
        return OPENAI_ERROR_TYPES[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def _anthropic_type(status: int) -> str:
    if status in ANTHROPIC_ERROR_TYPES:
        return ANTHROPIC_ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def _error(message: str, type_: str, param: Any = None, code: Any = None) -> dict[str, Any]:
    return {"error": {
        "message": message,
        "type": type_,
        "param": param if isinstance(param, str) else None,
        "code": None if code is None else str(code),
    }}


def _text(body: bytes, status: int, provider: str) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return f"{provider} answered HTTP {status} with an empty body"
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def upstream_error_to_openai(
    provider: Literal["openai", "anthropic", "gemini"], status: int, body: bytes
) -> dict[str, Any]:
    """An upstream's error response (any body) → the OpenAI error shape."""
    try:
        data: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # Gemini streaming endpoints wrap errors in a list
    if not isinstance(data, dict):
        return _error(_text(body, status, provider), _openai_type(status))
    err = data.get("error")
    if provider == "anthropic" and isinstance(err, dict):
        return _error(str(err.get("message") or _text(body, status, provider)),
                      _openai_type(status), code=err.get("type"))
    if provider == "gemini" and isinstance(err, dict):
        return _error(str(err.get("message") or _text(body, status, provider)),
                      _openai_type(status), code=err.get("status") or err.get("code"))
    if isinstance(err, dict):  # OpenAI and compatible servers
        return _error(
            str(err.get("message") or _text(body, status, provider)),
            str(err.get("type") or _openai_type(status)),
            err.get("param"),
            err.get("code"),
        )
    if isinstance(err, str):
        return _error(err, _openai_type(status))
    for key in ("message", "detail"):  # vLLM-style objects and FastAPI-style {"detail": ...}
        if data.get(key):
            message = data[key] if isinstance(data[key], str) else orjson.dumps(data[key]).decode()
            return _error(message, str(data.get("type") or _openai_type(status)),
                          data.get("param"), data.get("code"))
    return _error(_text(body, status, provider), _openai_type(status))


def anthropic_error_to_openai(data: dict[str, Any], status: int | None = None) -> dict[str, Any]:
    """An Anthropic error object (e.g. a stream's ``error`` event) → the OpenAI error shape."""
    raw = data.get("error")
    err: dict[str, Any] = raw if isinstance(raw, dict) else {}
    kind = str(err.get("type") or "api_error")
    if status is None:
        status = _STATUS_FROM_ANTHROPIC_TYPE.get(kind, 500)
    return _error(str(err.get("message") or kind), _openai_type(status), code=kind)


def openai_error_to_anthropic(err: dict[str, Any], status: int) -> dict[str, Any]:
    """An OpenAI-shape error → Anthropic's ``{"type": "error", "error": {...}}``."""
    inner = err.get("error") if isinstance(err, dict) else None
    if isinstance(inner, dict):
        message = inner.get("message")
    elif isinstance(inner, str):
        message = inner
    else:
        message = err.get("message") if isinstance(err, dict) else None
    if not isinstance(message, str) or not message:
        message = f"upstream error (HTTP {status})"
    return {"type": "error", "error": {"type": _anthropic_type(status), "message": message}}
