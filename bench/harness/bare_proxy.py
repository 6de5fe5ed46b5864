"""The "Python floor": the least an aiohttp proxy can do on the default asyncio loop.

    python -m bench.harness.bare_proxy --port 8081 --upstream http://127.0.0.1:9000

No routing, no limits, no JSON: it reads the request body, forwards it to the same path on
one upstream with one pooled ``ClientSession``, and returns the upstream's status, content
type and body (a stream is relayed as its bytes arrive, ``iter_any()``, so time to first
token stays honest).
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from collections.abc import Sequence

import aiohttp
from aiohttp import web

__all__ = ["main", "make_app"]


def make_app(upstream: str, cafile: str | None = None) -> web.Application:
    app = web.Application()
    upstream = upstream.rstrip("/")

    async def on_startup(app: web.Application) -> None:
        ctx = ssl.create_default_context(cafile=cafile) if cafile else True
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ssl=ctx)
        app["session"] = aiohttp.ClientSession(connector=connector,
                                               timeout=aiohttp.ClientTimeout(total=60))

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        session: aiohttp.ClientSession = request.app["session"]
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        for name in ("Authorization", "x-api-key", "anthropic-version", "x-goog-api-key"):
            value = request.headers.get(name)
            if value:
                headers[name] = value
        async with session.post(upstream + request.path_qs, data=body,
                                headers=headers) as upstream_response:
            ctype = upstream_response.content_type
            if ctype != "text/event-stream":
                return web.Response(status=upstream_response.status,
                                    body=await upstream_response.read(), content_type=ctype)
            response = web.StreamResponse(status=upstream_response.status,
                                          headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            async for chunk in upstream_response.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/{tail:.*}", forward)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.harness.bare_proxy",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:9000")
    p.add_argument("--cafile", help="CA bundle to trust for an https upstream")
    p.add_argument("--uvloop", action="store_true", help="run on uvloop (the benchmark's "
                   "bare arm uses the default asyncio loop: the floor without uvloop)")
    args = p.parse_args(argv)
    loop_factory = None
    if args.uvloop:
        import uvloop
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        web.run_app(
            make_app(args.upstream, args.cafile),
            host=args.host,
            port=args.port,
            access_log=None,
            print=None,
            handle_signals=True,
            loop=runner.get_loop(),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
