"""The data port's endpoints beyond chat: ``POST /v1/embeddings``,
``POST /v1/messages/count_tokens``, and what each served name serves (``GET /v1/models``).

- **Embeddings** are routed like chat (``engine.resolve`` + ``engine.serve``) with an
  :class:`~echelon_sidecar.providers.EmbeddingsRequest` as the payload. Before the engine
  walks the route, the request's embedding space is fixed: the space of the route's first
  embedding model (pool instances in declared order, then the chain's steps, then the last
  resort). Instances of another space are skipped as ``cannot_serve``: an embeddings request
  never falls back across embedding spaces.
- **count_tokens** answers ``{"input_tokens": N}`` for any group, tier, pool or node without
  calling an upstream: ``estimate_input_tokens`` of the request in canonical form, plus
  Anthropic's documented tool-use system prompt when the request declares tools.
- **Model listing**: each name says its kind and the endpoints that can serve it: chat when
  its route holds a chat model, embeddings when it holds an embedding model (with the space
  its embeddings requests are served in), count_tokens always.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .. import translate
from ..config import EMBEDDING_PROVIDERS
from ..config.route_checks import embedding_space_key
from ..engine import EngineRequest, Outcome, UnknownTarget
from ..errors import RoutingError
from ..providers import CallerFormat, EmbeddingSpace, EmbeddingsRequest
from ..translate import InvalidRequest, TranslationError, estimate_input_tokens
from .errors import ClientError, error_response, routing_error_response
from .inbound import read_json, request_id, routing_headers
from .keys import SIDECAR
from .served import log_fields, served_headers

if TYPE_CHECKING:
    from ..engine import Engine, Target
    from ..engine.plans import InstancePlan, Route
    from .runtime import Sidecar

__all__ = [
    "ANTHROPIC_TOOL_PROMPT_TOKENS",
    "CHAT_ENDPOINTS",
    "COUNT_TOKENS_ENDPOINT",
    "EMBEDDINGS_ENDPOINT",
    "count_tokens",
    "describe_name",
    "embeddings",
    "model",
    "models",
    "route_space",
    "served_names",
]

_log = logging.getLogger("echelon.sidecar")
_DEFAULT_MODEL = "default"

CHAT_ENDPOINTS = ("/v1/chat/completions", "/v1/messages", "/v1/responses")
EMBEDDINGS_ENDPOINT = "/v1/embeddings"
COUNT_TOKENS_ENDPOINT = "/v1/messages/count_tokens"

#: Anthropic's tool-use system prompt, which its count includes whenever tools are given
#: (documented per model: 346 tokens with tool_choice auto/none, 313 with any/tool, for the
#: Claude 4 and 3.7 models; 264-340 for older ones).
ANTHROPIC_TOOL_PROMPT_TOKENS = {"auto": 346, "none": 346, "any": 313, "tool": 313}


# -- routes --------------------------------------------------------------------------------------

def _route_instances(route: Route) -> Iterator[InstancePlan]:
    """Every instance a request can reach, in the order the engine walks them."""
    if route.pool is not None:
        yield from route.pool.instances
    for tiers in (route.chain, route.last_resort):
        for tier in tiers:
            yield from tier.models


def route_space(route: Route) -> EmbeddingSpace | None:
    """The embedding space of the route's first embedding model (None: it has none)."""
    for inst in _route_instances(route):
        entry = inst.instance.entry if inst.instance is not None else None
        if entry is not None and entry.is_embedding and entry.provider in EMBEDDING_PROVIDERS:
            return embedding_space_key(entry)
    return None


def _serves_chat(route: Route) -> bool:
    return any(inst.instance is not None and not inst.instance.entry.is_embedding
               for inst in _route_instances(route))


