"""A small, fast HTTP/1.1 load generator on raw asyncio protocols (uvloop), for what wrk
cannot do: open-loop load at a fixed rate, and time to first token of streams.

    python -m bench.harness.loadgen --url http://127.0.0.1:8080/v1/chat/completions \
        --body-file body.json (--concurrency 16 | --rate 500) --duration 10 [--stream]

Prints one JSON object. Closed loop: ``--concurrency`` connections, each sending its next
request when the previous answer is complete. Open loop: requests are due at fixed times
(``--rate`` per second) whatever the server does, on ``--connections`` keep-alive connections
opened beforehand; a request's latency is measured from the time it was due (so a server
that falls behind is charged for the queue it builds: no coordinated omission).

Latency is to the last byte of the answer; ``ttft`` (streams) is to the first byte of the
first SSE ``data:`` line. A status other than 200, a closed connection or a timeout is an
error. Every run is bounded by ``--duration`` plus ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import ssl
import sys
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from .stats import summarize

__all__ = ["main", "run"]


class _Conn(asyncio.Protocol):
    """One keep-alive connection, one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, float, float | None]] | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.buf.clear()
        self.header_end = -1
        self.status = 0
        self.length: int | None = None
        self.chunked = False
        self.first_data: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def send(self, request: bytes) -> asyncio.Future[tuple[int, float, float | None]]:
        assert self.transport is not None
        self._reset()
        self.waiter = self.loop.create_future()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.header_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.header_end = end + 4
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name == b"content-length":
                    self.length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value:
                    self.chunked = True
        if self.first_data is None and buf.find(b"data:", self.header_end) >= 0:
            self.first_data = time.perf_counter()
        body = len(buf) - self.header_end
        if self.length is not None:
            done = body >= self.length
        elif self.chunked:
            done = buf.endswith(b"0\r\n\r\n") and (
                body == 5 or buf[-7:-5] == b"\r\n")
        else:
            done = False  # read until close: not used by the servers measured here
        if done and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.status, time.perf_counter(), self.first_data))


class _Client:
    def __init__(self, url: str, body: bytes, headers: dict[str, str], timeout: float,
                 cafile: str | None = None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        tls = parts.scheme == "https"
        self.port = parts.port or (443 if tls else 80)
        self.ssl = ssl.create_default_context(cafile=cafile) if tls else None
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}",
                 "Content-Type: application/json", f"Content-Length: {len(body)}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.idle: collections.deque[_Conn] = collections.deque()
        self.open = 0
        self.latencies: list[float] = []
        self.ttfts: list[float] = []
        self.errors: collections.Counter[str] = collections.Counter()
        self.answered = 0  # every request that got an answer or failed, warm-up included

    async def connect(self) -> _Conn:
        _, conn = await self.loop.create_connection(
            lambda: _Conn(self.loop), self.host, self.port, ssl=self.ssl,
            server_hostname=self.host if self.ssl else None)
        self.open += 1
        return conn

    async def one(self, conn: _Conn | None, due: float) -> _Conn | None:
        """Send one request (on ``conn`` or a new connection); record it; return the
        connection when it can be reused."""
        self.answered += 1
        try:
            if conn is None or conn.closed:
                if conn is not None:
                    self.open -= 1
                conn = await self.connect()
            status, done, first = await asyncio.wait_for(conn.send(self.request), self.timeout)
        except TimeoutError:
            self.errors["timeout"] += 1
            self._drop(conn)
            return None
        except OSError as exc:
            self.errors[type(exc).__name__] += 1
            self._drop(conn)
            return None
        if status != 200:
            self.errors[f"status_{status}"] += 1
            return conn
        self.latencies.append(done - due)
        if first is not None:
            self.ttfts.append(first - due)
        return conn

    def _drop(self, conn: _Conn | None) -> None:
        if conn is not None:
            if conn.transport is not None:
                conn.transport.close()
            self.open -= 1
        return None

    def close(self) -> None:
        while self.idle:
            conn = self.idle.popleft()
            if conn.transport is not None:
                conn.transport.close()


