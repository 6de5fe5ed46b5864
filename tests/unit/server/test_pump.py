"""Pump: a stream relayed from the upstream connection's callbacks.

Driven by hand: a lean ``Body`` over a transport that records pauses, a real ``StreamRelay``
and ``SSEDecoder``, and a sink that records what it was given and can say "wait".
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from echelon_sidecar.providers import UpstreamReply
from echelon_sidecar.providers.lean_response import Body, UpstreamBodyCut
from echelon_sidecar.server.pump import IdleWatch, Pump
from echelon_sidecar.server.relay import StreamBroken, StreamRelay
from echelon_sidecar.translate import SSEDecoder


class Transport:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


class Sink:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.full = False
        self.drained = asyncio.Event()

    def send(self, data: bytes) -> bool:
        self.sent.append(data)
        return self.full

    async def drain(self) -> None:
        await self.drained.wait()


def event(text: str) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


DONE = b"data: [DONE]\n\n"


def parts(caller: str = "openai", limit: int = 0) -> tuple[Body, Transport, Sink, Any]:
    transport = Transport()
    body = Body(transport)  # type: ignore[arg-type]
    sink = Sink()
    relay = StreamRelay(UpstreamReply(format="openai", model="m"), caller, False)  # type: ignore[arg-type]

    def pump() -> Pump:
        return Pump(body, SSEDecoder(), relay, sink, limit, IdleWatch(60.0))  # type: ignore[arg-type]

    return body, transport, sink, pump


async def test_what_was_queued_goes_first_then_each_read_as_it_comes() -> None:
    body, _, sink, pump = parts()
    body.feed(event("a"))
    body.feed(event("b"))
    task = asyncio.create_task(pump().run())
    await asyncio.sleep(0)
    assert sink.sent == [event("a"), event("b")]
    body.feed(event("c") + DONE)
    await asyncio.wait_for(task, 5)
    assert sink.sent[-1] == event("c") + DONE
    body.feed(event("late"))  # after the end marker: queued for nobody, not relayed
    assert len(sink.sent) == 3


async def test_a_read_split_inside_an_event_is_relayed_whole() -> None:
    body, _, sink, pump = parts()
    task = asyncio.create_task(pump().run())
    await asyncio.sleep(0)
    whole = event("split")
    body.feed(whole[:10])
    assert sink.sent == []
    body.feed(whole[10:] + DONE)
    await asyncio.wait_for(task, 5)
    assert b"".join(sink.sent) == whole + DONE


async def test_translated_for_an_anthropic_caller() -> None:
    body, _, sink, pump = parts("anthropic")
    task = asyncio.create_task(pump().run())
    await asyncio.sleep(0)
    body.feed(event("hi"))
    body.feed(DONE)
    await asyncio.wait_for(task, 5)
    out = b"".join(sink.sent)
    assert out.startswith(b"event: message_start\n")
    assert b'"text_delta","text":"hi"' in out
    assert out.endswith(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")


async def test_a_full_caller_pauses_the_upstream_until_it_drains() -> None:
    body, transport, sink, pump = parts()
    task = asyncio.create_task(pump().run())
    await asyncio.sleep(0)
    sink.full = True
    body.feed(event("a"))
    assert transport.calls == ["pause"]
    body.feed(event("b"))  # what was already read still goes out, no second pause
    assert transport.calls == ["pause"] and len(sink.sent) == 2
    await asyncio.sleep(0)
    assert not task.done()
    sink.full = False
    sink.drained.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert transport.calls == ["pause", "resume"]
    body.feed(DONE)
    await asyncio.wait_for(task, 5)


async def test_a_stream_ending_while_paused_leaves_the_connection_reading() -> None:
    body, transport, sink, pump = parts()
    sink.full = True
    sink.drained.set()
    body.feed(event("a") + DONE)
    await asyncio.wait_for(pump().run(), 5)
    assert transport.calls == ["pause", "resume"]


async def test_a_malformed_event_is_raised_in_the_task() -> None:
    body, _, sink, pump = parts()
    task = asyncio.create_task(pump().run())
    await asyncio.sleep(0)
    body.feed(b"data: {not json\n\n")
    with pytest.raises(orjson.JSONDecodeError):
        await asyncio.wait_for(task, 5)
    body.feed(event("after"))  # detached: nothing more is relayed
    assert sink.sent == []


async def test_a_cut_upstream_is_a_broken_stream() -> None:
    body, _, _, pump = parts()
    task = asyncio.create_task(pump().run())
    await asyncio.sleep(0)
    body.feed(event("a"))
    body.fail(UpstreamBodyCut("stream_cut", "the upstream closed mid-body"))
    with pytest.raises(StreamBroken, match="upstream connection failed: UpstreamBodyCut"):
        await asyncio.wait_for(task, 5)


async def test_a_body_ending_without_its_marker_returns_for_the_relay_to_judge() -> None:
    body, _, _, pump = parts()
    body.feed(event("a"))
    body.finish()
    await asyncio.wait_for(pump().run(), 5)


async def test_an_event_over_the_limit_breaks_the_stream() -> None:
    body, _, _, pump = parts(limit=64)
    task = asyncio.create_task(pump().run())
    await asyncio.sleep(0)
    body.feed(b"data: " + b"x" * 100)
    with pytest.raises(StreamBroken, match="exceeds 64 bytes"):
        await asyncio.wait_for(task, 5)


async def test_an_idle_upstream_cancels_the_task_through_the_watch() -> None:
    body, _, _, _ = parts()
    relay = StreamRelay(UpstreamReply(format="openai", model="m"), "openai", False)
    watch = IdleWatch(0.05)
    pump = Pump(body, SSEDecoder(), relay, Sink(), 0, watch)  # type: ignore[arg-type]
    with pytest.raises(asyncio.CancelledError):
        await pump.run()  # in this task, the one the watch cancels
    assert watch.expired()
    watch.close()
