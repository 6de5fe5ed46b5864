"""The soak: steady mixed traffic through one sidecar while upstream faults flip on and off and
the config reloads every few seconds; then the bookkeeping that proves nothing was lost.

    python -m tests.reliability.soak --seconds 600        # the full mode (10 minutes)
    python -m tests.reliability.soak --help

Everything runs in this process on loopback (a fake upstream, the sidecar, the clients) and
stops by itself. Traffic is open-loop at ``--rate`` requests per second: OpenAI and Anthropic
callers, streamed and not, to a fallback chain, a polling pool and a workflow node. After the
run :meth:`SoakReport.problems` lists what went wrong (empty: it held):

- every request got exactly one well-formed answer (served, a clean error, or a stream that
  ended with one error event) before its deadline: none lost, none hung;
- the upstream never saw more than the limits allow: a tier's ``concurrency_limit`` (the
  fake's most-in-flight for that model), a tier's ``rpm_limit`` (arrival timestamps in any
  60 s window) and a pool's token bucket (the bucket's own admissions against size + refill x
  time, on the sidecar's clock: arrival times at the upstream carry the event loop's delays,
  which on a busy machine bunch up calls the bucket spaced out; and the upstream saw no more
  of the pool's calls than were admitted);
- every config written took effect (the engine's version changed), each reload in turn;
- once the faults are cleared, every circuit closes and every pool instance is back in
  rotation (breakers converge);
- memory (RSS) after the warm-up stays within a bound, and file descriptors and asyncio tasks
  return to their count before the traffic (no leak).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from echelon_sidecar.engine.limiters import TokenBucket
from echelon_sidecar.server import ServerSettings, Sidecar
from echelon_tools.fake_provider import FakeProvider, FakeSettings

from .exchange import Seen, exchange

__all__ = ["SoakReport", "main", "run_soak"]

API_KEY_ENV = "ECHELON_SOAK_UPSTREAM_KEY"
API_KEY = "sk-echelon-soak-5a4b3c2d1e0f"
CONCURRENCY_LIMIT = 3        # tier g.echelon1 (model a)
RPM_LIMIT = 60               # tier g.echelon3 (model d)
BUCKET, REFILL = 10, 8.0     # pool p's token bucket (models pa, pb; one call per request)
RECOVERY = 1.0               # breakers and pool health
DEADLINE = 20.0              # a client gives up after this: an answer later is a hang
LEAK_SLACK = 16              # fds / tasks more than after the warm-up that still is no leak
FAULTY = ("a", "b", "c", "d", "e", "pa", "pb")
FAULTS = ("503", "500", "529", "429:retry-after=1", "429", "reset", "cut:2", "malformed",
          "html", "rate:0.5:503")
SLOW_FAULT = ("c", "latency:1500")  # longer than c's tier timeout (never on a limited model)


def _model(fake: FakeProvider, provider: str, upstream: str) -> dict[str, Any]:
    base = fake.openai_base_url if provider == "openai" else fake.base_url
    return {"provider": provider, "model": upstream, "base_url": base, "api_key_env": API_KEY_ENV}


def soak_config(fake: FakeProvider, variant: int) -> dict[str, Any]:
    """The soak's config; ``variant`` changes only what no limiter depends on (a description
    and a retry delay), so every reload is a real reload that keeps the limits' state."""
    breaker = {"failure_threshold": 3, "recovery_time": RECOVERY,
               "max_recovery_time": 2 * RECOVERY, "half_open_requests": 1}
    providers = {"a": "openai", "b": "openai", "c": "anthropic", "d": "openai", "e": "gemini",
                 "pa": "openai", "pb": "anthropic"}
    return {
        "task_groups": {
            "g": {
                "description": f"soak variant {variant}",
                "echelon1": {"models": ["a"], "priority": 1, "timeout": 5,
                             "concurrency_limit": CONCURRENCY_LIMIT},
                "echelon2": {"models": ["b", "c"], "priority": 2, "timeout": 1},
                "echelon3": {"models": ["d"], "priority": 3, "timeout": 2,
                             "rpm_limit": RPM_LIMIT},
                # model_rotate: each of b and c is tried first by some requests, so that every
                # breaker gets a probe once the faults clear (a half-open breaker closes only
                # when a request reaches it)
                "fallback_config": {"strategy": "model_rotate", "max_attempts": 4,
                                    "circuit_breaker": breaker},
            },
            "h": {
                "echelon1": {"models": ["e"], "timeout": 2},
                "fallback_config": {"strategy": "task_group_switch",
                                    "fallback_groups": ["g.echelon2"],
                                    "retry_delay": 0.01 * variant, "circuit_breaker": breaker},
            },
            "pg": {"echelon1": {"models": ["pa", "pb"], "timeout": 2},
                   "fallback_config": {"circuit_breaker": breaker}},
        },
        "polling_pools": {"p": {
            "task_groups": ["pg"], "rotation_strategy": "round_robin",
            "fallback_strategy": "instance_rotation", "max_instance_attempts": 1,
            "failure_threshold": 3, "recovery_time": RECOVERY,
            "rate_limiting": {"algorithm": "token_bucket", "bucket_size": BUCKET,
                              "refill_rate": REFILL},
        }},
        "workflow_nodes": {"n": {"llm_group": "h",
                                 "concurrency_config": {"limit": 4, "queue_size": 8}}},
        "models": {mid: _model(fake, prov, f"up-{mid}") for mid, prov in providers.items()},
    }


