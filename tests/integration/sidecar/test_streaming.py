"""Streaming: failover before the first byte, a well-formed error after it, disconnects."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest
from bench.harness.tls import make_ca

from echelon_sidecar.providers.lean_response import Body
from echelon_tools.fake_provider import FakeProvider, FakeSettings

from ..conftest import (
    HI,
    MakeSidecar,
    RunningSidecar,
    anthropic_model,
    eventually,
    openai_model,
)


def _config(fake: FakeProvider, **tier: Any) -> dict[str, Any]:
    return {
        "task_groups": {"g": {
            "echelon1": {"models": ["first"], "priority": 1, **tier},
            "echelon2": {"models": ["second"], "priority": 2},
        }},
        "models": {"first": openai_model(fake, "up-first"),
                   "second": openai_model(fake, "up-second")},
    }


async def _read(sc: RunningSidecar, into: list[Any], model: str = "g") -> None:
    stream = await sc.openai.chat.completions.create(model=model, messages=HI, stream=True)
    async for chunk in stream:
        into.append(chunk)


async def test_a_stream_cut_mid_way_ends_with_an_error_the_sdk_raises(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.configure(stream_chunks=5)
    fake.set_fault("up-first", "cut:3")
    chunks: list[Any] = []
    with pytest.raises(openai.APIError) as info:
        await _read(sc, chunks)
    assert len(chunks) == 3, "the client saw exactly the chunks the upstream sent"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "[fake:up-first] hello "
    assert "stream" in info.value.message
    assert fake.stats()["by_model"].get("up-second", 0) == 0, "no failover after the first byte"
    status = await sc.status()
    (first,) = [i for i in status["instances"] if i["model"] == "first"]
    assert first["consecutive_failures"] == 1
    assert first["last_error"] == "stream_broken"


async def test_a_stream_cut_before_its_first_chunk_fails_over_to_the_next_tier(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-first", "cut:0")
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model="g", messages=HI, stream=True)
    assert raw.headers["x-echelon-served-by"] == "second"
    assert raw.headers["x-echelon-attempts"] == "2"
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text == "[fake:up-second] hello there sidecar"
    assert fake.stats()["by_model"] == {"up-first": 1, "up-second": 1}


async def test_a_stream_that_fails_before_its_first_byte_falls_back_on_http_errors_too(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-first", "malformed")
    chunks: list[Any] = []
    await _read(sc, chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[fake:up-second]")


async def _slots_free(sc: RunningSidecar) -> bool:
    return sc.in_flight(await sc.status()) == 0


async def test_a_client_leaving_before_the_first_byte_cancels_the_upstream_and_frees_slots(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake, concurrency_limit=1))
    fake.set_fault("up-first", "hang:headers")
    chunks: list[Any] = []
    task = asyncio.create_task(_read(sc, chunks))
    async with asyncio.timeout(5):
        await fake.wait_for(lambda s: s.in_flight == 1)
    assert sc.in_flight(await sc.status()) == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with asyncio.timeout(5):
        await fake.wait_for(lambda s: s.in_flight == 0)  # the upstream connection was closed
    await eventually(lambda: _slots_free(sc), what="the tier slot to be released")
    fake.clear_faults()
    raw = await sc.openai.chat.completions.with_raw_response.create(model="g", messages=HI)
    assert raw.headers["x-echelon-served-by"] == "first", "the freed slot serves the next one"
    assert fake.stats()["by_model"].get("up-second", 0) == 0
    status = await sc.status()
    (first,) = [i for i in status["instances"] if i["model"] == "first"]
    assert first["consecutive_failures"] == 0, "a caller leaving is no failure of the upstream"


async def test_a_client_leaving_mid_stream_cancels_the_upstream_and_frees_slots(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake, concurrency_limit=1))
    fake.configure(stream_chunks=40, chunk_delay_ms=200)
    stream = await sc.openai.chat.completions.create(model="g", messages=HI, stream=True)
    first = await stream.__anext__()
    assert first.choices[0].delta.role == "assistant"
    assert fake.stats()["in_flight"] == 1
    await stream.close()
    async with asyncio.timeout(5):
        await fake.wait_for(lambda s: s.in_flight == 0)
    assert fake.stats()["by_status"] == {"client_closed": 1}
    await eventually(lambda: _slots_free(sc), what="the tier slot to be released")
    fake.configure(stream_chunks=5, chunk_delay_ms=0)
    raw = await sc.openai.chat.completions.with_raw_response.create(model="g", messages=HI)
    assert raw.headers["x-echelon-served-by"] == "first"


@pytest.mark.parametrize("upstream", ["anthropic", "openai"])
async def test_an_anthropic_callers_stream_cut_mid_way_ends_with_an_error_event(
    fake: FakeProvider, make_sidecar: MakeSidecar, upstream: str
) -> None:
    entry = (anthropic_model if upstream == "anthropic" else openai_model)(fake, "up-first")
    sc = await make_sidecar({
        "task_groups": {"g": {"echelon1": {"models": ["first"], "priority": 1},
                              "echelon2": {"models": ["second"], "priority": 2}}},
        "models": {"first": entry, "second": openai_model(fake, "up-second")},
    })
    fake.set_fault("up-first", "cut:3")
    events: list[str] = []
    with pytest.raises(anthropic.APIError):
        await sc.anthropic_stream(events, model="g", max_tokens=50, messages=HI)
    assert events[0] == "message_start"
    assert "message_stop" not in events
    assert fake.stats()["by_model"].get("up-second", 0) == 0


async def test_an_upstream_silent_mid_stream_for_the_tier_timeout_ends_the_stream(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    # the first event at once, then 2 s of silence: the tier's timeout (0.5 s) is the idle
    # limit between two reads of a committed stream
    sc = await make_sidecar(_config(fake, timeout=0.5))
    fake.configure(stream_chunks=3, chunk_delay_ms=2000)
    chunks: list[Any] = []
    with pytest.raises(openai.APIError) as info:
        await _read(sc, chunks)
    assert len(chunks) == 1
    assert "sent nothing for 0.5s" in info.value.message
    assert fake.stats()["by_model"].get("up-second", 0) == 0, "no failover after the first byte"


async def test_a_slow_stream_whose_reads_each_come_within_the_timeout_completes(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    # five gaps of 0.2 s: the whole stream takes longer than the 0.5 s idle limit, no read
    # waits that long
    sc = await make_sidecar(_config(fake, timeout=0.5))
    fake.configure(stream_chunks=5, chunk_delay_ms=200)
    chunks: list[Any] = []
    await _read(sc, chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith(
        "[fake:up-first]")
    assert chunks[-1].choices[0].finish_reason == "stop"


def _lean_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidecar's upstream calls on the lean client, whose streams the Pump relays (an
    egress proxy in the environment, or ECHELON_UPSTREAM_CLIENT=aiohttp, would choose aiohttp's)."""
    monkeypatch.delenv("ECHELON_UPSTREAM_CLIENT", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)


