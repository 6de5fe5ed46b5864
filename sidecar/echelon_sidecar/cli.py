"""`echelon-sidecar`: serve one polling pool (and every group, tier and node) on localhost.

Start-up is kept short: this module imports only argparse, so ``--help``, ``--version`` and a
wrong flag answer at once; the server (aiohttp, pydantic, the engine: nearly all of start-up)
is imported by ``main`` once the flags are good, with the cyclic garbage collector off -- the
imports create some 100,000 long-lived objects, which it would otherwise walk again and again --
and then ``gc.freeze()``: what the imports made moves out of the collector's way without being
walked at all (a collection there found some 2,000 objects of garbage, a few hundred KB, and
took about 40 ms: a tenth of the time to ready). Once the sidecar listens, ``gc.freeze()``
again moves what start-up made out of the way, so later collections only walk objects made
while serving. (A reload frees the first config by reference counting; a cycle in it would
stay: at most one config's worth, once.)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .argtypes import non_negative_float, positive_float, positive_int, tcp_port

if TYPE_CHECKING:
    from .server import ServerSettings

__all__ = ["main"]

_log = logging.getLogger("echelon.sidecar")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="echelon-sidecar",
        description="Serve Echelon's task groups, polling pools and workflow nodes on "
        "localhost: OpenAI-compatible /v1/chat/completions and Anthropic-compatible "
        "/v1/messages on the data port; /healthz, /readyz, /metrics and /v1/status on the "
        "admin port.",
    )
    p.add_argument("--config", required=True, type=Path, metavar="PATH",
                   help="a config file or directory (combined file, groups/ + polling_pools/ "
                   "tree, or Kubernetes manifests); watched and hot-reloaded")
    p.add_argument("--pool", help="the pool served when a request names no model")
    p.add_argument("--host", default="127.0.0.1", help="data port address (default 127.0.0.1: "
                   "the pod's own containers only)")
    p.add_argument("--port", type=tcp_port, default=8080, help="data port (default 8080)")
    p.add_argument("--admin-host", default="0.0.0.0", help="admin port address (probes, "
                   "Prometheus and the operator reach it; default 0.0.0.0)")
    p.add_argument("--admin-port", type=tcp_port, default=9090, help="admin port (default 9090)")
    p.add_argument("--reload-interval", type=non_negative_float, default=2.0, metavar="SECONDS",
                   help="how often the config path is checked for changes (0: never)")
    p.add_argument("--drain-timeout", type=non_negative_float, default=20.0, metavar="SECONDS",
                   help="on SIGTERM, how long in-flight requests may take to finish")
    p.add_argument("--max-body-bytes", type=positive_int, default=8 * 1024 * 1024,
                   help="largest request body accepted (413 beyond)")
    p.add_argument("--request-timeout", type=positive_float, default=None, metavar="SECONDS",
                   help="deadline of a whole request when the caller sends no "
                   "X-Echelon-Timeout (default: bounded by the tiers' timeouts)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", choices=["json", "text"], default=None,
                   help="default: text on a terminal, JSON otherwise")
    p.add_argument("--version", action="version", version=f"echelon-sidecar {__version__}")
    return p


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    from .server import ServerSettings

    return ServerSettings(
        config=args.config, pool=args.pool, host=args.host, port=args.port,
        admin_host=args.admin_host, admin_port=args.admin_port,
        reload_interval=args.reload_interval, drain_timeout=args.drain_timeout,
        max_body_bytes=args.max_body_bytes, request_timeout=args.request_timeout,
    )


async def serve(settings: ServerSettings) -> int:
    from .server import Sidecar

    sidecar = Sidecar(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(sidecar.reload_now()))
    try:
        await sidecar.start()
    except OSError as exc:
        _log.error("cannot listen: %s", exc)
        return 1
    gc.freeze()  # start-up is over: what it made stays out of later collections
    await stop.wait()
    _log.info("stopping: draining in-flight requests (up to %gs)", settings.drain_timeout)
    await sidecar.stop()
    return 0


def _import_server() -> None:
    """Import the server with the garbage collector off, then freeze what the imports made."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        from . import logs, server  # noqa: F401
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _import_server()
    from .logs import setup_logging

    setup_logging(args.log_level, args.log_format)
    if not args.config.exists():
        _log.error("--config %s: no such file or directory", args.config)
        return 2
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return int(asyncio.run(serve(settings_from_args(args))))
    return int(uvloop.run(serve(settings_from_args(args))))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
