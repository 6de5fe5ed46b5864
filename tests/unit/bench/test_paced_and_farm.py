"""The benchmark's paced upstream, stream generator and sidecar farm (at a tiny size)."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import orjson
from bench.harness import sidecar_farm, streamgen
from bench.harness.paced import Paced, _Conn
from bench.harness.streams import _request
from multidict import CIMultiDict

from echelon_sidecar.translate import SSEDecoder


def _render(fmt: str, chunks: int = 5) -> tuple[bytes, list[bytes], bytes, bytes]:
    async def go() -> tuple[bytes, list[bytes], bytes, bytes]:
        paced = Paced(chunks, 1000.0)
        path, body, headers = _request(fmt, "m")
        return paced.render(fmt, path, body, orjson.dumps(body), CIMultiDict(headers))
    return asyncio.run(go())


def test_each_format_streams_its_documented_events() -> None:
    head, content, tail, _ = _render("openai")
    events = SSEDecoder().feed(head + b"".join(content) + tail)
    assert events[-1].data == "[DONE]"
    chunks = [json.loads(e.data) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len(content) == 5 and chunks[-1]["choices"] == [] and chunks[-1]["usage"]
    head, content, tail, _ = _render("anthropic")
    names = [e.event for e in SSEDecoder().feed(head + b"".join(content) + tail)]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[3:8] == ["content_block_delta"] * 5
    assert names[8:] == ["content_block_stop", "message_delta", "message_stop"]
    head, content, tail, _ = _render("gemini")
    events = SSEDecoder().feed(head + b"".join(content) + tail)
    assert len(events) == 5 and head == b"" and tail == b""
    last = json.loads(events[-1].data)
    assert last["candidates"][0]["finishReason"] == "STOP" and last["usageMetadata"]


def test_streams_are_paced_and_counted_by_the_generator() -> None:
    async def go() -> dict[str, Any]:
        paced = Paced(10, 200.0)  # 10 events, 5 ms apart
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Conn(paced), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        path, body, headers = _request("anthropic", "m")
        out, _ = await streamgen.run(f"http://127.0.0.1:{port}{path}", orjson.dumps(body),
                                     concurrency=3, duration=0.3, ramp=0.05,
                                     marker=b"message_stop", headers=headers)
        server.close()
        out["upstream"] = dict(paced.stats)
        return out
    out = asyncio.run(go())
    assert out["lost"] == 0 and out["completed"] == out["started"] > 0
    assert out["ttft"]["n"] == out["completed"]
    assert out["gap"]["p50_ms"] is not None and out["gap"]["max_ms"] < 1000
    assert out["upstream"]["content_events"] >= 10 * out["completed"]


def test_farm_documents_follow_the_status_api() -> None:
    target = {"ip": "127.10.0.1", "pod": "p-0", "pool": "pool-0", "slot": 0, "sidecars": 2,
              "groups": {"group-0": ["m-openai", "m-claude"]},
              "open": [["group-0", "m-claude"]]}
    doc = sidecar_farm.status_document(target, 1000.0)
    assert set(doc) == {"config_version", "ready", "pool", "sidecars", "slot", "reload",
                        "instances", "pools", "limits", "sessions", "retry_after"}
    assert set(doc["reload"]) == {"reloads", "failures", "last_error", "last_attempt"}
    states = {(i["group"], i["model"]): i["state"] for i in doc["instances"]}
    assert states == {("group-0", "m-openai"): "closed", ("group-0", "m-claude"): "open"}
    for inst in doc["instances"]:
        assert set(inst) == {"group", "model", "provider", "state", "consecutive_failures",
                             "last_error", "open_since", "open_until"}
    assert [r["healthy"] for r in doc["pools"]["pool-0"]] == [True, False]


def test_farm_answers_each_ip_with_its_own_status_and_flips() -> None:
    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        targets = [{"ip": f"127.10.0.{i + 1}", "pod": f"p-{i}", "pool": "pool-0", "slot": i,
                    "sidecars": 2, "groups": {"group-0": ["m-openai"]}, "open": []}
                   for i in range(2)]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        farm = sidecar_farm.Farm(targets)
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(lambda i=i: sidecar_farm._Conn(farm, i), t["ip"],
                                            port) for i, t in enumerate(targets)]

        async def get(ip: str) -> dict[str, Any]:
            reader, writer = await asyncio.open_connection(ip, port)
            writer.write(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            raw = await reader.read()
            writer.close()
            return dict(json.loads(raw.split(b"\r\n\r\n", 1)[1]))
        first = await get("127.10.0.1")
        farm.flip(1)
        flipped, other = await get("127.10.0.1"), await get("127.10.0.2")
        for server in servers:
            server.close()
        return first, flipped, other
    first, flipped, other = asyncio.run(go())
    assert first["slot"] == 0 and first["instances"][0]["state"] == "closed"
    assert flipped["instances"][0]["state"] == "open"
    assert other["slot"] == 1 and other["instances"][0]["state"] == "closed"
