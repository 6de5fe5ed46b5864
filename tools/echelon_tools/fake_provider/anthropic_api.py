"""Anthropic wire format: `POST /v1/messages` (and its `GET /v1/models`).

Shapes follow the `anthropic` SDK's types (`Message`, the raw stream events) and the API's
error body `{"type": "error", "error": {"type", "message"}, "request_id"}`.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
from aiohttp import web

from .content import Prompt, Reply, ToolSpec, split_chars, split_text, texts_tokens
from .pipeline import serve
from .state import STATE
from .wire import (
    Exchange,
    InvalidRequest,
    Wire,
    body_as_json,
    json_response,
    new_id,
    retry_after_headers,
)

__all__ = ["AnthropicWire", "add_routes", "list_models"]

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "The requested resource could not be found."),
    408: ("timeout_error", "Request timed out."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "Number of requests has exceeded your rate limit. Please try again later.",
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif block.get("type") == "tool_result":
            parts.append(_text_of(block.get("content")))
    return " ".join(parts)


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _signature(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


class AnthropicWire(Wire):
    name = "anthropic"

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> web.Response:
        typ, default = _ERRORS.get(
            status, ("api_error" if status >= 500 else "invalid_request_error",
                     f"Fake upstream error {status}.")
        )
        request_id = new_id("req_011", 24)
        body = {"type": "error", "error": {"type": typ, "message": message or default},
                "request_id": request_id}
        headers = {"request-id": request_id, **retry_after_headers(retry_after)}
        if status == 429:
            headers.update({
                "anthropic-ratelimit-requests-limit": "50",
                "anthropic-ratelimit-requests-remaining": "0",
            })
        if status == 401:
            headers["x-should-retry"] = "false"
        return json_response(body, status=status, headers=headers)

    def unauthorized(self, request: web.Request, api_key: str) -> web.Response | None:
        key = request.headers.get("x-api-key")
        if key is None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else None
        if key == api_key:
            return None
        if key is None:
            return self.error(401, "x-api-key header is required")
        return self.error(401, "invalid x-api-key")

    def prompt(self, exchange: Exchange) -> Prompt:
        if "anthropic-version" not in exchange.request.headers:
            raise InvalidRequest("anthropic-version: header is required")
        body = exchange.body
        model, max_tokens, messages = _required_fields(body)
        texts, last_user = _message_texts(body.get("system"), messages)
        prompt = Prompt(model=model, last_user_text=last_user, prompt_tokens=texts_tokens(texts),
                        max_tokens=max_tokens)
        _read_tools(body, prompt)
        _read_thinking(body, prompt, exchange)
        fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            prompt.json_output = True
            prompt.json_schema = fmt.get("schema") if isinstance(fmt.get("schema"), dict) else None
        return prompt

    @staticmethod
    def _stop(reply: Reply) -> str:
        if reply.tool_call is not None:
            return "tool_use"
        return "max_tokens" if reply.truncated else "end_turn"

    @staticmethod
    def _usage(reply: Reply) -> dict[str, Any]:
        return {
            "input_tokens": reply.prompt_tokens,
            "output_tokens": reply.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        }

    def _thinking_text(self, reply: Reply, exchange: Exchange) -> str:
        return "" if exchange.extra.get("thinking_omitted") else (reply.thinking or "")

    def body(self, reply: Reply, exchange: Exchange) -> bytes:
        content: list[dict[str, Any]] = []
        if reply.thinking is not None:
            text = self._thinking_text(reply, exchange)
            content.append({"type": "thinking", "thinking": text,
                            "signature": _signature(reply.thinking)})
        if reply.tool_call is not None:
            content.append({"type": "tool_use", "id": new_id("toolu_01", 22),
                            "name": reply.tool_call.name, "input": reply.tool_call.arguments})
        else:
            content.append({"type": "text", "text": reply.text})
        return orjson.dumps({
            "id": new_id("msg_01", 24),
            "type": "message",
            "role": "assistant",
            "model": exchange.model,
            "content": content,
            "stop_reason": self._stop(reply),
            "stop_sequence": None,
            "usage": self._usage(reply),
        })

    def frames(self, reply: Reply, exchange: Exchange, chunks: int) -> list[bytes]:
        start_usage = self._usage(reply) | {"output_tokens": 1}
        out = [_event("message_start", {"type": "message_start", "message": {
            "id": new_id("msg_01", 24), "type": "message", "role": "assistant",
            "model": exchange.model, "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": start_usage}})]
        index = 0

        def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
            nonlocal index
            out.append(_event("content_block_start", {
                "type": "content_block_start", "index": index, "content_block": start}))
            if index == 0:
                out.append(_event("ping", {"type": "ping"}))
            for delta in deltas:
                out.append(_event("content_block_delta", {
                    "type": "content_block_delta", "index": index, "delta": delta}))
            out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1

        if reply.thinking is not None:
            text = self._thinking_text(reply, exchange)
            deltas = [{"type": "thinking_delta", "thinking": p}
                      for p in (split_text(text, chunks) if text else [])]
            deltas.append({"type": "signature_delta", "signature": _signature(reply.thinking)})
            block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
        if reply.tool_call is not None:
            args = orjson.dumps(reply.tool_call.arguments).decode()
            block(
                {
                    "type": "tool_use",
                    "id": new_id("toolu_01", 22),
                    "name": reply.tool_call.name,
                    "input": {},
                },
                [
                    {"type": "input_json_delta", "partial_json": p}
                    for p in split_chars(args, chunks)
                ],
            )
        else:
            block({"type": "text", "text": ""},
                  [{"type": "text_delta", "text": p} for p in split_text(reply.text, chunks)])
        out.append(_event("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop(reply), "stop_sequence": None},
            "usage": {"output_tokens": reply.output_tokens}}))
        out.append(_event("message_stop", {"type": "message_stop"}))
        return out

    def malformed(self, exchange: Exchange) -> bytes:
        if exchange.stream:
            return b'event: message_start\ndata: {"type": "message_start", "message": {"id": \n\n'
        return b'{"id": "msg_broken", "type": "message", "content": [{"type": "text", "text": '


_WIRE = AnthropicWire()


async def messages(request: web.Request) -> web.StreamResponse:
    body, problem = body_as_json(await request.read())
    model = body.get("model") if body is not None else None
    exchange = Exchange(
        request=request,
        endpoint="anthropic.messages",
        model=model if isinstance(model, str) else "",
        body=body,
        stream=bool(body.get("stream")) if body is not None else False,
        body_error=problem,
    )
    return await serve(exchange, _WIRE)


async def list_models(request: web.Request) -> web.StreamResponse:
    """`GET /v1/models` with an `anthropic-version` header: Anthropic's model list."""
    state = request.app[STATE]
    state.stats.count_endpoint("anthropic.models")
    if state.settings.api_key is not None:
        denied = _WIRE.unauthorized(request, state.settings.api_key)
        if denied is not None:
            return denied
    data = [
        {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
        for m in state.settings.models
    ]
    return json_response({
        "data": data, "has_more": False,
        "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None,
    })


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)


