"""Thousands of fake sidecar admin endpoints in one process: the operator's poll targets.

    python -m bench.harness.sidecar_farm --targets targets.json --port 9090 \
        --control-port-file F

``targets.json`` is a list of ``{"ip", "pod", "pool", "slot", "sidecars", "groups":
{group: [model, ...]}, "open": [[group, model], ...]}``: one listener on ``ip:port`` per
entry (any address of 127.0.0.0/8 is this machine's), each answering ``GET /v1/status``
with its own document in the shape of docs/status-api.md (config version, ready, pool,
budget divisor and slot, reload state, one instance per (group, model) breaker — the ones
in ``open`` open, with their error and times —, the pool's rotation, limits, sessions,
retry-after) and ``GET /readyz``. HTTP/1.1 keep-alive; raw asyncio protocols on uvloop, so
that one process answers thousands of polls a second.

The control port (127.0.0.1) takes ``POST /flip?count=N``: the first N sidecars whose
circuits are all closed open one (their first instance), so that the operator has a change
to write; ``POST /reset`` forgets the polls seen; and ``GET /stats``: requests answered,
connections accepted, sidecars polled, and the poll rounds: the k-th poll of every sidecar
(first and last time, how many).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

__all__ = ["main", "status_document"]

PROVIDERS = {"m-openai": "openai", "m-claude": "anthropic", "m-gemini": "gemini"}


def status_document(target: dict[str, Any], now: float) -> dict[str, Any]:
    """One sidecar's ``/v1/status`` (docs/status-api.md)."""
    opened = {tuple(x) for x in target.get("open") or ()}
    instances, rotation = [], []
    for group, models in target["groups"].items():
        for model in models:
            is_open = (group, model) in opened
            instances.append({
                "group": group, "model": model, "provider": PROVIDERS.get(model, "openai"),
                "state": "open" if is_open else "closed",
                "consecutive_failures": 5 if is_open else 0,
                "last_error": "http_503" if is_open else None,
                "open_since": round(now - 3.0, 3) if is_open else None,
                "open_until": round(now + 27.0, 3) if is_open else None,
            })
            rotation.append({"group": group, "tier": "echelon1", "model": model,
                             "healthy": not is_open, "on_probation": False,
                             "consecutive_failures": 5 if is_open else 0})
    return {
        "config_version": "3f2a9c0b1d4e",
        "ready": True,
        "pool": target["pool"],
        "sidecars": target["sidecars"],
        "slot": target["slot"],
        "reload": {"reloads": 0, "failures": 0, "last_error": None, "last_attempt": now},
        "instances": instances,
        "pools": {target["pool"]: rotation},
        "limits": [],
        "sessions": {},
        "retry_after": [],
    }


def _response(status: int, body: bytes) -> bytes:
    reason = b"OK" if status == 200 else b"Not Found"
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (status, reason, len(body)) + body)


class Farm:
    def __init__(self, targets: list[dict[str, Any]]) -> None:
        self.targets = targets
        now = time.time()
        self.bodies = [_response(200, orjson.dumps(status_document(t, now))) for t in targets]
        self.requests = 0
        self.connections = 0
        # the time of every poll of each sidecar since the last reset
        self.polls: list[list[float]] = [[] for _ in targets]

    def rounds(self) -> list[list[float]]:
        """[first, last, sidecars] of the k-th poll of every sidecar polled k times: a poll
        round, once every sidecar answers each round."""
        out = []
        k = 0
        while True:
            times = [p[k] for p in self.polls if len(p) > k]
            if not times:
                return out
            out.append([min(times), max(times), len(times)])
            k += 1

    def flip(self, count: int) -> int:
        now = time.time()
        done = 0
        for i, t in enumerate(self.targets):
            if done >= count:
                break
            if t.get("open"):
                continue
            group, models = next(iter(t["groups"].items()))
            t["open"] = [[group, models[0]]]
            self.bodies[i] = _response(200, orjson.dumps(status_document(t, now)))
            done += 1
        return done


class _Conn(asyncio.Protocol):
    def __init__(self, farm: Farm, index: int | None) -> None:
        self.farm, self.index = farm, index
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.farm.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0 or self.transport is None:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, _, rest = line.partition(" ")
            target = rest.rpartition(" ")[0]
            close = b"connection: close" in head.lower()
            self.transport.write(self.answer(method, target))
            if close:
                self.transport.close()
                return

    def answer(self, method: str, target: str) -> bytes:
        farm = self.farm
        path = target.split("?", 1)[0]
        if self.index is None:  # the control port
            if path == "/window":  # the polls in [from, to): how many, first, last
                q = parse_qs(urlsplit(target).query)
                lo, hi = float(q["from"][0]), float(q["to"][0])
                times = [t for p in farm.polls for t in p if lo <= t < hi]
                return _response(200, orjson.dumps({"polls": len(times),
                                                    "sidecars": sum(1 for p in farm.polls if any(
                                                        lo <= t < hi for t in p)),
                                                    "first": min(times, default=None),
                                                    "last": max(times, default=None)}))
            if method == "POST" and path == "/reset":
                farm.polls = [[] for _ in farm.targets]
                return _response(200, b'{"reset": true}')
            if method == "POST" and path == "/flip":
                count = int((parse_qs(urlsplit(target).query).get("count") or ["1"])[0])
                return _response(200, orjson.dumps({"flipped": farm.flip(count)}))
            return _response(200, orjson.dumps({"requests": farm.requests,
                                                "connections": farm.connections,
                                                "polled": sum(1 for p in farm.polls if p),
                                                "last_poll": max((p[-1] for p in farm.polls
                                                                  if p), default=None),
                                                "rounds": farm.rounds()}))
        farm.requests += 1
        if path == "/v1/status":
            farm.polls[self.index].append(time.time())
            return farm.bodies[self.index]
        if path in ("/readyz", "/healthz"):
            return _response(200, b'{"ok": true}')
        return _response(404, b'{"error": "not found"}')


async def serve(targets: list[dict[str, Any]], port: int, control_port_file: Path | None
                ) -> None:
    farm = Farm(targets)
    loop = asyncio.get_running_loop()
    servers = []
    for i, t in enumerate(targets):
        servers.append(await loop.create_server(lambda i=i: _Conn(farm, i), t["ip"], port,
                                                reuse_address=True, backlog=512))
    control = await loop.create_server(lambda: _Conn(farm, None), "127.0.0.1", 0)
    cport = control.sockets[0].getsockname()[1]
    if control_port_file is not None:
        fd, tmp = tempfile.mkstemp(dir=control_port_file.parent, prefix=".farm.")
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{cport}\n")
        os.replace(tmp, control_port_file)
    print(f"sidecar farm: {len(targets)} admin endpoints on port {port}; control on "
          f"127.0.0.1:{cport}", flush=True)
    await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.harness.sidecar_farm",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", type=Path, required=True)
    p.add_argument("--port", type=int, default=9090)
    p.add_argument("--control-port-file", type=Path)
    args = p.parse_args(argv)
    targets = json.loads(args.targets.read_text())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 3 * len(targets) + 1024)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    import uvloop
    try:
        uvloop.run(serve(targets, args.port, args.control_port_file))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
