"""The "streaming floor": the least an aiohttp proxy on uvloop does to relay a stream.

    python -m bench.harness.stream_proxy --port 8082 --upstream http://127.0.0.1:9000
                                         [--cafile CA]

Like the bare proxy (``bare_proxy.py``), no routing, no limits, no JSON: the request goes to
the same path (and query) on one upstream through one pooled ``ClientSession``; but it runs
on uvloop, the loop Echelon's sidecar runs on, and relays an event stream chunk by chunk as
the upstream framed it (``iter_chunks()``: one write per HTTP chunk the upstream sent, so an
SSE event is never held back waiting for the next). What Echelon's stream relay costs on top
of this is its own work: parsing the events, checking them, translating between formats.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Sequence

import aiohttp
from aiohttp import web

__all__ = ["main", "make_app"]

FORWARDED = ("Content-Type", "Authorization", "x-api-key", "anthropic-version",
             "x-goog-api-key", "Accept")


def make_app(upstream: str, cafile: str | None = None) -> web.Application:
    app = web.Application()
    upstream = upstream.rstrip("/")

    async def on_startup(app: web.Application) -> None:
        ctx = ssl.create_default_context(cafile=cafile) if cafile else None
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ssl=ctx or True)
        app["session"] = aiohttp.ClientSession(connector=connector,
                                               timeout=aiohttp.ClientTimeout(total=300),
                                               auto_decompress=False)

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        session: aiohttp.ClientSession = request.app["session"]
        headers = {k: v for k in FORWARDED if (v := request.headers.get(k)) is not None}
        async with session.post(upstream + request.path_qs, data=body,
                                headers=headers) as upstream_response:
            ctype = upstream_response.content_type
            if ctype != "text/event-stream":
                return web.Response(status=upstream_response.status,
                                    body=await upstream_response.read(), content_type=ctype)
            response = web.StreamResponse(status=upstream_response.status,
                                          headers={"Content-Type": "text/event-stream",
                                                   "Cache-Control": "no-cache"})
            await response.prepare(request)
            async for chunk, _ in upstream_response.content.iter_chunks():
                await response.write(chunk)
            await response.write_eof()
            return response

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/{tail:.*}", forward)
    app.router.add_get("/", lambda _: web.Response(text="ok"))
    return app


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.harness.stream_proxy",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:9000")
    p.add_argument("--cafile", help="CA bundle to trust for an https upstream")
    args = p.parse_args(argv)
    import uvloop
    uvloop.run(_serve(make_app(args.upstream, args.cafile), args.host, args.port))
    return 0


async def _serve(app: web.Application, host: str, port: int) -> None:
    import asyncio
    import signal
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=4096).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    sys.exit(main())
