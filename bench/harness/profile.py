"""Profile the sidecar's hot path with cProfile under load (py-spy needs no install here).

    python -m bench.harness.profile [--seconds 8] [--concurrency 16] [--stream] [--top 40]
    python -m bench.harness.profile --paced openai|anthropic_to_openai|... [--concurrency 200]

Runs the sidecar in this process (uvloop, as `echelon-sidecar` does) pinned to --server-core,
the fake upstream and the load (wrk, or the harness's generator for streams) on
--client-core, then prints the functions by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import yaml

from .arms import (
    UPSTREAM_KEY,
    UPSTREAM_KEY_ENV,
    Arm,
    echelon_config,
    start_paced,
    start_upstream,
)
from .procs import free_port
from .run import Driver, Plan, _body
from .wrk import ensure_wrk

__all__ = ["main"]


async def _serve(config: Path, port: int, ready: threading.Event, stop: asyncio.Event,
                 loop_box: list[asyncio.AbstractEventLoop]) -> None:
    from echelon_sidecar.server import ServerSettings, Sidecar
    loop_box.append(asyncio.get_running_loop())
    settings = ServerSettings(config=config, port=port, admin_port=0, reload_interval=0,
                              admin_host="127.0.0.1")
    async with Sidecar(settings):
        ready.set()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.harness.profile",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--stream", action="store_true")
    p.add_argument("--model", default="bench")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--client-core", type=int, default=1)
    p.add_argument("--save", type=Path, help="also write the raw pstats here")
    p.add_argument("--paced", help="profile paced streams of this kind (streams.KINDS) from "
                   "the paced upstream instead, --concurrency of them for --seconds")
    p.add_argument("--chunks", type=int, default=200, help="--paced: chunks per stream")
    args = p.parse_args(argv)
    os.environ[UPSTREAM_KEY_ENV] = UPSTREAM_KEY
    with tempfile.TemporaryDirectory(prefix="echelon-profile.") as tmp:
        workdir = Path(tmp)
        upstream = start_upstream(args.client_core, workdir, 5)
        paced = start_paced(args.client_core, workdir, args.chunks, 50.0) if args.paced else None
        try:
            config = workdir / "echelon.yaml"
            config.write_text(yaml.safe_dump(echelon_config(upstream, paced)))
            port = free_port()
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, {args.server_core})
            import uvloop
            ready, stop_box, loop_box = threading.Event(), [], []  # type: ignore[var-annotated]
            profiler = cProfile.Profile()

            def server() -> None:
                async def go() -> None:
                    stop = asyncio.Event()
                    stop_box.append(stop)
                    await _serve(config, port, ready, stop, loop_box)
                profiler.enable()
                uvloop.run(go())
                profiler.disable()

            thread = threading.Thread(target=server)
            thread.start()
            ready.wait(30)
            plan = Plan(mode="profile", arms=["echelon"], duration=args.seconds, warmup=0.5,
                        concurrency=[], stream_concurrency=[], slow_concurrency=[], rates=[],
                        failover_duration=0, client_core=args.client_core,
                        wrk=None if args.stream else ensure_wrk(install=False))
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            if paced is not None:
                from .streams import KINDS, StreamDriver
                plan.paced_duration, plan.paced_ramp = args.seconds, 4.0
                plan.paced_stream_timeout = 60.0
                arm = Arm("echelon", url, None)
                sdriver = StreamDriver(plan, workdir, paced)
                r = sdriver.point(KINDS[args.paced], arm, args.concurrency)
                sys.stderr.write(json.dumps(r) + "\n")
                result = {"rps": r["completed"], "p50_ms": (r["gap"] or {}).get("p50_ms"),
                          "p99_ms": (r["gap"] or {}).get("p99_ms"), "error_count": r["lost"]}
            else:
                driver = Driver(plan, workdir)
                result = driver.closed(url, _body(args.model, args.stream), args.concurrency,
                                       stream=args.stream)
            loop_box[0].call_soon_threadsafe(stop_box[0].set)
            thread.join(30)
        finally:
            upstream.proc.stop()
            if paced is not None:
                paced.proc.stop()
    sys.stdout.write(f"load: {result['rps']} req/s, p50 {result['p50_ms']} ms, "
                     f"p99 {result['p99_ms']} ms, errors {result['error_count']} "
                     "(under the profiler: slower than without)\n")
    stats = pstats.Stats(profiler)
    if args.save:
        stats.dump_stats(str(args.save))
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