async def _closed(client: _Client, concurrency: int, duration: float, warmup: float) -> float:
    conns = [await client.connect() for _ in range(concurrency)]
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + duration

    async def worker(conn: _Conn | None) -> None:
        while time.perf_counter() < stop:
            began = time.perf_counter()
            if began < measure_from:  # warm-up: not recorded
                saved = len(client.latencies), len(client.ttfts), client.errors.copy()
                conn = await client.one(conn, began)
                del client.latencies[saved[0]:], client.ttfts[saved[1]:]
                client.errors = saved[2]
            else:
                conn = await client.one(conn, began)
        if conn is not None:
            client.idle.append(conn)

    await asyncio.gather(*(worker(c) for c in conns))
    return time.perf_counter() - measure_from


async def _open(client: _Client, rate: float, duration: float, connections: int) -> float:
    """Requests due at fixed times, on a fixed set of keep-alive connections (like wrk2): a
    request due while every connection is busy waits for one, and its latency counts from the
    time it was due. No connections are opened during the run (but to replace a broken one),
    so a server that falls behind is not also buried under new connections."""
    while len(client.idle) < connections:
        client.idle.append(await client.connect())
    waiting: collections.deque[float] = collections.deque()
    tasks: set[asyncio.Task[None]] = set()
    in_use = 0
    all_sent = False
    drained = asyncio.Event()

    async def run_one(conn: _Conn | None, due: float) -> None:
        nonlocal in_use
        while True:
            conn = await client.one(conn, due)  # None: it broke; the next call reconnects
            if not waiting:
                break
            due = waiting.popleft()
        in_use -= 1
        if conn is not None:
            client.idle.append(conn)
        if all_sent and in_use == 0:
            drained.set()

    def dispatch(due: float) -> None:
        nonlocal in_use
        if client.idle or in_use == 0:
            in_use += 1
            task = asyncio.ensure_future(
                run_one(client.idle.popleft() if client.idle else None, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        else:
            waiting.append(due)

    start = time.perf_counter()
    total = int(rate * duration)
    issued = 0
    while issued < total:
        now = time.perf_counter()
        due_count = min(total, int((now - start) * rate) + 1)
        while issued < due_count:
            dispatch(start + issued / rate)
            issued += 1
        await asyncio.sleep(0.0005)
    all_sent = True
    if in_use or waiting:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drained.wait(), client.timeout)
    end = time.perf_counter()
    client.errors["not_sent"] += len(waiting)
    client.errors["unfinished"] += len(tasks)
    for task in list(tasks):
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    return max(duration, end - start)


async def run(url: str, body: bytes, *, concurrency: int | None = None, rate: float | None = None,
              duration: float = 10.0, warmup: float = 1.0, request_timeout: float = 10.0,
              connections: int = 64, headers: dict[str, str] | None = None,
              cafile: str | None = None) -> dict[str, Any]:
    client = _Client(url, body, headers or {}, request_timeout, cafile)
    try:
        if rate is not None:
            # a short warm-up at the same rate, not recorded
            await _open(client, rate, min(warmup, 1.0), connections)
            client.latencies.clear()
            client.ttfts.clear()
            client.errors.clear()
            elapsed = await _open(client, rate, duration, connections)
        else:
            elapsed = await _closed(client, concurrency or 1, duration, warmup)
    finally:
        client.close()
    out = summarize(client.latencies, elapsed)
    out["errors"] = dict(client.errors)
    out["error_count"] = sum(client.errors.values())
    out["requests_total"] = client.answered
    if client.ttfts:
        out["ttft"] = summarize(client.ttfts, elapsed)
    if rate is not None:
        out["offered_rps"] = rate
    else:
        out["concurrency"] = concurrency
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.harness.loadgen",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--body-file", required=True)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--concurrency", type=int)
    group.add_argument("--rate", type=float)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=64,
                   help="open loop: the fixed set of keep-alive connections (default 64)")
    p.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    p.add_argument("--cafile", help="CA bundle to trust (https URLs)")
    args = p.parse_args(argv)
    with open(args.body_file, "rb") as fh:
        body = fh.read()
    headers = dict(h.split(":", 1) for h in args.header)
    try:
        import uvloop
        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    result = runner(run(args.url, body, concurrency=args.concurrency, rate=args.rate,
                        duration=args.duration, warmup=args.warmup,
                        request_timeout=args.timeout,
                        connections=args.connections, cafile=args.cafile,
                        headers={k.strip(): v.strip() for k, v in headers.items()}))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
