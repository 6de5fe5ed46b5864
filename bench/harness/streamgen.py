"""Many long SSE streams at once, timed event by event: the paced-stream load generator.

    python -m bench.harness.streamgen --url URL --body-file F --concurrency 1000 \
        --duration 10 --ramp 4 --marker '[DONE]' [--cafile CA] [--samples-out PATH]

``--concurrency`` keep-alive connections, each sending one streaming request after the
other. Their first requests are spread evenly over ``--ramp`` seconds (arrivals as from
independent callers, not a thundering herd); streams that start in the ``--duration``
seconds after the ramp are recorded, and when that window closes no new stream starts and
the ones in flight are read to their end (each bounded by ``--timeout``).

Per recorded stream: time to first token (request written -> first ``data:`` field), and the
gap before every later event (a ``data:`` field; events that arrive in one read share its
arrival time: gap 0). A stream is complete when its answer was 200, ended cleanly (chunked
terminator or Content-Length) and held ``--marker`` (the stream's end marker: ``[DONE]``,
``message_stop``, ``finishReason``); any other ending is a lost stream, counted by reason.

Lean on purpose (raw asyncio protocols on uvloop, no parsing beyond counting ``data:``
fields): at 1,000 streams of 50 events a second it reads 50,000 events a second, and must
not be what limits the gateway in front of it. Prints one JSON object (its own CPU time
included, to show it was not); ``--samples-out`` also writes the raw TTFT and gap samples.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import contextlib
import json
import socket
import ssl
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .stats import percentile

__all__ = ["main", "run"]

_DATA = b"data:"


class _Result:
    def __init__(self) -> None:
        self.ttft = array.array("d")
        self.gaps = array.array("d")
        self.lost: collections.Counter[str] = collections.Counter()
        self.completed = 0
        self.started = 0
        self.events = 0  # every event read, warm-up included
        self.events_recorded = 0
        self.streams_total = 0


class _Conn(asyncio.Protocol):
    def __init__(self, gen: _Gen) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[str] | None = None
        self.closed = False

    def start(self, record: bool) -> asyncio.Future[str]:
        assert self.transport is not None
        self.record = record
        self.head_done = False
        self.status = 0
        self.length: int | None = None
        self.chunked = False
        self.body = 0
        self.carry = b""
        self.mcarry = b""
        self.tail = b""
        self.marker_seen = False
        self.events = 0
        self.last = 0.0
        self.hbuf = b""
        self.waiter = self.gen.loop.create_future()
        self.sent = time.perf_counter()
        self.transport.write(self.gen.request)
        return self.waiter

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result("connection_closed")

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.head_done:
            data = self._read_head(data)
            if not data:
                return
        self._count_events(data, now)
        if not self.marker_seen:
            seen = self.mcarry + data
            if self.gen.marker in seen:
                self.marker_seen = True
            self.mcarry = seen[-self.gen.keep:]
        self.body += len(data)
        if self._body_done(data) and self.waiter is not None and not self.waiter.done():
            if self.status != 200:
                self.waiter.set_result(f"status_{self.status}")
            elif not self.marker_seen:
                self.waiter.set_result("no_end_marker")
            else:
                self.waiter.set_result("")

    def _read_head(self, data: bytes) -> bytes:
        """Take in the response head (status, framing); what follows it (b"" until it ends)."""
        buf = self.hbuf + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.hbuf = buf
            return b""
        head = buf[:end].lower()
        self.status = int(head[9:12])
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                self.length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                self.chunked = True
        self.head_done = True
        self.hbuf = b""
        return buf[end + 4:]

    def _count_events(self, data: bytes, now: float) -> None:
        """Count the SSE events in ``data``; while recording, their time to first token and
        gaps (events that arrive together: zero gaps)."""
        gen = self.gen
        joined = self.carry + data
        n = joined.count(_DATA)
        self.carry = data[-4:] if len(data) >= 4 else joined[-4:]
        if not n:
            return
        gen.result.events += n
        if self.record:
            gen.result.events_recorded += n
            if self.events == 0:
                gen.result.ttft.append(now - self.sent)
            else:
                gen.result.gaps.append(now - self.last)
            if n > 1:
                gen.result.gaps.extend(gen.zeros[:n - 1])
        self.events += n
        self.last = now

    def _body_done(self, data: bytes) -> bool:
        """Whether the body has ended, by its framing (Content-Length or the last chunk)."""
        if self.length is not None:
            return self.body >= self.length
        if self.chunked:
            tail = self.tail + data
            self.tail = tail[-7:]
            return self.tail.endswith(b"\r\n0\r\n\r\n") or (self.body == 5 and tail == b"0\r\n\r\n")
        return False


class _Gen:
    def __init__(self, url: str, body: bytes, headers: dict[str, str], marker: bytes,
                 timeout: float, cafile: str | None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        tls = parts.scheme == "https"
        self.port = parts.port or (443 if tls else 80)
        self.ssl: ssl.SSLContext | None = None
        if tls:
            self.ssl = ssl.create_default_context(cafile=cafile)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}",
                 "Content-Type: application/json", "Accept: text/event-stream",
                 f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.marker = marker
        self.keep = max(1, len(marker) - 1)
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.result = _Result()
        self.zeros = array.array("d", [0.0]) * 4096

    async def connect(self) -> _Conn:
        _, conn = await self.loop.create_connection(
            lambda: _Conn(self), self.host, self.port, ssl=self.ssl,
            server_hostname=self.host if self.ssl else None)
        return conn


async def run(url: str, body: bytes, *, concurrency: int, duration: float, ramp: float,
              marker: bytes, timeout: float = 60.0,  # noqa: ASYNC109
              headers: dict[str, str] | None = None,
              cafile: str | None = None) -> tuple[dict[str, Any], _Result]:
    gen = _Gen(url, body, headers or {}, marker, timeout, cafile)
    result = gen.result
    t0 = time.perf_counter()
    record_from = t0 + ramp
    stop = record_from + duration
    connect_errors: collections.Counter[str] = collections.Counter()

    async def worker(i: int) -> None:
        await asyncio.sleep(ramp * i / concurrency)
        conn: _Conn | None = None
        while time.perf_counter() < stop:
            try:
                if conn is None or conn.closed:
                    conn = await gen.connect()
            except OSError as exc:
                connect_errors[type(exc).__name__] += 1
                result.lost[f"connect_{type(exc).__name__}"] += 1
                await asyncio.sleep(0.1)
                continue
            record = time.perf_counter() >= record_from
            result.streams_total += 1
            if record:
                result.started += 1
            try:
                outcome = await asyncio.wait_for(conn.start(record), timeout)
            except TimeoutError:
                outcome = "timeout"
            if outcome:
                if record:
                    result.lost[outcome] += 1
                if conn.transport is not None:
                    conn.transport.close()
                conn = None
            elif record:
                result.completed += 1
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return summarize(result, concurrency, duration, ramp, elapsed), result


def _ms(ordered: Sequence[float], q: float) -> float | None:
    return round(percentile(ordered, q) * 1000, 3) if ordered else None


def summarize(result: _Result, concurrency: int, duration: float, ramp: float,
              elapsed: float) -> dict[str, Any]:
    ttft = sorted(result.ttft)
    gaps = sorted(result.gaps)
    return {
        "concurrency": concurrency,
        "duration": duration,
        "ramp": ramp,
        "seconds": round(elapsed, 3),
        "started": result.started,
        "completed": result.completed,
        "lost": sum(result.lost.values()),
        "lost_by": dict(result.lost),
        "streams_total": result.streams_total,
        "events_total": result.events,
        "events_recorded": result.events_recorded,
        "ttft": {"n": len(ttft), "p50_ms": _ms(ttft, 50), "p99_ms": _ms(ttft, 99),
                 "p999_ms": _ms(ttft, 99.9), "max_ms": _ms(ttft, 100)},
        "gap": {"n": len(gaps), "p50_ms": _ms(gaps, 50), "p99_ms": _ms(gaps, 99),
                "p999_ms": _ms(gaps, 99.9), "max_ms": _ms(gaps, 100)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.harness.streamgen",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--body-file", required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--ramp", type=float, default=4.0)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per stream")
    p.add_argument("--marker", required=True, help="the stream's end marker, e.g. [DONE]")
    p.add_argument("--cafile", help="CA bundle to trust (https URLs)")
    p.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    p.add_argument("--samples-out", type=Path)
    args = p.parse_args(argv)
    body = Path(args.body_file).read_bytes()
    headers = {k.strip(): v.strip() for k, v in (h.split(":", 1) for h in args.header)}
    import resource

    import uvloop
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, args.concurrency + 256):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.concurrency * 2 + 256), hard))
    cpu0 = time.process_time()
    out, result = uvloop.run(run(args.url, body, concurrency=args.concurrency,
                                 duration=args.duration, ramp=args.ramp,
                                 marker=args.marker.encode(), timeout=args.timeout,
                                 headers=headers, cafile=args.cafile))
    out["client_cpu_s"] = round(time.process_time() - cpu0, 3)
    if args.samples_out:
        with args.samples_out.open("wb") as fh:
            fh.write(json.dumps({"ttft": len(result.ttft), "gaps": len(result.gaps)}).encode()
                     + b"\n")
            result.ttft.tofile(fh)
            result.gaps.tofile(fh)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
