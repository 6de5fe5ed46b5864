"""Gemini wire format: `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`.

Shapes follow `google.genai.types.GenerateContentResponse` and Google's error body
`{"error": {"code", "message", "status", "details"?}}`. Streams are SSE with `?alt=sse` (what
the SDK asks for) and, without it, a JSON array written element by element, as the real API does.
Request fields are read in camelCase or snake_case (the API accepts both).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from .content import Prompt, Reply, ToolCall, ToolSpec, split_text, texts_tokens
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

__all__ = ["ACTIONS", "GeminiWire", "add_routes"]

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The request was aborted."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    499: ("CANCELLED", "The operation was cancelled."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting"),
    501: ("UNIMPLEMENTED", "Method not implemented."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}

_STREAM_ACTIONS = {"streamGenerateContent": True, "generateContent": False}


def _get(obj: Any, camel: str, snake: str) -> Any:
    if not isinstance(obj, dict):
        return None
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _text_of(content: Any) -> str:
    parts = _get(content, "parts", "parts")
    if not isinstance(parts, list):
        return ""
    return " ".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _function_call(call: ToolCall) -> dict[str, Any]:
    return {"functionCall": {"name": call.name, "args": call.arguments}}


class GeminiWire(Wire):
    name = "gemini"

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        param: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> web.Response:
        code, default = _ERRORS.get(
            status, ("UNAVAILABLE" if status >= 500 else "FAILED_PRECONDITION",
                     f"Fake upstream error {status}.")
        )
        error: dict[str, Any] = {"code": status, "message": message or default, "status": code}
        if retry_after is not None:
            details = [*(details or []), {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{math.ceil(retry_after)}s",
            }]
        if details:
            error["details"] = details
        return json_response(
            {"error": error}, status=status, headers=retry_after_headers(retry_after)
        )

    def unauthorized(self, request: web.Request, api_key: str) -> web.Response | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if key == api_key:
            return None
        if not key:
            return self.error(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        return self.error(400, "API key not valid. Please pass a valid API key.", details=[{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }])

    def prompt(self, exchange: Exchange) -> Prompt:
        body = exchange.body
        if exchange.extra.get("action") not in _STREAM_ACTIONS:
            raise InvalidRequest(
                f"Method not found: {exchange.extra.get('action')!r}; this fake serves "
                "generateContent and streamGenerateContent", status=404)
        texts, last_user = _content_texts(body)
        prompt = Prompt(model=exchange.model, last_user_text=last_user,
                        prompt_tokens=texts_tokens(texts))
        _read_tools(body, prompt)
        config = _get(body, "generationConfig", "generation_config") or {}
        if _get(config, "responseMimeType", "response_mime_type") == "application/json":
            prompt.json_output = True
            schema = (_get(config, "responseJsonSchema", "response_json_schema")
                      or _get(config, "responseSchema", "response_schema"))
            prompt.json_schema = schema if isinstance(schema, dict) else None
        thinking = _get(config, "thinkingConfig", "thinking_config")
        if isinstance(thinking, dict):
            budget = _get(thinking, "thinkingBudget", "thinking_budget")
            if budget != 0:
                prompt.thinking = True
                prompt.thinking_budget = budget if isinstance(budget, int) and budget > 0 else None
                exchange.extra["include_thoughts"] = bool(
                    _get(thinking, "includeThoughts", "include_thoughts"))
        limit = _get(config, "maxOutputTokens", "max_output_tokens")
        if isinstance(limit, int) and limit > 0:
            prompt.max_tokens = limit
        return prompt

    @staticmethod
    def _usage(reply: Reply, *, final: bool) -> dict[str, Any]:
        candidates = reply.completion_tokens if final else 0
        usage: dict[str, Any] = {
            "promptTokenCount": reply.prompt_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": reply.prompt_tokens + candidates + reply.reasoning_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.prompt_tokens}],
        }
        if reply.reasoning_tokens:
            usage["thoughtsTokenCount"] = reply.reasoning_tokens
        if not final:
            del usage["candidatesTokenCount"]
        return usage

    def _response(self, parts: list[dict[str, Any]], reply: Reply, exchange: Exchange,
                  response_id: str, *, final: bool) -> bytes:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = "MAX_TOKENS" if reply.truncated else "STOP"
        return orjson.dumps({
            "candidates": [candidate],
            "usageMetadata": self._usage(reply, final=final),
            "modelVersion": exchange.model,
            "responseId": response_id,
        })

    def _parts(self, reply: Reply, exchange: Exchange) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if reply.thinking is not None and exchange.extra.get("include_thoughts"):
            parts.append({"text": reply.thinking, "thought": True})
        if reply.tool_call is not None:
            parts.extend(_function_call(c) for c in (reply.tool_call, *reply.parallel_calls))
        else:
            parts.append({"text": reply.text})
        return parts

    def body(self, reply: Reply, exchange: Exchange) -> bytes:
        return self._response(self._parts(reply, exchange), reply, exchange,
                              new_id("", 22), final=True)

    def frames(self, reply: Reply, exchange: Exchange, chunks: int) -> list[bytes]:
        response_id = new_id("", 22)
        parts_per_chunk: list[list[dict[str, Any]]] = []
        if reply.thinking is not None and exchange.extra.get("include_thoughts"):
            parts_per_chunk.append([{"text": reply.thinking, "thought": True}])
        if reply.tool_call is not None:  # each (parallel) call whole, in a chunk of its own
            parts_per_chunk.extend([_function_call(c)]
                                   for c in (reply.tool_call, *reply.parallel_calls))
        else:
            parts_per_chunk.extend([{"text": p}] for p in split_text(reply.text, chunks))
        last = len(parts_per_chunk) - 1
        bodies = [self._response(parts, reply, exchange, response_id, final=i == last)
                  for i, parts in enumerate(parts_per_chunk)]
        if exchange.extra.get("sse"):
            return [b"data: " + b + b"\r\n\r\n" for b in bodies]
        framed = [(b"[" if i == 0 else b"\n,\r\n") + b for i, b in enumerate(bodies)]
        framed.append(b"\n]")
        return framed

    def stream_content_type_for(self, exchange: Exchange) -> str:
        return "text/event-stream" if exchange.extra.get("sse") else "application/json"

    def malformed(self, exchange: Exchange) -> bytes:
        if exchange.stream and exchange.extra.get("sse"):
            return b'data: {"candidates": [{"content": {"parts": [{"text": "tru\r\n\r\n'
        return b'[{"candidates": [{"content": {"parts": [{"text": "tru'


_WIRE = GeminiWire()


#: Handlers of other ``models/{model}:{action}`` calls, by action (``embeddings_api`` adds
#: ``embedContent`` and ``batchEmbedContents``): called with (request, model, action).
ACTIONS: dict[str, Callable[[web.Request, str, str], Awaitable[web.StreamResponse]]] = {}


async def generate(request: web.Request) -> web.StreamResponse:
    target = request.match_info["target"]
    model, _, action = target.rpartition(":")
    other = ACTIONS.get(action)
    if other is not None:
        return await other(request, model or target, action)
    body, problem = body_as_json(await request.read())
    exchange = Exchange(
        request=request,
        endpoint=f"gemini.{action}",
        model=model or target,
        body=body,
        stream=_STREAM_ACTIONS.get(action, False),
        body_error=problem,
        extra={"action": action, "sse": request.query.get("alt") == "sse"},
    )
    return await serve(exchange, _WIRE)


def _model_info(model: str) -> dict[str, Any]:
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model,
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
    }


async def list_models(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.stats.count_endpoint("gemini.models")
    if state.settings.api_key is not None:
        denied = _WIRE.unauthorized(request, state.settings.api_key)
        if denied is not None:
            return denied
    if "target" in request.match_info:
        return json_response(_model_info(request.match_info["target"]))
    return json_response({"models": [_model_info(m) for m in state.settings.models]})


def add_routes(app: web.Application) -> None:
    for version in ("v1beta", "v1"):
        app.router.add_post(f"/{version}/models/{{target}}", generate)
    app.router.add_get("/v1beta/models", list_models)
    app.router.add_get("/v1beta/models/{target}", list_models)


def _content_texts(body: dict[str, Any]) -> tuple[list[str], str]:
    """The texts of the system instruction and every content, and the last user content's."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidRequest("* GenerateContentRequest.contents: contents is not specified")
    texts: list[str] = []
    system = _get(body, "systemInstruction", "system_instruction")
    if system:
        texts.append(_text_of(system))
    last_user = ""
    for content in contents:
        text = _text_of(content)
        texts.append(text)
        if not isinstance(content, dict) or content.get("role", "user") == "user":
            last_user = text
    return texts, last_user


def _read_tools(body: dict[str, Any], prompt: Prompt) -> None:
    """The function declarations of ``tools`` and the ``toolConfig`` calling mode."""
    for tool in body.get("tools") or ():
        decls = _get(tool, "functionDeclarations", "function_declarations") or ()
        for decl in decls:
            if isinstance(decl, dict) and isinstance(decl.get("name"), str):
                schema = (_get(decl, "parametersJsonSchema", "parameters_json_schema")
                          or decl.get("parameters") or {})
                prompt.tools.append(ToolSpec(decl["name"], schema))
    calling = _get(_get(body, "toolConfig", "tool_config"),
                   "functionCallingConfig", "function_calling_config")
    mode = str(_get(calling, "mode", "mode") or "").upper()
    if mode in ("ANY", "VALIDATED"):
        prompt.force_tool = mode == "ANY"
        allowed = _get(calling, "allowedFunctionNames", "allowed_function_names")
        if isinstance(allowed, list) and allowed:
            prompt.forced_tool_name = str(allowed[0])
    elif mode == "NONE":
        prompt.tools = []
