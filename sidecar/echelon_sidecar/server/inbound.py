"""Reading a caller's request: body, headers, and what the engine needs from them.

Everything a caller can get wrong is answered with a 4xx naming the field or header: malformed
JSON, a body that is not an object, a missing ``messages``, a bad header value, a body over
the size limit.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .. import translate
from ..providers import CallerFormat, InboundRequest
from ..translate import InvalidRequest, TranslationError
from .conversation import Conversation, read_conversation
from .errors import ClientError

if TYPE_CHECKING:
    from .responses import ResponsesCall

__all__ = ["Parsed", "RoutingHeaders", "model_and_stream", "parse_request", "parsed_request",
           "read_json", "routing_headers"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,252}$")
_PRINTABLE = re.compile(r"^[\x21-\x7e]{1,256}$")


@dataclass(slots=True)
class Parsed:
    inbound: InboundRequest
    model: str | None
    node: str | None
    fallback_groups: list[str] | None
    session_id: str | None
    conversation: Conversation
    timeout: float | None
    responses: ResponsesCall | None = None
    """A Responses API call (``/v1/responses``): how its canonical answer becomes a Response."""

    @property
    def user_turns(self) -> int:
        return self.conversation.turns

    @property
    def conversation_key(self) -> str | None:
        return self.conversation.key

    @property
    def first_turn(self) -> bool:
        """A first turn without a session id: pinned, once its reply is known, under the
        key its second turn will have."""
        return self.session_id is None and self.conversation.turns == 1


async def read_json(request: web.Request, limit: int) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > limit:
        raise ClientError(413, f"the request body is {request.content_length} bytes; the limit "
                          f"is {limit} bytes", code="request_too_large")
    try:
        raw = await request.content.read(limit + 1)
    except Exception:
        raise ClientError(400, "the request body could not be read") from None
    if len(raw) > limit:
        raise ClientError(413, f"the request body exceeds {limit} bytes",
                          code="request_too_large")
    if not raw:
        raise ClientError(400, "the request body is empty: send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ClientError(400, f"the request body is not valid JSON: {exc}",
                          code="invalid_json") from None
    if not isinstance(body, dict):
        raise ClientError(400, f"the request body must be a JSON object, not "
                          f"{type(body).__name__}")
    return body


def _header_names(request: web.Request, header: str) -> list[str] | None:
    value = request.headers.get(header)
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if names == ["none"]:
        return []  # explicitly no fallback groups: only the entry
    for name in names:
        if not _NAME.match(name):
            raise ClientError(400, f"{header}: {name[:80]!r} is not a valid group reference "
                              "(letters, digits, '_', '-', '.')", param=header)
    if not names:
        raise ClientError(400, f"{header} is empty: give a comma-separated list of group "
                          "references, or 'none' for no fallback at all", param=header)
    return names


def _header_name(request: web.Request, header: str) -> str | None:
    value = request.headers.get(header)
    if value is None:
        return None
    value = value.strip()
    if not _NAME.match(value):
        raise ClientError(400, f"{header}: {value[:80]!r} is not a valid name", param=header)
    return value


def _header_token(request: web.Request, header: str) -> str | None:
    value = request.headers.get(header)
    if value is None:
        return None
    if not _PRINTABLE.match(value):
        raise ClientError(400, f"{header} must be 1-256 visible ASCII characters", param=header)
    return value


def _timeout(request: web.Request) -> float | None:
    value = request.headers.get("X-Echelon-Timeout")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not 0 < seconds <= 3600:
        raise ClientError(400, "X-Echelon-Timeout must be a number of seconds in (0, 3600]",
                          param="X-Echelon-Timeout")
    return seconds


# Request ids: 16 random hex digits per process, then a counter (32 hex digits, like a uuid4
# hex, unique per sidecar process and across processes; a fifth of uuid4's cost).
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


def request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id")
    if given and len(given) <= 128 and _PRINTABLE.match(given):
        return given
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _json_type(value: object) -> str:
    return {str: "string", int: "number", float: "number", bool: "boolean", dict: "object",
            list: "list"}.get(type(value), "null" if value is None else type(value).__name__)


def model_and_stream(body: dict[str, Any]) -> tuple[str | None, bool]:
    """The body's ``model`` (None when absent or empty) and ``stream``, checked."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ClientError(400, "model must be a string: a group reference, a pool or a "
                          "workflow node", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ClientError(400, "stream must be true or false", param="stream")
    return model or None, stream


async def parse_request(request: web.Request, fmt: CallerFormat, limit: int) -> Parsed:
    body = await read_json(request, limit)
    model, stream = model_and_stream(body)
    messages = body.get("messages")
    if messages is None:
        raise ClientError(400, "messages is required: a non-empty list of messages",
                          param="messages")
    if not isinstance(messages, list) or not messages:
        got = "an empty list" if isinstance(messages, list) else f"a {_json_type(messages)}"
        raise ClientError(400, f"messages must be a non-empty list of messages (got {got})",
                          param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ClientError(400, f"messages[{index}] must be an object with a role and "
                              f"content (got a {_json_type(message)})",
                              param=f"messages[{index}]")
    original = None
    if fmt == "anthropic":
        original = body
        try:
            canonical = translate.anthropic_to_openai_request(body)
        except InvalidRequest as exc:
            raise ClientError(400, str(exc), param=getattr(exc, "field_path", None)) from None
        except TranslationError as exc:
            raise ClientError(400, str(exc)) from None
        include_usage = True
    else:
        canonical = body
        options = body.get("stream_options")
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    inbound = InboundRequest(fmt, canonical, stream, original, include_usage,
                             request_id(request))
    return parsed_request(request, inbound, model, messages,
                          body.get("system") if fmt == "anthropic" else None)


def parsed_request(request: web.Request, inbound: InboundRequest, model: str | None,
                   messages: list[Any], system: object = None,
                   responses: ResponsesCall | None = None) -> Parsed:
    """The :class:`Parsed` of a request whose body was read: its routing headers and its
    conversation (``messages`` in the inbound format; Anthropic's ``system`` apart)."""
    node = _header_name(request, "X-Echelon-Node")
    fallback_groups = _header_names(request, "X-Echelon-Fallback-Groups")
    session_id = _header_token(request, "X-Echelon-Session")
    conversation = read_conversation(messages, system, anthropic=inbound.format == "anthropic",
                                     keyed=session_id is None)
    return Parsed(
        inbound=inbound,
        model=model,
        node=node,
        fallback_groups=fallback_groups,
        session_id=session_id,
        conversation=conversation,
        timeout=_timeout(request),
        responses=responses,
    )


@dataclass(slots=True)
class RoutingHeaders:
    """The ``X-Echelon-*`` headers that route a request (endpoints other than chat)."""

    node: str | None
    fallback_groups: list[str] | None
    timeout: float | None


def routing_headers(request: web.Request) -> RoutingHeaders:
    """``X-Echelon-Node``, ``X-Echelon-Fallback-Groups`` and ``X-Echelon-Timeout``, checked
    as for chat (ClientError naming the header)."""
    return RoutingHeaders(_header_name(request, "X-Echelon-Node"),
                          _header_names(request, "X-Echelon-Fallback-Groups"),
                          _timeout(request))
