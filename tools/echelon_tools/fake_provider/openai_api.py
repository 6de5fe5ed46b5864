"""OpenAI wire format: `POST /v1/chat/completions` and `GET /v1/models`.

Shapes follow the `openai` SDK's types (`ChatCompletion`, `ChatCompletionChunk`) and the API's
error body `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import time
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

__all__ = ["OpenAIWire", "add_routes", "list_models"]

_DONE = b"data: [DONE]\n\n"

# status -> (type, code, default message)
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found",
          "The model does not exist or you do not have access to it."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None,
          "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", None, "Gateway timeout."),
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


class OpenAIWire(Wire):
    name = "openai"

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> web.Response:
        typ, code, default = _ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None,
                     f"Fake upstream error {status}.")
        )
        body = {"error": {"message": message or default, "type": typ, "param": param, "code": code}}
        headers = {"x-request-id": new_id("req_"), **retry_after_headers(retry_after)}
        if status == 429:
            headers.update({
                "x-ratelimit-limit-requests": "60",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{retry_after or 1}s",
            })
        return json_response(body, status=status, headers=headers)

    def unauthorized(self, request: web.Request, api_key: str) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip() == api_key:
            return None
        if not auth:
            msg = ("You didn't provide an API key. You need to provide your API key in an "
                   "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
            resp = self.error(401, msg)
        else:
            shown = token[:3] + "*" * 4 + token[-4:] if len(token) > 8 else "*" * len(token)
            resp = self.error(401, f"Incorrect API key provided: {shown}. You can find your "
                              "API key at https://platform.openai.com/account/api-keys.")
        return resp

    def prompt(self, exchange: Exchange) -> Prompt:
        body = exchange.body
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest("you must provide a model parameter", "model")
        texts, last_user = _message_texts(body.get("messages"))
        prompt = Prompt(model=model, last_user_text=last_user, prompt_tokens=texts_tokens(texts))
        _read_tools(body, prompt)
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
            prompt.json_output = True
            schema = (fmt.get("json_schema") or {}).get("schema")
            prompt.json_schema = schema if isinstance(schema, dict) else None
        effort = body.get("reasoning_effort")
        if isinstance(effort, str) and effort not in ("none", "minimal"):
            prompt.thinking = True
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and limit > 0:
            prompt.max_tokens = limit
        return prompt

    def _usage(self, reply: Reply) -> dict[str, Any]:
        completion = reply.completion_tokens + reply.reasoning_tokens
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": reply.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def _finish(reply: Reply) -> str:
        if reply.tool_call is not None:
            return "tool_calls"
        return "length" if reply.truncated else "stop"

    def body(self, reply: Reply, exchange: Exchange) -> bytes:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if reply.tool_call is None else None,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_call is not None:
            message["tool_calls"] = [{
                "id": new_id("call_"),
                "type": "function",
                "function": {
                    "name": reply.tool_call.name,
                    "arguments": orjson.dumps(reply.tool_call.arguments).decode(),
                },
            }]
        return orjson.dumps({
            "id": new_id("chatcmpl-", 28),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": exchange.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": self._finish(reply),
            }],
            "usage": self._usage(reply),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        })

    def frames(self, reply: Reply, exchange: Exchange, chunks: int) -> list[bytes]:
        opts = exchange.body.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        head = orjson.dumps({
            "id": new_id("chatcmpl-", 28),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": exchange.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        })[:-1] + b',"choices":[{"index":0,"delta":'
        tail = b',"logprobs":null,"finish_reason":null}]'
        tail += b',"usage":null}\n\n' if include_usage else b"}\n\n"

        def chunk(delta: dict[str, Any]) -> bytes:
            return b"data: " + head + orjson.dumps(delta) + tail

        out = [chunk({"role": "assistant", "content": "", "refusal": None})]
        call = reply.tool_call
        if call is not None:
            args = orjson.dumps(call.arguments).decode()
            out.append(chunk({"tool_calls": [{
                "index": 0, "id": new_id("call_"), "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }]}))
            for piece in split_chars(args, chunks):
                out.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        else:
            for piece in split_text(reply.text, chunks):
                out.append(chunk({"content": piece}))
        finish = orjson.dumps(self._finish(reply))
        end_tail = b',"logprobs":null,"finish_reason":' + finish + b"}]"
        end_tail += b',"usage":null}\n\n' if include_usage else b"}\n\n"
        out.append(b"data: " + head + b"{}" + end_tail)
        if include_usage:
            usage_head = head[: head.index(b',"choices":')]
            out.append(b"data: " + usage_head + b',"choices":[],"usage":'
                       + orjson.dumps(self._usage(reply)) + b"}\n\n")
        out.append(_DONE)
        return out


_WIRE = OpenAIWire()


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body, problem = body_as_json(await request.read())
    model = body.get("model") if body is not None else None
    exchange = Exchange(
        request=request,
        endpoint="openai.chat_completions",
        model=model if isinstance(model, str) else "",
        body=body,
        stream=bool(body.get("stream")) if body is not None else False,
        body_error=problem,
    )
    return await serve(exchange, _WIRE)


def models_body(models: tuple[str, ...]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 1686935002, "owned_by": "fake-provider"}
            for m in models
        ],
    }


async def list_models(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.stats.count_endpoint("openai.models")
    if state.settings.api_key is not None:
        denied = _WIRE.unauthorized(request, state.settings.api_key)
        if denied is not None:
            return denied
    return json_response(models_body(state.settings.models))


async def retrieve_model(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.stats.count_endpoint("openai.models")
    model = request.match_info["target"]
    if state.settings.api_key is not None:
        denied = _WIRE.unauthorized(request, state.settings.api_key)
        if denied is not None:
            return denied
    return json_response(
        {"id": model, "object": "model", "created": 1686935002, "owned_by": "fake-provider"}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models/{target}", retrieve_model)


def _message_texts(messages: Any) -> tuple[list[str], str]:
    """The text of every message, and the last user message's; refused as the API refuses."""
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", "messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.", "messages")
    texts: list[str] = []
    last_user = ""
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg:
            raise InvalidRequest(f"Missing required parameter: 'messages[{i}].role'.",
                                 f"messages[{i}].role")
        text = _text_of(msg.get("content"))
        texts.append(text)
        if msg["role"] == "user":
            last_user = text
    return texts, last_user


def _read_tools(body: dict[str, Any], prompt: Prompt) -> None:
    """``tools`` (and the older ``functions``) and ``tool_choice``."""
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            prompt.tools.append(ToolSpec(fn["name"], fn.get("parameters") or {}))
    for fn in body.get("functions") or ():
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            prompt.tools.append(ToolSpec(fn["name"], fn.get("parameters") or {}))
    choice = body.get("tool_choice")
    if choice == "required":
        prompt.force_tool = True
    elif choice == "none":
        prompt.tools = []
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        prompt.force_tool = True
        prompt.forced_tool_name = name if isinstance(name, str) else None
