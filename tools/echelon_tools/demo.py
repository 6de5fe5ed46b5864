"""`echelon demo`: watch per-group fallback, circuit breakers and pools work, live.

It starts fake OpenAI / Anthropic / Gemini upstreams, a sidecar on the example configs
(``configs/llms``, with every model pointed at the fakes and shorter breaker timings so that
recovery fits in a demo), and sends a burst of requests with the official ``openai`` SDK:

1. ``anthropic-claude-3-opus`` (thinking_group.echelon1) answers 503, ``gemini-pro`` fails half
   of the time, and ``openai-gpt4-turbo`` is slow: requests fall back tier by tier and the
   failing instances' circuits open;
2. two thirds in, the faults are cleared: circuits go half-open and close again.

The terminal shows which tier served each request, the attempts it took, and the circuits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

__all__ = ["add_arguments", "run"]

_DEMO_KEY = "ECHELON_DEMO_API_KEY"
_TARGETS = ["thinking_group", "thinking_group", "plan_group", "thinking_pool",
            "fast_response_node", "fast_small_group.translation"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=90, help="requests to send (default 90)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (4)")
    parser.add_argument("--config", type=Path, default=None,
                        help="config tree to demo (default: the repository's configs/llms)")
    parser.add_argument("--no-live", action="store_true",
                        help="plain line-by-line output instead of the live view")
    parser.add_argument("--seed", type=int, default=7, help="seed of the fake faults (7)")


def _default_config() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "configs" / "llms"
        if candidate.is_dir():
            return candidate
    raise SystemExit("echelon demo: cannot find configs/llms; pass --config PATH")


def build_demo_config(source: Path, urls: dict[str, str]) -> dict[str, Any]:
    """The example config with every model on the fakes and demo-sized breaker timings."""
    from echelon_sidecar.config import load_config

    cfg = load_config(source).config
    data = cfg.model_dump(mode="json", exclude_none=True, exclude_unset=True)
    for entry in data["models"].values():
        entry["base_url"] = urls[entry["provider"]]
        entry.pop("api_key_secret", None)
        entry.pop("api_key_file", None)
        entry["api_key_env"] = _DEMO_KEY
    for group in data["task_groups"].values():
        block = group.setdefault("fallback_config", {})
        block["retry_delay"] = 0.02
        block["max_attempts"] = max(block.get("max_attempts", 3), 4)
        block["circuit_breaker"] = {"failure_threshold": 3, "recovery_time": 2.0,
                                    "half_open_requests": 1, "recovery_backoff": 1.0}
        for tier in group["echelons"].values():
            tier["timeout"] = 5
    for pool in data["polling_pools"].values():
        pool["recovery_time"] = 2.0
        pool.pop("health_check_interval", None)
    return data


@dataclass
class Row:
    number: int
    target: str
    served_by: str
    tier: str
    attempts: int
    millis: float
    status: str
    reason: str = ""


class DemoState:
    def __init__(self, total: int) -> None:
        self.total = total
        self.rows: list[Row] = []
        self.events: list[str] = []
        self.circuits: list[dict[str, Any]] = []
        self.all_circuits: list[dict[str, Any]] = []
        self.tiers: Counter[str] = Counter()
        self.failures = 0
        self.fallbacks = 0
        self.started = time.monotonic()

    def add(self, row: Row) -> None:
        self.rows.append(row)
        if row.status == "ok":
            self.tiers[row.tier] += 1
            if row.attempts > 1:
                self.fallbacks += 1
        else:
            self.failures += 1


async def _one(client: Any, number: int, target: str, state: DemoState) -> None:
    import openai

    started = time.perf_counter()
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=target, messages=[{"role": "user", "content": f"demo request {number}"}])
        raw.parse()
        row = Row(number, target, raw.headers.get("x-echelon-served-by", ""),
                  raw.headers.get("x-echelon-tier", ""),
                  int(raw.headers.get("x-echelon-attempts", "1")),
                  (time.perf_counter() - started) * 1000, "ok")
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        attempts = len([a for a in body.get("attempts", []) if a.get("call")])
        inner = body.get("error")
        error: dict[str, Any] = inner if isinstance(inner, dict) else body
        text = str(error.get("message") or exc.message)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        reason = "; ".join(lines[:1] + lines[1:][-1:])  # what failed, and the last attempt
        row = Row(number, target, "-", "-", attempts, (time.perf_counter() - started) * 1000,
                  f"HTTP {exc.status_code}", reason)
    state.add(row)


async def _watch_circuits(admin_url: str, state: DemoState, stop: asyncio.Event) -> None:
    import aiohttp

    known: dict[tuple[str, str], str] = {}
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            async with http.get(f"{admin_url}/v1/status") as response:
                doc = orjson.loads(await response.read())
            state.all_circuits = doc["instances"]
            state.circuits = [i for i in doc["instances"]
                              if i["group"] == "thinking_group" or i["state"] != "closed"]
            for item in doc["instances"]:
                key = (item["group"], item["model"])
                old = known.get(key, "closed")
                if item["state"] != old:
                    state.events.append(f"{time.monotonic() - state.started:5.1f}s  circuit "
                                        f"{item['group']}/{item['model']}: {old} -> "
                                        f"{item['state']}")
                known[key] = item["state"]
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass


def _render(state: DemoState, progress: Any) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    requests = Table(title="latest requests", expand=True)
    for column in ("#", "target", "served by", "tier", "calls", "ms", "result"):
        requests.add_column(column)
    for row in state.rows[-12:]:
        style = "green" if row.status == "ok" and row.attempts == 1 else (
            "yellow" if row.status == "ok" else "red")
        requests.add_row(str(row.number), row.target, row.served_by, row.tier,
                         str(row.attempts), f"{row.millis:.0f}", row.status, style=style)
    circuits = Table(title="circuits (thinking_group, and any not closed)", expand=True)
    for column in ("group", "model", "state", "failures", "last error"):
        circuits.add_column(column)
    colours = {"closed": "green", "open": "red", "half_open": "yellow"}
    for item in state.circuits:
        circuits.add_row(item["group"], item["model"], item["state"],
                         str(item["consecutive_failures"]), item["last_error"] or "",
                         style=colours.get(item["state"], ""))
    events = Panel("\n".join(state.events[-8:]) or "(none yet)", title="events")
    return Group(progress, requests, circuits, events)


async def run_demo(args: argparse.Namespace) -> int:
    import openai
    from rich.console import Console
    from rich.live import Live
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from echelon_sidecar.logs import setup_logging
    from echelon_sidecar.server import ServerSettings, Sidecar

    from .fake_provider import FakeProvider, FakeSettings

    setup_logging("error", "text")
    console = Console()
    source = args.config or _default_config()
    os.environ.setdefault(_DEMO_KEY, "demo-key-not-a-secret")
    state = DemoState(args.requests)
    rng = random.Random(args.seed)
    async with FakeProvider(FakeSettings(seed=args.seed, latency_ms=20)) as fake:
        urls = {"openai": fake.openai_base_url, "openai_compatible": fake.openai_base_url,
                "anthropic": fake.anthropic_base_url, "gemini": fake.gemini_base_url}
        workdir = Path(tempfile.mkdtemp(prefix="echelon-demo-"))
        config = build_demo_config(source, urls)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        fake.set_fault("claude-3-opus-20240229", "503")
        fake.set_fault("gemini-1.5-pro", "rate:0.5:500")
        fake.set_fault("gpt-4-turbo", "latency:250")
        settings = ServerSettings(config=workdir, port=0, admin_port=0, admin_host="127.0.0.1",
                                  reload_interval=0)
        async with Sidecar(settings) as sidecar:
            console.print(f"[bold]Echelon demo[/bold]: sidecar on {sidecar.data_url}/v1 "
                          f"(admin {sidecar.admin_url}), config from {source}, fake upstreams on "
                          f"{fake.base_url}")
            console.print("faults: anthropic-claude-3-opus 503, gemini-pro fails 50%, "
                          "openai-gpt4-turbo +250 ms; cleared after two thirds of the requests")
            client = openai.AsyncOpenAI(base_url=f"{sidecar.data_url}/v1", api_key="unused",
                                        max_retries=0, timeout=30)
            progress = Progress(TextColumn("requests"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("fallbacks {task.fields[fb]}  failed "
                                           "{task.fields[failed]}"))
            task = progress.add_task("requests", total=args.requests, fb=0, failed=0)
            stop = asyncio.Event()
            watcher = asyncio.create_task(_watch_circuits(sidecar.admin_url, state, stop))
            queue: asyncio.Queue[int] = asyncio.Queue()
            for number in range(1, args.requests + 1):
                queue.put_nowait(number)
            healed = False

            async def worker() -> None:
                nonlocal healed
                while True:
                    try:
                        number = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    if not healed and number > args.requests * 2 // 3:
                        healed = True
                        fake.clear_faults()
                        state.events.append(f"{time.monotonic() - state.started:5.1f}s  faults "
                                            "cleared: upstreams healthy again")
                        await asyncio.sleep(2.2)  # let open circuits reach their recovery time
                    await _one(client, number, rng.choice(_TARGETS), state)
                    progress.update(task, advance=1, fb=state.fallbacks, failed=state.failures)
                    if args.no_live:
                        row = state.rows[-1]
                        console.print(f"#{row.number:3d} {row.target:30s} -> {row.tier:32s} "
                                      f"{row.served_by:26s} calls={row.attempts} "
                                      f"{row.millis:6.0f} ms {row.status}", highlight=False,
                                      soft_wrap=True)

            workers = [worker() for _ in range(max(1, args.concurrency))]
            if args.no_live:
                await asyncio.gather(*workers)
            else:
                with Live(_render(state, progress), console=console, refresh_per_second=8) as live:
                    runner = asyncio.gather(*workers)
                    while not runner.done():
                        live.update(_render(state, progress))
                        await asyncio.sleep(0.12)
                    await runner
                    live.update(_render(state, progress))
            # circuits still open or half-open only close when a request probes them: after
            # their recovery time, one more request per group shows them recover
            await asyncio.sleep(2.2)
            recovering = sorted({i["group"] for i in state.all_circuits
                                 if i["state"] != "closed"})
            for number, group in enumerate(recovering, start=args.requests + 1):
                state.total += 1
                await _one(client, number, group, state)
                if args.no_live:
                    row = state.rows[-1]
                    console.print(f"#{row.number:3d} {row.target:30s} -> {row.tier:32s} "
                                  f"{row.served_by:26s} calls={row.attempts} "
                                  f"{row.millis:6.0f} ms {row.status} (recovery probe)",
                                  highlight=False, soft_wrap=True)
            await asyncio.sleep(0.5)
            stop.set()
            await watcher
            await client.close()
    _summary(console, state, args)
    return 0 if state.tiers else 1


def _summary(console: Any, state: DemoState, args: argparse.Namespace) -> None:
    from rich.table import Table

    served = sum(state.tiers.values())
    console.print()
    table = Table(title="summary: requests served per tier")
    table.add_column("tier")
    table.add_column("requests", justify="right")
    for tier, count in state.tiers.most_common():
        table.add_row(tier, str(count))
    console.print(table)
    rate = 100.0 * (state.fallbacks / served) if served else 0.0
    console.print(f"served {served}/{state.total}, after a fallback {state.fallbacks} "
                  f"({rate:.0f}%), failed {state.failures}; "
                  f"{time.monotonic() - state.started:.1f} s")
    failed = [row for row in state.rows if row.status != "ok"]
    for row in failed[:5]:
        console.print(f"  failed #{row.number} ({row.target}, {row.status}): {row.reason}",
                      highlight=False)
    if len(failed) > 5:
        console.print(f"  ... and {len(failed) - 5} more failed", highlight=False)
    for event in state.events:
        console.print("  " + event, highlight=False)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(run_demo(args))
