"""`echelon fake-provider` (also `python -m echelon_tools.fake_provider`).

The `echelon` CLI mounts this with `add_arguments(subparser)` and `run(args)`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from echelon_sidecar.argtypes import non_negative_float, non_negative_int, positive_int, tcp_port

from .app import count_connections, create_app
from .faults import Fault, FaultSpecError, parse_fault_arg
from .settings import FakeSettings

__all__ = ["add_arguments", "main", "run"]

DESCRIPTION = """\
Fake LLM upstreams speaking the real wire formats: OpenAI (POST /v1/chat/completions,
GET /v1/models), Anthropic (POST /v1/messages) and Gemini
(POST /v1beta/models/MODEL:generateContent and :streamGenerateContent), embeddings (OpenAI
POST /v1/embeddings, Gemini :embedContent and :batchEmbedContents), with fault
injection set from flags or at runtime over HTTP: /_fake/faults, /_fake/stats,
/_fake/reset, /_fake/settings, /_fake/requests."""

FAULT_HELP = """\
fault specs (--fault MODEL=SPEC, repeatable; MODEL is the request's model, or * for all others):
  SPEC := [rate:P:][first:K:]FAULT[:OPTION...]
  FAULT:
    CODE            answer HTTP CODE (400-599) in the provider's error shape (429, 503, 529, ...)
    latency:MS      wait MS milliseconds, then answer normally
    hang            accept the request and never answer (until the client goes away)
    hang:headers    send 200 headers, then stall the body
    cut:N           streams: close the connection after N events, without the terminator;
                    non-streams: close half-way through the body
    malformed       200 with a body that is not valid JSON
    html            200 with Content-Type text/html (a proxy's error page)
    oversize:MB     200 with a reply of MB megabytes
    reset           close the connection abruptly (TCP RST), no response
    ok              no fault (exempt a model from a * rule)
  OPTION: retry-after=SECONDS (status codes), latency=MS (delay before the fault),
          message=TEXT (status codes; must come last)
  rate:P   apply with probability P (0..1) from the --seed RNG; first:K  only the first K requests
examples:
  --fault gpt-4=503  --fault gpt-4=429:retry-after=2  --fault '*=rate:0.2:500'
  --fault slow-model=latency:2000  --fault m=first:3:529  --fault m=cut:3  --fault m=hang
"""


def _fault_arg(text: str) -> tuple[str, Fault]:
    try:
        return parse_fault_arg(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _dimensions_arg(text: str) -> tuple[str, int]:
    model, sep, value = text.partition("=")
    if not sep or not model.strip() or not value.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected MODEL=N, e.g. text-embedding-3-small=1536; "
                                         f"got {text!r}")
    return model.strip(), int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `fake-provider` options (and the fault grammar as the help epilog) to `parser`."""
    parser.description = parser.description or DESCRIPTION
    parser.epilog = FAULT_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=tcp_port, default=0, help="port to bind; 0 lets the OS choose (default)"
    )
    parser.add_argument(
        "--port-file", type=Path, help="write the bound port to this file once listening"
    )
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate "
                        "chain (with --tls-key); /_fake/stats counts connections (handshakes)")
    parser.add_argument("--tls-key", type=Path, help="the PEM private key of --tls-cert")
    parser.add_argument(
        "--api-key", help="require this API key (each provider's own header); default: any"
    )
    parser.add_argument(
        "--latency-ms", type=non_negative_float, default=0.0, help="added before every answer"
    )
    parser.add_argument(
        "--stream-chunks",
        type=positive_int,
        default=5,
        help="content chunks per stream (default 5)",
    )
    parser.add_argument(
        "--chunk-delay-ms", type=non_negative_float, default=0.0, help="pause between stream chunks"
    )
    parser.add_argument("--reply", help="fixed reply text instead of echoing the last user message")
    parser.add_argument("--seed", type=int, help="seed of the RNG behind rate:P faults")
    parser.add_argument(
        "--record-requests",
        type=non_negative_int,
        default=50,
        help="requests kept per model for /_fake/requests",
    )
    parser.add_argument("--models", help="comma-separated model ids listed by GET /v1/models")
    parser.add_argument(
        "--embedding-dimensions", action="append", default=[], type=_dimensions_arg,
        metavar="MODEL=N", help="vector length of an embedding model (repeatable; default: "
        "the real model's, else 256)",
    )
    parser.add_argument(
        "--fault", action="append", default=[], type=_fault_arg, metavar="MODEL=SPEC",
        help="inject a fault for MODEL (or *); repeatable; grammar below",
    )


def settings_from_args(args: argparse.Namespace) -> FakeSettings:
    faults: dict[str, Fault] = {}
    for item in args.fault or ():
        model, fault = parse_fault_arg(item) if isinstance(item, str) else item
        faults[model] = fault
    settings = FakeSettings(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        latency_ms=args.latency_ms,
        stream_chunks=args.stream_chunks,
        chunk_delay_ms=args.chunk_delay_ms,
        reply=args.reply,
        seed=args.seed,
        record_requests=args.record_requests,
        faults=faults,
        embedding_dimensions=dict(getattr(args, "embedding_dimensions", None) or ()),
        tls_cert=str(args.tls_cert) if getattr(args, "tls_cert", None) else None,
        tls_key=str(args.tls_key) if getattr(args, "tls_key", None) else None,
    )
    if getattr(args, "models", None):
        settings.models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    return settings


def _write_port_file(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{port}\n")
    os.replace(tmp, path)


def _remove_port_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def serve_forever(settings: FakeSettings, port_file: Path | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(create_app(settings), handler_cancellation=True, access_log=None,
                           shutdown_timeout=5.0)
    await runner.setup()
    count_connections(runner)
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True,
                           ssl_context=settings.ssl_context())
        await site.start()
        port = next(int(a[1]) for a in runner.addresses if isinstance(a, tuple))
        settings.port = port
        if port_file is not None:
            _write_port_file(port_file, port)
        faults = ", ".join(f"{m}={f.spec()}" for m, f in settings.faults.items()) or "none"
        scheme = "https" if settings.tls_cert else "http"
        print(f"fake-provider listening on {scheme}://{settings.host}:{port} (faults: {faults})",
              flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
        if port_file is not None:
            _remove_port_file(port_file)


def run(args: argparse.Namespace) -> int:
    """Run the fake provider until SIGTERM/SIGINT. Returns the process exit code."""
    try:
        settings = settings_from_args(args)
    except (FaultSpecError, ValueError) as exc:
        print(f"echelon fake-provider: error: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency on Linux
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve_forever(settings, args.port_file))
    except OSError as exc:
        print(f"echelon fake-provider: error: cannot listen on {settings.host}:{settings.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="echelon fake-provider")
    add_arguments(parser)
    return run(parser.parse_args(argv))