# -- the report ----------------------------------------------------------------------------------

@dataclass
class SoakReport:
    seconds: float
    rate: float
    sent: int = 0
    answered: Counter[str] = field(default_factory=Counter)   # served | error | broken
    statuses: Counter[int] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)              # hung, malformed, exceptions
    reloads: int = 0
    reload_attempts: int = 0
    fault_flips: int = 0
    transitions: int = 0
    max_in_flight_a: int = 0
    max_rpm_d: int = 0
    bucket_excess: float = 0.0
    bucket_admitted: int = 0
    bucket_arrivals: int = 0
    unconverged: list[str] = field(default_factory=list)
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0
    fds_before: int = 0
    fds_after: int = 0
    tasks_before: int = 0
    tasks_after: int = 0
    rss_bound_mb: float = 48.0
    slowest: float = 0.0

    def problems(self) -> list[str]:
        out = []
        if self.lost:
            out.append(f"{len(self.lost)} request(s) lost: {self.lost[:5]}")
        if sum(self.answered.values()) != self.sent:
            out.append(f"sent {self.sent}, answered {sum(self.answered.values())}")
        if self.answered["served"] < self.sent // 3:
            out.append(f"only {self.answered['served']} of {self.sent} served")
        if self.max_in_flight_a > CONCURRENCY_LIMIT:
            out.append(f"upstream a saw {self.max_in_flight_a} in flight "
                       f"(limit {CONCURRENCY_LIMIT})")
        if self.max_rpm_d > RPM_LIMIT:
            out.append(f"upstream d saw {self.max_rpm_d} calls in 60 s (rpm_limit {RPM_LIMIT})")
        if self.bucket_excess > 1e-6:
            out.append(f"pool p's token bucket admitted {self.bucket_excess:.2f} calls more "
                       f"than its size and refill allow")
        if self.bucket_arrivals > self.bucket_admitted:
            out.append(f"pool p's upstreams saw {self.bucket_arrivals} calls; its token bucket "
                       f"admitted {self.bucket_admitted}")
        if self.unconverged:
            out.append(f"not recovered after the faults cleared: {self.unconverged}")
        if self.reloads < self.reload_attempts or self.reload_attempts < min(3, self.seconds / 5):
            out.append(f"{self.reloads} of {self.reload_attempts} config writes took effect")
        if not self.transitions:
            out.append("no circuit ever opened: the faults did not bite")
        if self.rss_end_mb - self.rss_warm_mb > self.rss_bound_mb:
            out.append(f"RSS grew {self.rss_end_mb - self.rss_warm_mb:.1f} MB after the warm-up "
                       f"(bound {self.rss_bound_mb} MB)")
        if self.fds_after > self.fds_before + LEAK_SLACK:
            out.append(f"file descriptors {self.fds_before} -> {self.fds_after}")
        if self.tasks_after > self.tasks_before + LEAK_SLACK:
            out.append(f"asyncio tasks {self.tasks_before} -> {self.tasks_after}")
        return out

    def to_json(self) -> dict[str, Any]:
        data = {k: (dict(v) if isinstance(v, Counter) else v) for k, v in vars(self).items()}
        data["lost"] = self.lost[:20]
        data["problems"] = self.problems()
        return data


