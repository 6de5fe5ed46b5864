"""``POST /v1/responses``: the OpenAI Responses API over the same routing as chat.

The request is translated to the canonical chat form (``translate.responses_request``) and
served exactly like an OpenAI chat completion -- by group, tier, pool or node, with fallback
across OpenAI, Anthropic and Gemini upstreams, failover until the first byte, and the same
``X-Echelon-*`` headers and OpenAI-shaped errors. The canonical answer becomes a Response
object (``translate.responses_response``), or, streaming, the Responses event stream
(``translate.responses_stream``), whatever upstream served it.

Nothing is stored: ``store: true`` is served like ``store: false`` (the answer says
``store: false``), and what needs stored state (``previous_response_id``, ``conversation``,
``prompt``, ``background``, item references, file ids) is refused with a 400 naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from ..providers import InboundRequest, UpstreamReply
from ..translate import (
    InvalidRequest,
    OpenAIStreamToResponses,
    StatefulFeature,
    TranslationError,
    new_response_id,
    openai_to_responses_response,
    responses_echo,
    responses_to_openai_request,
)
from .errors import ClientError
from .inbound import Parsed, model_and_stream, parsed_request, read_json, request_id

__all__ = ["ResponsesCall", "parse_responses"]


@dataclass(slots=True)
class ResponsesCall:
    """What turns a Responses call's canonical answer into a Response: the request's settings
    the Response repeats, and the response id (chosen up front)."""

    echo: dict[str, Any]
    response_id: str

    def body(self, reply: UpstreamReply) -> bytes:
        """A whole answer, as the canonical ``chat.completion`` the provider made of it (parsed
        already when an OpenAI upstream sent it) → the Response object (JSON)."""
        completion = reply.body if reply.format == "openai" else orjson.loads(reply.raw)
        assert isinstance(completion, dict)
        return orjson.dumps(openai_to_responses_response(completion, self.echo,
                                                         response_id=self.response_id))

    def stream(self, model: str) -> OpenAIStreamToResponses:
        """The translator of this call's canonical stream chunks into Responses events."""
        return OpenAIStreamToResponses(self.echo, model=model, response_id=self.response_id)


async def parse_responses(request: web.Request, limit: int) -> Parsed:
    """Read a ``/v1/responses`` request (ClientError naming the field when it is wrong)."""
    body = await read_json(request, limit)
    model, stream = model_and_stream(body)
    try:
        canonical = responses_to_openai_request(body)
    except StatefulFeature as exc:
        raise ClientError(400, str(exc), param=exc.field_path, code=exc.code) from None
    except InvalidRequest as exc:
        raise ClientError(400, str(exc), param=exc.field_path) from None
    except TranslationError as exc:
        raise ClientError(400, str(exc)) from None
    inbound = InboundRequest("openai", canonical, stream, None, True, request_id(request))
    call = ResponsesCall(responses_echo(body), new_response_id())
    return parsed_request(request, inbound, model, canonical["messages"], responses=call)
