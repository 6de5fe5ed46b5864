"""Fuzzing what upstreams send: malformed SSE and JSON never crash the sidecar.

A tiny scripted upstream answers each request with a hypothesis-generated answer -- any
status, any content type, a body assembled from real events of that wire format (whole,
mutated or truncated), raw bytes, odd JSON values and error events, written in random chunks,
then ended cleanly, aborted, or left hanging. The sidecar serves it to an OpenAI or Anthropic
caller, streamed or not, with a healthy second tier behind it.

Whatever arrives, the client gets one well-formed answer (a reply, a stream that ends with its
terminator or with one error event, or a JSON error in its own shape) within its deadline; the
sidecar logs no unhandled error and keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echelon_tools.fake_provider import FakeProvider

from ..integration.conftest import API_KEY_ENV, MakeSidecar, RunningSidecar, openai_model
from .exchange import HI, exchange

FORMATS = ("openai", "anthropic", "gemini")
TIMEOUT = 0.5  # the fuzzed tier's timeout: what a hanging answer costs
SSE = "text/event-stream"
JSON = "application/json"


@dataclass
class Script:
    status: int
    content_type: str | None
    chunks: list[bytes]
    ending: str  # eof | abort | hang

    def __repr__(self) -> str:
        return (f"Script({self.status}, {self.content_type!r}, ending={self.ending}, "
                f"body={b''.join(self.chunks)[:600]!r})")


class ScriptedUpstream:
    """Answers every OpenAI, Anthropic or Gemini generation request with ``self.script``."""

    def __init__(self) -> None:
        self.script = Script(500, JSON, [b"{}"], "eof")
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.handle)
        self.app.router.add_post("/v1/messages", self.handle)
        self.app.router.add_post("/v1beta/models/{call}", self.handle)
        self.runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None,
                                    shutdown_timeout=0.5)
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        script = self.script
        headers = {"Content-Type": script.content_type} if script.content_type else {}
        resp = web.StreamResponse(status=script.status, headers=headers)
        await resp.prepare(request)
        for chunk in script.chunks:
            await resp.write(chunk)
        if script.ending == "abort" and request.transport is not None:
            request.transport.abort()
        elif script.ending == "hang":
            await asyncio.Event().wait()  # until the sidecar gives up and closes
        else:
            await resp.write_eof()
        return resp

    async def __aenter__(self) -> ScriptedUpstream:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


# -- real answers of each wire format, to mutate ---------------------------------------------------

@dataclass
class Samples:
    events: dict[str, list[bytes]]   # format -> the events of a real stream
    bodies: dict[str, bytes]         # format -> a real whole answer


async def _samples(fake: FakeProvider, key: str) -> Samples:
    calls: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
        "openai": (f"{fake.openai_base_url}/chat/completions", {"Authorization": f"Bearer {key}"},
                   {"model": "m", "messages": HI}),
        "anthropic": (f"{fake.base_url}/v1/messages",
                      {"x-api-key": key, "anthropic-version": "2023-06-01"},
                      {"model": "m", "max_tokens": 50, "messages": HI}),
        "gemini": (f"{fake.base_url}/v1beta/models/m:generateContent", {"x-goog-api-key": key},
                   {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}),
    }
    events: dict[str, list[bytes]] = {}
    bodies: dict[str, bytes] = {}
    async with aiohttp.ClientSession() as http:
        for fmt, (url, headers, body) in calls.items():
            async with http.post(url, json=body, headers=headers) as resp:
                assert resp.status == 200
                bodies[fmt] = await resp.read()
            stream_url = (url.replace(":generateContent", ":streamGenerateContent?alt=sse")
                          if fmt == "gemini" else url)
            stream_body = body if fmt == "gemini" else {**body, "stream": True}
            async with http.post(stream_url, json=stream_body, headers=headers) as resp:
                raw = (await resp.read()).replace(b"\r\n", b"\n")
            events[fmt] = [e + b"\n\n" for e in raw.split(b"\n\n") if e.strip()]
    return Samples(events, bodies)


ODD_EVENTS = [
    b"data: [DONE]\n\n", b": keep-alive\n\n", b"\n", b"\r\n\r\n", b"data: \n\n", b"data:\n\n",
    b"data: {}\n\n", b"data: null\n\n", b"data: []\n\n", b"data: 1e999\n\n", b'data: "x"\n\n',
    b"data: {\"choices\": null}\n\n", b"data: {\"choices\": [null]}\n\n",
    b"data: {\"choices\": [{\"delta\": null}]}\n\n", b"data: {\"type\": 7}\n\n",
    b"data: {\"candidates\": [{}]}\n\n", b"data: {\"candidates\": \"x\"}\n\n",
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n',
    b"event: error\ndata: {}\n\n", b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":9,"delta":{}}\n\n',
    b'data: {"error": {"message": "boom"}}\n\n', b'data: {"error": "boom"}\n\n',
    b"\xef\xbb\xbfdata: {}\n\n", b"\xff\xfe\xfd\n\n", b"data: \xc3\x28\n\n",
    b"retry: 10\n\n", b"id: 1\n\n", b"event: ping\ndata: {\"type\": \"ping\"}\n\n",
    b"data: " + b"7" * 5000 + b"\n\n", b"data: 123456789012345678901234567890\n\n",
    b'data: {"choices": [{"delta": {"content": 1e400}}]}\n\n',
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(
        st.sampled_from(["choices", "delta", "content", "type", "error", "message", "candidates",
                         "parts", "text", "usage", "index", "id", "role", "finishReason",
                         "stop_reason", "model"]) | st.text(max_size=5), c, max_size=4),
    max_leaves=12)


def _mutate(data: bytes, cuts: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for position, length, insert in cuts:
        if not out:
            break
        at = position % len(out)
        out[at:at + length] = insert
    return bytes(out)


MUTATIONS = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 8),
                               st.binary(max_size=4) | st.sampled_from([b"\n\n", b"\"", b"{", b"}",
                                                                        b"data: ", b"\n"])),
                     min_size=1, max_size=3)


@st.composite
def scripts(draw: st.DrawFn, samples: Samples, fmt: str, stream: bool) -> Script:
    real = samples.events[fmt] if stream else [samples.bodies[fmt]]
    piece = st.one_of(
        st.sampled_from(real),
        st.tuples(st.sampled_from(real), MUTATIONS).map(lambda t: _mutate(*t)),
        st.sampled_from(ODD_EVENTS),
        JSON_VALUES.map(lambda v: b"data: " + orjson.dumps(v) + b"\n\n" if stream
                        else orjson.dumps(v)),
        st.binary(max_size=40),
    )
    style = draw(st.sampled_from(["real", "real", "truncated", "pieces"]))
    if style == "real":  # the real answer, one part mutated
        parts = list(real)
        index = draw(st.integers(0, len(parts) - 1))
        parts[index] = draw(piece)
    elif style == "truncated":
        parts = list(real)[:draw(st.integers(0, len(real)))]
    else:
        parts = draw(st.lists(piece, max_size=6))
    body = b"".join(parts)
    splits = sorted(draw(st.lists(st.integers(0, max(0, len(body))), max_size=4)))
    chunks = [body[a:b] for a, b in zip([0, *splits], [*splits, len(body)], strict=True)]
    status = draw(st.sampled_from([200] * 8 + [400, 401, 404, 408, 422, 429, 500, 503, 529])
                  | st.integers(200, 599).filter(lambda s: s not in (204, 304)))
    ctype = draw(st.sampled_from([SSE if stream else JSON] * 4 + [
        SSE, JSON, f"{SSE}; charset=utf-8", f"{JSON}; charset=utf-8", "text/html", "text/plain",
        None]))
    ending = draw(st.sampled_from(["eof"] * 8 + ["abort", "hang"]))
    return Script(status, ctype, [c for c in chunks if c], ending)


# -- the test --------------------------------------------------------------------------------------

def _config(fake: FakeProvider, port: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    bases = {"openai": f"{url}/v1", "anthropic": url, "gemini": url}
    never = {"failure_threshold": 10_000, "recovery_time": 1}
    groups = {
        f"g-{fmt}": {"echelon1": {"models": [f"fuzz-{fmt}"], "priority": 1, "timeout": TIMEOUT},
                     "echelon2": {"models": ["good"], "priority": 2, "timeout": 10},
                     "fallback_config": {"circuit_breaker": never}}
        for fmt in FORMATS
    }
    models = {f"fuzz-{fmt}": {"provider": fmt, "model": "fuzzed", "base_url": bases[fmt],
                              "api_key_env": API_KEY_ENV} for fmt in FORMATS}
    groups["clean"] = {"echelon1": {"models": ["good"]}}
    models["good"] = openai_model(fake, "up-good")
    return {"task_groups": groups, "models": models}


@dataclass
class Rig:
    sc: RunningSidecar
    upstream: ScriptedUpstream
    http: aiohttp.ClientSession
    samples: Samples
    examples: int = 0


@pytest.fixture
async def rig(fake: FakeProvider, make_sidecar: MakeSidecar,
              upstream_key: str) -> AsyncIterator[Rig]:
    async with ScriptedUpstream() as upstream, aiohttp.ClientSession() as http:
        sc = await make_sidecar(_config(fake, upstream.port))
        sc.sidecar.engine.provider.max_response_bytes = 64 * 1024  # type: ignore[union-attr]
        yield Rig(sc, upstream, http, await _samples(fake, upstream_key))


# ECHELON_FUZZ_EXAMPLES=1000 (and ECHELON_FUZZ_RANDOM=1 for new examples each run) digs deeper
FUZZ = settings(max_examples=int(os.environ.get("ECHELON_FUZZ_EXAMPLES", "45")), deadline=None,
                derandomize=os.environ.get("ECHELON_FUZZ_RANDOM", "") != "1",
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.data(), caller=st.sampled_from(["openai", "anthropic"]))
async def test_whatever_an_upstream_sends_the_client_gets_one_well_formed_answer(
    rig: Rig, caplog: pytest.LogCaptureFixture, fmt: str, stream: bool, data: st.DataObject,
    caller: str
) -> None:
    script = data.draw(scripts(rig.samples, fmt, stream), label="script")
    rig.upstream.script = script
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        seen = await exchange(rig.http, rig.sc.data_url, f"g-{fmt}", stream=stream,
                              caller=caller, deadline=5 + 2 * TIMEOUT)
    assert seen.elapsed < 2 + 2 * TIMEOUT, f"took {seen.elapsed:.2f}s"
    if seen.kind == "served":
        assert seen.served_by in (f"fuzz-{fmt}", "good"), seen.describe()
    elif seen.kind == "broken":
        assert seen.served_by == f"fuzz-{fmt}", seen.describe()
    else:
        assert 400 <= seen.status < 600, seen.describe()
    unhandled = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not unhandled, [r.getMessage() for r in unhandled]
    rig.examples += 1
    if rig.examples % 15 == 0:  # still serving, nothing left in flight
        clean = await exchange(rig.http, rig.sc.data_url, "clean", stream=stream)
        assert (clean.kind, clean.served_by) == ("served", "good"), clean.describe()
        assert rig.sc.in_flight(await rig.sc.status()) == 0