async def _read_slowly(sc: RunningSidecar, fake: FakeProvider, caller: str,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """~12 MB of reply, more than the sockets' buffers hold, to a caller that does not read
    at first: the sidecar stops reading the upstream until the caller's transport drains,
    and not one byte is lost; the upstream connection is not left paused."""
    pauses: list[int] = []
    pause = Body.pause_reading

    def counted(body: Body) -> None:
        pauses.append(1)
        pause(body)

    monkeypatch.setattr(Body, "pause_reading", counted)
    text = " ".join(f"w{i}" for i in range(1_500_000))
    fake.configure(reply=text, stream_chunks=300)
    path, body = ("/v1/chat/completions", {"model": "g", "messages": HI, "stream": True})
    if caller == "anthropic":
        path, body = "/v1/messages", {"model": "g", "messages": HI, "stream": True,
                                      "max_tokens": 4_000_000}
    async with sc.http.post(f"{sc.data_url}{path}", json=body) as resp:
        assert resp.status == 200
        await eventually(lambda: bool(pauses), within=30.0,
                         what="the upstream's reading to be paused")
        raw = await asyncio.wait_for(resp.read(), 60)
    got = []
    for event in raw.split(b"\n\n"):
        for line in event.split(b"\n"):
            if line.startswith(b"data: {"):
                data = orjson.loads(line[6:])
                if caller == "openai":
                    got.extend(c["delta"].get("content") or "" for c in data["choices"])
                elif data["type"] == "content_block_delta":
                    got.append(data["delta"]["text"])
    assert "".join(got) == f"[fake:up-first] {text}"
    assert raw.rstrip().endswith(b"[DONE]" if caller == "openai" else b'{"type":"message_stop"}')
    fake.configure(reply=None, stream_chunks=5)
    chunks: list[Any] = []
    await sc.openai_stream(chunks, model="g", messages=HI)  # the connection serves again
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("caller", ["openai", "anthropic"])
async def test_a_caller_reading_slowly_pauses_the_upstream_and_gets_every_byte(
    fake: FakeProvider, make_sidecar: MakeSidecar, monkeypatch: pytest.MonkeyPatch, caller: str
) -> None:
    _lean_client(monkeypatch)
    await _read_slowly(await make_sidecar(_config(fake)), fake, caller, monkeypatch)


async def test_over_tls_a_caller_reading_slowly_gets_every_byte(
    tmp_path: Path, upstream_key: str, make_sidecar: MakeSidecar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the upstream over HTTPS (a CA of the test's own, trusted through SSL_CERT_FILE as a
    # user would): the TLS transport's reading is paused and resumed the same way
    _lean_client(monkeypatch)
    ca = make_ca(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_cert))
    settings = FakeSettings(api_key=upstream_key, tls_cert=str(ca.cert), tls_key=str(ca.key))
    async with FakeProvider(settings, shutdown_timeout=1.0) as tls_fake:
        assert tls_fake.base_url.startswith("https://")
        sc = await make_sidecar(_config(tls_fake))
        await _read_slowly(sc, tls_fake, "openai", monkeypatch)