def describe_name(engine: Engine, name: str) -> dict[str, Any]:
    """One entry of ``GET /v1/models``: the OpenAI model object plus ``kind``, ``endpoints``
    and, when it serves embeddings, ``embedding_space`` / ``embedding_dimensions``."""
    target = engine.resolve(name)
    route = target.route
    kind = "tier" if target.kind == "group" and route.entry is not None \
        and route.entry.tier is not None else target.kind
    endpoints: list[str] = list(CHAT_ENDPOINTS) if _serves_chat(route) else []
    space = route_space(route)
    if space is not None:
        endpoints.append(EMBEDDINGS_ENDPOINT)
    endpoints.append(COUNT_TOKENS_ENDPOINT)
    entry: dict[str, Any] = {"id": name, "object": "model", "created": 0,
                             "owned_by": "echelon", "kind": kind, "endpoints": endpoints}
    if space is not None:
        entry["embedding_space"], entry["embedding_dimensions"] = space
    return entry


# -- GET /v1/models ------------------------------------------------------------------------------

def served_names(engine: Engine | None) -> list[str]:
    """Every name the engine serves: nodes, pools, groups and their tiers."""
    if engine is None:
        return []
    cfg = engine.config
    names = [*cfg.workflow_nodes, *cfg.polling_pools]
    for group_name, group in cfg.task_groups.items():
        names.append(group_name)
        names.extend(f"{group_name}.{tier}" for tier, _ in group.ordered_tiers())
    return names


async def models(request: web.Request) -> web.Response:
    """Every served name, with its kind and the endpoints that serve it (the OpenAI list
    shape, with extra fields: see ``describe_name``)."""
    engine = request.app[SIDECAR].engine
    data = [describe_name(engine, name) for name in served_names(engine)] \
        if engine is not None else []
    return web.Response(body=orjson.dumps({"object": "list", "data": data}),
                        content_type="application/json")


