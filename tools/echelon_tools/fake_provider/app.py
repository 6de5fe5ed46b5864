"""`create_app`: the aiohttp application serving the three fake upstreams and `/_fake/*` control.

Control endpoints (JSON in, JSON out; errors are `{"error": {"message": ...}}` with 400):

    GET    /_fake/health            {"ok": true}
    GET    /_fake/stats             counters (see `Stats.snapshot`)
    GET    /_fake/faults            {"faults": {MODEL: FAULT_JSON}}
    POST   /_fake/faults            {"model": M, "fault": SPEC_OR_OBJECT}
                                    or {"faults": {M: SPEC_OR_OBJECT, ...}, "replace": bool}
                                    optional "seed": int restarts the RNG; answers GET's body
    DELETE /_fake/faults[?model=M]  clear every rule, or one model's rule
    POST   /_fake/reset             zero counters and records, restart fault counters and RNG;
                                    body (optional) {"clear_faults": bool, "seed": int}
    GET    /_fake/requests[?model=M&limit=N]   {"requests": [RECORDED_REQUEST, ...]}
    GET    /_fake/settings          current settings
    POST   /_fake/settings          change latency_ms, stream_chunks, chunk_delay_ms, reply,
                                    api_key, echo_words, record_requests at runtime
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from . import anthropic_api, embeddings_api, gemini_api, openai_api
from .faults import Fault, FaultSpecError
from .settings import FakeSettings
from .state import STATE, FakeState
from .wire import json_response

__all__ = ["count_connections", "create_app"]


def _control_error(message: str, status: int = 400) -> web.Response:
    return json_response({"error": {"message": message}}, status=status)


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(
            body=orjson.dumps({"error": {"message": f"body is not valid JSON: {exc}"}}),
            content_type="application/json",
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            body=orjson.dumps({"error": {"message": "body must be a JSON object"}}),
            content_type="application/json",
        )
    return body


def _faults_json(state: FakeState) -> dict[str, Any]:
    return {"faults": {model: f.to_json() for model, f in state.faults.rules().items()}}


async def health(request: web.Request) -> web.StreamResponse:
    return json_response({"ok": True})


async def get_stats(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[STATE].stats.snapshot())


async def get_faults(request: web.Request) -> web.StreamResponse:
    return json_response(_faults_json(request.app[STATE]))


async def post_faults(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await _json_body(request)
    rules: dict[str, Fault] = {}
    try:
        if "model" in body:
            if "fault" not in body:
                return _control_error('{"model": ...} needs a "fault" (a SPEC string or object)')
            rules[str(body["model"])] = Fault.from_json(body["fault"])
        faults = body.get("faults", {})
        if not isinstance(faults, dict):
            return _control_error('"faults" must be an object {MODEL: SPEC_OR_OBJECT}')
        for model, spec in faults.items():
            try:
                rules[str(model)] = Fault.from_json(spec)
            except FaultSpecError as exc:
                raise FaultSpecError(f"faults.{model}: {exc}") from None
        seed = body.get("seed")
        if seed is not None and not isinstance(seed, int):
            return _control_error(f'"seed" must be an integer, got {seed!r}')
    except FaultSpecError as exc:
        return _control_error(str(exc))
    if not rules and "seed" not in body and not body.get("replace"):
        return _control_error(
            'nothing to set: send {"model": M, "fault": SPEC} or {"faults": {...}}'
        )
    if body.get("replace"):
        state.faults.clear()
    for model, fault in rules.items():
        state.faults.set(model, fault)
    if body.get("seed") is not None:
        state.faults.reseed(body["seed"])
    return json_response(_faults_json(state))


async def delete_faults(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    model = request.query.get("model")
    if model is None:
        state.faults.clear()
    else:
        state.faults.remove(model)
    return json_response(_faults_json(state))


async def post_reset(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await _json_body(request)
    seed = body.get("seed")
    if seed is not None and not isinstance(seed, int):
        return _control_error(f'"seed" must be an integer, got {seed!r}')
    state.reset(clear_faults=bool(body.get("clear_faults")), seed=seed)
    return json_response({"ok": True, **_faults_json(state)})


async def get_requests(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    records = state.log.get(request.query.get("model"))
    limit = request.query.get("limit")
    if limit is not None:
        if not limit.isdigit():
            return _control_error(f"limit must be a non-negative integer, got {limit!r}")
        records = records[-int(limit):] if int(limit) else []
    return json_response({"requests": [r.to_json() for r in records]})


async def get_settings(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[STATE].settings.to_json())


async def post_settings(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await _json_body(request)
    try:
        state.settings.update(body)
    except (TypeError, ValueError) as exc:
        return _control_error(str(exc))
    state.log.keep = state.settings.record_requests
    return json_response(state.settings.to_json())


async def models(request: web.Request) -> web.StreamResponse:
    """`GET /v1/models`: Anthropic's list when the caller sends `anthropic-version`."""
    if "anthropic-version" in request.headers:
        return await anthropic_api.list_models(request)
    return await openai_api.list_models(request)


async def _on_shutdown(app: web.Application) -> None:
    app[STATE].shutdown.set()


def count_connections(runner: web.AppRunner) -> None:
    """Count each connection the runner's server accepts in ``/_fake/stats``'s
    ``connections`` (over TLS a connection is counted once its handshake is done): how well
    a client reuses its connections. Call after ``runner.setup()``."""
    server = runner.server
    app = runner.app
    if server is None or not isinstance(app, web.Application):
        return
    stats = app[STATE].stats
    made = server.connection_made

    def counted(handler: Any, transport: Any) -> None:
        stats.connections += 1
        made(handler, transport)

    server.connection_made = counted  # type: ignore[method-assign]


def create_app(settings: FakeSettings | None = None) -> web.Application:
    """The fake upstream app: OpenAI, Anthropic and Gemini endpoints plus `/_fake/*` control."""
    settings = settings if settings is not None else FakeSettings()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = FakeState.from_settings(settings)
    openai_api.add_routes(app)
    anthropic_api.add_routes(app)
    gemini_api.add_routes(app)
    embeddings_api.add_routes(app)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/_fake/health", health)
    app.router.add_get("/_fake/stats", get_stats)
    app.router.add_get("/_fake/faults", get_faults)
    app.router.add_post("/_fake/faults", post_faults)
    app.router.add_delete("/_fake/faults", delete_faults)
    app.router.add_post("/_fake/reset", post_reset)
    app.router.add_get("/_fake/requests", get_requests)
    app.router.add_get("/_fake/settings", get_settings)
    app.router.add_post("/_fake/settings", post_settings)
    app.on_shutdown.append(_on_shutdown)
    return app