# -- upstream-side checks ----------------------------------------------------------------------

def max_in_window(times: list[float], window: float) -> int:
    """Most timestamps in any half-open window of ``window`` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def bucket_excess(times: list[float], size: float, refill: float) -> float:
    """How far arrivals exceed a token bucket: max over i <= j of
    (j - i + 1) - (size + refill * (t_j - t_i)); <= 0 when they conform."""
    worst, low = float("-inf"), float("inf")
    for index, t in enumerate(sorted(times)):
        low = min(low, index - refill * t)          # the best start i for this end j
        worst = max(worst, (index - refill * t) - low + 1 - size)
    return max(0.0, worst)


# -- the run -------------------------------------------------------------------------------------

class _Soak:
    def __init__(self, seconds: float, rate: float, folder: Path, seed: int) -> None:
        self.report = SoakReport(seconds, rate)
        self.seconds, self.rate = seconds, rate
        self.folder = folder
        self.rng = random.Random(seed)
        self.stop = asyncio.Event()
        self.admitted: list[float] = []   # pool p's token bucket: the times it admitted

    async def one(self, http: aiohttp.ClientSession, url: str, index: int,
                  target: str | None = None) -> None:
        if target is None:
            target = ("g", "g", "p", "n", "g.echelon3", "p")[index % 6]
        stream = index % 2 == 1
        caller = "anthropic" if index % 5 == 0 else "openai"
        try:
            seen: Seen = await exchange(http, url, target, stream=stream, caller=caller,
                                        deadline=DEADLINE)
        except AssertionError as exc:
            self.report.lost.append(f"#{index} {target} stream={stream} {caller}: {exc}"[:300])
            self.report.answered["lost"] += 1
            return
        except Exception as exc:  # a connection error is a lost request too
            self.report.lost.append(f"#{index} {target}: {type(exc).__name__}: {exc}"[:300])
            self.report.answered["lost"] += 1
            return
        self.report.answered[seen.kind] += 1
        self.report.statuses[seen.status] += 1
        self.report.slowest = max(self.report.slowest, seen.elapsed)

    async def traffic(self, http: aiohttp.ClientSession, url: str, until: float) -> None:
        pending: set[asyncio.Task[None]] = set()
        period = 1.0 / self.rate
        start = time.monotonic()
        index = 0
        while (now := time.monotonic()) < until:
            due = start + index * period
            if due > now:
                await asyncio.sleep(due - now)
                continue
            task = asyncio.create_task(self.one(http, url, index))
            pending.add(task)
            task.add_done_callback(pending.discard)
            index += 1
            self.report.sent += 1
        if pending:
            await asyncio.wait(pending, timeout=DEADLINE + 5)
        for task in pending:  # none should be left: each exchange has its own deadline
            task.cancel()

    async def flip_faults(self, fake: FakeProvider, until: float) -> None:
        while time.monotonic() < until:
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
            model = self.rng.choice(FAULTY)
            if self.rng.random() < 0.4:
                fake.clear_faults(f"up-{model}")
            elif self.rng.random() < 0.15:
                fake.set_fault(f"up-{SLOW_FAULT[0]}", SLOW_FAULT[1])
            else:
                fake.set_fault(f"up-{model}", self.rng.choice(FAULTS))
            self.report.fault_flips += 1
        fake.clear_faults()

    async def reload(self, sidecar: Sidecar, fake: FakeProvider, path: Path,
                     until: float) -> None:
        variant = 0
        while time.monotonic() < until - 1:
            await asyncio.sleep(2.5)
            variant = 1 - variant
            before = sidecar.engine.version if sidecar.engine else None
            _write(path, soak_config(fake, variant))
            self.report.reload_attempts += 1
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the watcher picks it up
                await asyncio.sleep(0.05)
                if sidecar.engine is not None and sidecar.engine.version != before:
                    self.report.reloads += 1
                    break

    async def converge(self, http: aiohttp.ClientSession, sidecar: Sidecar) -> None:
        """Faults are cleared: trickle traffic that reaches every instance first (a tier entry
        each) until every circuit is closed and every pool instance is in rotation. Bounded by
        the breakers' longest open period plus one rpm window (d's tier may have spent it)."""
        deadline = time.monotonic() + 2 * RECOVERY + 65
        targets = ("g", "g.echelon2", "g.echelon2", "g.echelon3", "h", "p", "p")
        index = 0
        while True:
            status = _status(sidecar)
            stuck = [f"{i['group']}/{i['model']}={i['state']}" for i in status["instances"]
                     if i["state"] != "closed"]
            stuck += [f"pool p/{i['model']} out of rotation" for i in status["pools"]["p"]
                      if not i["healthy"]]
            if not stuck:
                return
            if time.monotonic() > deadline:
                self.report.unconverged = stuck
                return
            await asyncio.gather(*(self.one(http, sidecar.data_url, index + k, target)
                                   for k, target in enumerate(targets)))
            self.report.sent += len(targets)
            index += len(targets)
            await asyncio.sleep(0.2)

    async def run(self) -> SoakReport:
        with _bucket_admissions(BUCKET, REFILL) as admitted:
            self.admitted = admitted
            return await self._run()

    async def _run(self) -> SoakReport:
        os.environ[API_KEY_ENV] = API_KEY
        proc = psutil.Process()
        report = self.report
        settings = FakeSettings(api_key=API_KEY, seed=11, latency_ms=15, stream_chunks=4,
                                chunk_delay_ms=5, record_requests=0, arrivals_kept=1_000_000)
        async with FakeProvider(settings, shutdown_timeout=1.0) as fake:
            path = self.folder / "echelon.yaml"
            _write(path, soak_config(fake, 0))
            sidecar = Sidecar(ServerSettings(config=path, port=0, admin_port=0,
                                             admin_host="127.0.0.1", reload_interval=0.25,
                                             drain_timeout=5.0))
            await sidecar.start()
            try:
                connector = aiohttp.TCPConnector(limit=0)
                async with aiohttp.ClientSession(connector=connector) as http:
                    await self._warm(http, sidecar)
                    gc.collect()
                    report.tasks_before = len(asyncio.all_tasks())
                    report.fds_before = proc.num_fds()
                    begin = time.monotonic()
                    until = begin + self.seconds
                    rss = asyncio.create_task(self._rss_at(proc, begin + self.seconds / 4))
                    await asyncio.gather(
                        self.traffic(http, sidecar.data_url, until),
                        self.flip_faults(fake, until),
                        self.reload(sidecar, fake, path, until),
                    )
                    await rss
                    fake.clear_faults()
                    await self.converge(http, sidecar)
                    self._upstream_checks(fake)
                    report.transitions = _transitions(sidecar)
                # the clients' connections are closed: what is left is the sidecar's and the
                # fake's own (their upstream pool may hold a few more idle connections than
                # after the warm-up: LEAK_SLACK); a leak per request would be hundreds
                await asyncio.sleep(0.3)  # let closed connections finish closing
                gc.collect()
                report.rss_end_mb = proc.memory_info().rss / 2**20
                report.tasks_after = len(asyncio.all_tasks())
                report.fds_after = proc.num_fds()
            finally:
                await sidecar.stop()
        return report

    async def _warm(self, http: aiohttp.ClientSession, sidecar: Sidecar) -> None:
        """A few requests of every kind first, so pools and caches exist before counting."""
        await asyncio.gather(*(self.one(http, sidecar.data_url, k) for k in range(30)))
        self.report.answered.clear()
        self.report.statuses.clear()

    async def _rss_at(self, proc: psutil.Process, when: float) -> None:
        await asyncio.sleep(max(0.0, when - time.monotonic()))
        gc.collect()
        self.report.rss_warm_mb = proc.memory_info().rss / 2**20

    def _upstream_checks(self, fake: FakeProvider) -> None:
        stats = fake.stats()
        report = self.report
        report.max_in_flight_a = stats["max_in_flight_by_model"].get("up-a", 0)
        arrivals = stats["arrivals_by_model"]
        # a little under 60 s: arrival times carry the loop's jitter, admissions do not
        report.max_rpm_d = max_in_window(arrivals.get("up-d", []), 59.5)
        report.bucket_arrivals = len(arrivals.get("up-pa", [])) + len(arrivals.get("up-pb", []))
        report.bucket_admitted = len(self.admitted)
        report.bucket_excess = bucket_excess(self.admitted, BUCKET, REFILL)


@contextmanager
def _bucket_admissions(size: float, refill: float) -> Iterator[list[float]]:
    """The admission times of every token bucket of ``size`` and ``refill`` while inside, on
    the clock the sidecar decides with; a refund (admitted, then not sent) takes the latest
    admission back, which leaves the bucket in the state it would be in without it."""
    times: list[float] = []
    acquire, refund = TokenBucket.try_acquire, TokenBucket.refund

    def ours(bucket: TokenBucket) -> bool:
        return bucket.bucket_size == size and bucket.refill_rate == refill

    def recording_acquire(bucket: TokenBucket, now: float) -> bool:
        admitted = acquire(bucket, now)
        if admitted and ours(bucket):
            times.append(now)
        return admitted

    def recording_refund(bucket: TokenBucket, now: float) -> None:
        refund(bucket, now)
        if ours(bucket) and times:
            times.pop()

    TokenBucket.try_acquire = recording_acquire  # type: ignore[method-assign]
    TokenBucket.refund = recording_refund  # type: ignore[method-assign]
    try:
        yield times
    finally:
        TokenBucket.try_acquire = acquire  # type: ignore[method-assign]
        TokenBucket.refund = refund  # type: ignore[method-assign]


def _write(path: Path, config: dict[str, Any]) -> None:
    import yaml

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, path)


def _status(sidecar: Sidecar) -> dict[str, Any]:
    from echelon_sidecar.server import status_document

    return status_document(sidecar)


def _transitions(sidecar: Sidecar) -> int:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0
    for family in text_string_to_metric_families(sidecar.metrics.render().decode()):
        for sample in family.samples:
            if sample.name == "echelon_circuit_transitions_total":
                total += int(sample.value)
    return total


async def run_soak(seconds: float, *, rate: float = 25.0, folder: Path | None = None,
                   seed: int = 1) -> SoakReport:
    """Run the soak for ``seconds`` at ``rate`` requests per second; the report says how it
    went (``report.problems()`` is empty when everything held)."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="echelon-soak-") as tmp:
            return await _Soak(seconds, rate, Path(tmp), seed).run()
    return await _Soak(seconds, rate, folder, seed).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.soak",
        description="Soak one Echelon sidecar on loopback: steady mixed traffic while upstream "
        "faults flip and the config reloads, then check nothing was lost or leaked and that "
        "the limits held at the upstream. Prints a JSON report; exits 1 if anything failed.")
    parser.add_argument("--seconds", type=float, default=600.0,
                        help="how long the traffic runs (default 600: the full mode; the test "
                        "suite runs 30)")
    parser.add_argument("--rate", type=float, default=25.0, help="requests per second (25)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault flipping (1)")
    parser.add_argument("--log-level", default="error",
                        choices=["debug", "info", "warning", "error"],
                        help="the sidecar's log level on stderr (default error)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    report = asyncio.run(run_soak(args.seconds, rate=args.rate, seed=args.seed))
    json.dump(report.to_json(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