async def model(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    engine = request.app[SIDECAR].engine
    if engine is None or name not in served_names(engine):
        return error_response("openai", 404, f"model {name!r} names no group, tier, pool "
                              "or node of this sidecar", param="model",
                              code="model_not_found")
    return web.Response(body=orjson.dumps(describe_name(engine, name)),
                        content_type="application/json")


# -- shared request handling -----------------------------------------------------------------

def _target(sidecar: Sidecar, fmt: CallerFormat, model: Any, node: str | None,
            headers: dict[str, str]) -> Target | web.Response:
    """The request's target, or the error answer (no model and no default pool, unknown
    names)."""
    engine = sidecar.engine
    assert engine is not None
    if model is not None and not isinstance(model, str):
        return error_response(fmt, 400, "model must be a string: a group reference, a pool "
                              "or a workflow node", param="model", headers=headers)
    if model in (None, "", _DEFAULT_MODEL):
        model = sidecar.default_pool
        if model is None:
            return error_response(fmt, 400, "model is required: a group reference, a "
                                  "polling pool or a workflow node (see GET /v1/models)",
                                  param="model", headers=headers)
    try:
        return engine.resolve(model, node)
    except UnknownTarget as exc:
        return routing_error_response(fmt, exc, headers)


def _no_config(fmt: CallerFormat) -> web.Response:
    return error_response(fmt, 503, "the sidecar has no valid config yet",
                          headers={"Retry-After": "1"})


# -- POST /v1/embeddings -----------------------------------------------------------------------

async def embeddings(request: web.Request) -> web.Response:
    """``POST /v1/embeddings`` (OpenAI format), routed by group, tier, pool or node."""
    started = time.perf_counter()
    sidecar = request.app[SIDECAR]
    engine = sidecar.engine
    if engine is None:
        return _no_config("openai")
    rid = request_id(request)
    headers = {"X-Request-Id": rid}
    try:
        body = await read_json(request, sidecar.settings.max_body_bytes)
        routing = routing_headers(request)
        checked = translate.read_embeddings_request(body)
    except ClientError as exc:
        return error_response("openai", exc.status, exc.message, param=exc.param,
                              code=exc.code, headers=headers)
    except InvalidRequest as exc:
        return error_response("openai", 400, str(exc), param=exc.field_path, headers=headers)
    target = _target(sidecar, "openai", body.get("model"), routing.node, headers)
    if isinstance(target, web.Response):
        sidecar.metrics.observe_request(str(body.get("model")), None, "unknown_target",
                                        time.perf_counter() - started)
        return target
    route = target.route
    try:
        if routing.fallback_groups is not None:
            route = target.table.with_fallback_groups(route, routing.fallback_groups)
    except UnknownTarget as exc:
        return routing_error_response("openai", exc, headers)
    payload = EmbeddingsRequest(body, checked, route_space(route), rid)
    timeout = routing.timeout or sidecar.settings.request_timeout
    ereq = EngineRequest(target, payload=payload, fallback_groups=routing.fallback_groups,
                         deadline=engine.clock.now() + timeout if timeout else None)
    return await _serve(sidecar, ereq, target.name, headers, started)


async def _serve(sidecar: Sidecar, ereq: EngineRequest, label: str, headers: dict[str, str],
                 started: float) -> web.Response:
    engine = sidecar.engine
    assert engine is not None
    metrics = sidecar.metrics
    rid = headers["X-Request-Id"]
    metrics.in_flight.inc()
    try:
        async with engine.serve(ereq) as outcome:
            body = outcome.result.raw
        served_headers(outcome, headers)
        if outcome.settings is not None and (outcome.settings.model.provider == "gemini"
                                             or b'"estimated":true' in body[-256:]):
            headers["X-Echelon-Usage"] = "estimated"  # the upstream reported no usage
        metrics.observe_request(label, outcome, "ok", time.perf_counter() - started)
        if outcome.fallbacks_taken and _log.isEnabledFor(logging.INFO):
            _log.info("served after fallback", extra=log_fields(rid, label, outcome))
        return web.Response(body=body, content_type="application/json", headers=headers)
    except RoutingError as exc:
        failed: Outcome | None = getattr(exc, "outcome", None)
        metrics.observe_request(label, failed, type(exc).__name__,
                                time.perf_counter() - started)
        _log.warning("request failed: %s", exc, extra=log_fields(rid, label, failed))
        return routing_error_response("openai", exc, headers)
    finally:
        metrics.in_flight.dec()


# -- POST /v1/messages/count_tokens ------------------------------------------------------------

def _tool_prompt_tokens(body: dict[str, Any]) -> int:
    if not body.get("tools"):
        return 0
    choice = body.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    return ANTHROPIC_TOOL_PROMPT_TOKENS.get(kind if isinstance(kind, str) else "auto", 346)


async def count_tokens(request: web.Request) -> web.Response:
    """``POST /v1/messages/count_tokens`` (Anthropic format): an estimate, no upstream call."""
    sidecar = request.app[SIDECAR]
    if sidecar.engine is None:
        return _no_config("anthropic")
    headers = {"X-Request-Id": request_id(request)}
    try:
        body = await read_json(request, sidecar.settings.max_body_bytes)
        node = routing_headers(request).node
    except ClientError as exc:
        return error_response("anthropic", exc.status, exc.message, param=exc.param,
                              code=exc.code, headers=headers)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) for m in messages):
        return error_response("anthropic", 400, "messages: a non-empty list of messages is "
                              "required", param="messages", headers=headers)
    target = _target(sidecar, "anthropic", body.get("model"), node, headers)
    if isinstance(target, web.Response):
        return target
    try:  # count_tokens takes no max_tokens; the translation wants one
        canonical = translate.anthropic_to_openai_request({**body, "max_tokens": 1})
    except InvalidRequest as exc:
        return error_response("anthropic", 400, str(exc), param=exc.field_path,
                              headers=headers)
    except TranslationError as exc:
        return error_response("anthropic", 400, str(exc), headers=headers)
    tokens = estimate_input_tokens(canonical) + _tool_prompt_tokens(body)
    headers["X-Echelon-Token-Count"] = "estimated"
    return web.Response(body=orjson.dumps({"input_tokens": tokens}),
                        content_type="application/json", headers=headers)