def _required_fields(body: dict[str, Any]) -> tuple[str, int, list[Any]]:
    """``model``, ``max_tokens`` and ``messages``, refused as the Messages API refuses them."""
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise InvalidRequest(f"{name}: Field required", name)
    model, max_tokens, messages = body["model"], body["max_tokens"], body["messages"]
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Input should be a valid string", "model")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be greater than or equal to 1")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: at least one message is required")
    return model, max_tokens, messages


def _message_texts(system: Any, messages: list[Any]) -> tuple[list[str], str]:
    """The texts of the system prompt and every message, and the last user message's text."""
    texts = [_text_of(system)] if system else []
    last_user = ""
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            raise InvalidRequest(
                f"messages.{i}.role: Input should be 'user' or 'assistant'")
        text = _text_of(msg.get("content"))
        texts.append(text)
        if msg["role"] == "user":
            last_user = text
    return texts, last_user


def _read_tools(body: dict[str, Any], prompt: Prompt) -> None:
    """``tools`` and ``tool_choice`` (any / tool force a call; none takes the tools away)."""
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            prompt.tools.append(ToolSpec(tool["name"], tool.get("input_schema") or {}))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("any", "tool"):
            prompt.force_tool = True
            prompt.forced_tool_name = choice.get("name") if kind == "tool" else None
        elif kind == "none":
            prompt.tools = []


def _read_thinking(body: dict[str, Any], prompt: Prompt, exchange: Exchange) -> None:
    """``thinking`` (enabled with a budget the API accepts, or adaptive)."""
    thinking = body.get("thinking")
    if not (isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")):
        return
    budget = thinking.get("budget_tokens")
    if thinking["type"] == "enabled":
        if not isinstance(budget, int) or budget < 1024:
            raise InvalidRequest(
                "thinking.enabled.budget_tokens: Input should be greater than or equal "
                "to 1024")
        if budget >= body["max_tokens"]:
            raise InvalidRequest(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please "
                "consult our documentation at https://docs.claude.com/en/docs/"
                "build-with-claude/extended-thinking#max-tokens-and-context-window-size")
    prompt.thinking = True
    prompt.thinking_budget = budget if isinstance(budget, int) else None
    exchange.extra["thinking_omitted"] = thinking.get("display") == "omitted"
