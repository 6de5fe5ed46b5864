"""What every wire format (OpenAI, Anthropic, Gemini) provides to the shared request pipeline."""

from __future__ import annotations

import itertools
import math
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from aiohttp import web

from .content import Prompt, Reply

__all__ = [
    "Exchange",
    "InvalidRequest",
    "Wire",
    "body_as_json",
    "json_response",
    "new_id",
    "retry_after_headers",
]

JSON_CT = "application/json"
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


class InvalidRequest(Exception):
    """The request is wrong (a real upstream would answer 400); `param` names the field."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


@dataclass(slots=True)
class Exchange:
    """One generation request as the pipeline sees it."""

    request: web.Request
    endpoint: str
    model: str
    body: Any
    stream: bool
    body_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_ID_TAG = secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)


def new_id(prefix: str, length: int = 24) -> str:
    """A unique id of `length` hex digits after `prefix` (cheap: process tag + counter)."""
    return f"{prefix}{_ID_TAG}{next(_ID_COUNTER):0{max(length - 8, 1)}x}"


def json_response(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(obj), status=status, headers=headers, content_type=JSON_CT
    )


def retry_after_headers(retry_after: float | None) -> dict[str, str]:
    """`Retry-After` (whole seconds, rounded up) and `retry-after-ms`, as the SDKs read them."""
    if retry_after is None:
        return {}
    return {
        "Retry-After": str(math.ceil(retry_after)),
        "retry-after-ms": str(int(retry_after * 1000)),
    }


def body_as_json(raw: bytes) -> tuple[Any, str | None]:
    """(parsed body, None) or (None, what was wrong)."""
    if not raw:
        return None, "the request body is empty; send a JSON object"
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, f"the request body is not valid JSON: {exc}"
    if not isinstance(body, dict):
        return None, "the request body must be a JSON object"
    return body, None


class Wire(ABC):
    """One provider's wire format: errors, auth, request reading and reply rendering."""

    name: ClassVar[str]
    #: Content type of a streamed reply.
    stream_content_type: ClassVar[str] = "text/event-stream"

    @abstractmethod
    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> web.Response:
        """An error response in this provider's shape, with a default message per status."""

    @abstractmethod
    def unauthorized(self, request: web.Request, api_key: str) -> web.Response | None:
        """The provider's auth error when the request lacks `api_key`, else None."""

    @abstractmethod
    def prompt(self, exchange: Exchange) -> Prompt:
        """Read the request into a `Prompt`; raise `InvalidRequest` when it is wrong."""

    @abstractmethod
    def body(self, reply: Reply, exchange: Exchange) -> bytes:
        """The non-streamed reply body."""

    @abstractmethod
    def frames(self, reply: Reply, exchange: Exchange, chunks: int) -> list[bytes]:
        """The streamed reply, one element per event, terminator included."""

    def stream_content_type_for(self, exchange: Exchange) -> str:
        return self.stream_content_type

    def malformed(self, exchange: Exchange) -> bytes:
        """A 200 body that looks like the start of a reply but is not valid JSON."""
        if exchange.stream:
            return b'data: {"id": "broken", "choices": [{"delta": {"content": "tru\n\n'
        return b'{"id": "broken", "object": "chat.completion", "choices": [{"message": '
