"""Error responses in each caller's format, and the status each routing failure maps to.

OpenAI callers get ``{"error": {"message", "type", "param", "code", ...}}``; Anthropic callers
``{"type": "error", "error": {"type", "message"}}``. A request that exhausted its chain also
carries ``attempts``: every attempt and why it failed (no secrets, no prompt text).
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
from aiohttp import web

from ..engine import (
    AllCircuitsOpen,
    ChainExhausted,
    LimitRefused,
    Outcome,
    RequestRejected,
    RequestUnservable,
    UnknownTarget,
)
from ..errors import EchelonError, RoutingError
from ..providers import CallerFormat
from ..translate import openai_error_to_anthropic

__all__ = ["ClientError", "error_response", "routing_error_response"]


class ClientError(EchelonError):
    """A bad request: answered with ``status`` and a message naming the field or header."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
          405: "invalid_request_error", 413: "request_too_large", 415: "invalid_request_error",
          429: "rate_limit_error", 502: "upstream_error", 503: "service_unavailable",
          504: "timeout_error"}


def error_response(fmt: CallerFormat, status: int, message: str, *, param: str | None = None,
                   code: str | None = None, extra: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    err: dict[str, Any] = {"message": message, "type": _TYPES.get(status, "api_error"),
                           "param": param, "code": code}
    if extra:
        err.update(extra)
    body: dict[str, Any] = {"error": err}
    if fmt == "anthropic":
        body = openai_error_to_anthropic(body, status)
        if extra:
            body["error"].update(extra)
    return web.Response(status=status, body=orjson.dumps(body),
                        content_type="application/json", headers=headers)


def _trail(outcome: Outcome | None) -> list[dict[str, object]]:
    return [a.to_dict() for a in outcome.attempts] if outcome is not None else []


def _seconds(wait: float) -> str:
    """A Retry-After value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(wait)))


def routing_error_response(fmt: CallerFormat, exc: RoutingError,
                           headers: dict[str, str]) -> web.Response:
    """The caller's error for ``exc``. The engine's ``retry_after`` (soonest circuit to turn
    half-open, soonest upstream Retry-After, limit refill) becomes the ``Retry-After`` header;
    every 429 carries one. Errors that retrying cannot fix carry ``x-should-retry: false``,
    which the official SDKs obey."""
    outcome: Outcome | None = getattr(exc, "outcome", None)
    retry_after: float | None = getattr(exc, "retry_after", None)
    trail = _trail(outcome)
    if outcome is not None:
        headers["X-Echelon-Attempts"] = str(outcome.attempt_count)
    extra = {"attempts": trail} if trail else None
    if isinstance(exc, UnknownTarget):
        if exc.what == "fallback group":
            return error_response(fmt, 400, f"X-Echelon-Fallback-Groups: {exc}",
                                  param="X-Echelon-Fallback-Groups", code="unknown_group",
                                  headers=headers)
        if exc.what == "node":
            return error_response(fmt, 400, f"X-Echelon-Node: {exc}", param="X-Echelon-Node",
                                  code="unknown_node", headers=headers)
        return error_response(fmt, 404, str(exc), param="model", code="model_not_found",
                              headers=headers)
    if isinstance(exc, RequestRejected):
        body = exc.body if isinstance(exc.body, dict) else {
            "error": {"message": str(exc), "type": "invalid_request_error", "param": None,
                      "code": None}}
        status = exc.status or 400
        if trail:
            body = {**body, "error": {**body.get("error", {}), "attempts": trail}}
        if fmt == "anthropic":
            converted = openai_error_to_anthropic(body, status)
            if trail:
                converted["error"]["attempts"] = trail
            body = converted
        return web.Response(status=status, body=orjson.dumps(body),
                            content_type="application/json", headers=headers)
    if isinstance(exc, RequestUnservable):
        headers["x-should-retry"] = "false"
        param = exc.feature if _FIELD.fullmatch(exc.feature) else None
        return error_response(fmt, 400, str(exc), param=param,
                              code=f"unsupported_{_slug(exc.feature)}", extra=extra,
                              headers=headers)
    if isinstance(exc, LimitRefused):
        headers["Retry-After"] = _seconds(retry_after if retry_after is not None else 1.0)
        return error_response(fmt, 429, str(exc), code=f"{exc.level}_limit", extra=extra,
                              headers=headers)
    if isinstance(exc, AllCircuitsOpen):
        if retry_after is not None:
            headers["Retry-After"] = _seconds(retry_after)
        return error_response(fmt, 503, str(exc), code="all_circuits_open", extra=extra,
                              headers=headers)
    if isinstance(exc, ChainExhausted):
        status, code = _exhausted_status(outcome)
        if status == 429:
            headers["Retry-After"] = _seconds(retry_after if retry_after is not None else 1.0)
        return error_response(fmt, status, str(exc), code=code, extra=extra, headers=headers)
    return error_response(fmt, 502, str(exc), code="routing_error", extra=extra, headers=headers)


_FIELD = re.compile(r"[a-z_][a-z0-9_]*")


def _slug(feature: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", feature.lower()).strip("_") or "feature"


def _exhausted_status(outcome: Outcome | None) -> tuple[int, str]:
    if outcome is not None and outcome.stop_reason == "rate_limited":
        return 429, "upstream_rate_limited"
    calls = [a for a in (outcome.attempts if outcome else []) if a.call is not None]
    if calls and all(a.status == 429 for a in calls):
        return 429, "upstream_rate_limited"
    if outcome is not None and any(a.reason == "deadline" for a in outcome.attempts):
        return 504, "deadline_exceeded"
    if not calls:
        return 503, "no_instance_available"
    return 502, "fallback_chain_exhausted"
