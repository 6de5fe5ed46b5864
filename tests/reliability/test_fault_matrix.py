"""The fault matrix: every upstream fault x every fallback strategy, streamed and not.

One sidecar per (strategy, stream) pair; the faults are switched at runtime on the fake
upstream (connection refused by pointing the primary instance at a bound port that does not
listen, through a config reload). Each case sends its requests over raw HTTP and checks what
the client saw (see ``exchange.py``), which instance served, how many upstream calls each
request made, and that the fake upstreams saw exactly those calls. After each case a clean
request proves nothing was left behind (slots, stale upstream connections, breaker state).

Breakers and pool health are given thresholds the matrix never reaches, so that every case
starts from the same state; circuit opening is covered by tests/integration/sidecar/test_circuit.py.

Expected outcome, for a fault on the primary instance (the secondary is healthy):

================================  ==========================================================
strategy                          outcome
================================  ==========================================================
echelon_down                      next tier serves: secondary, 2 attempts
task_group_switch                 the fallback group serves: secondary, 2 attempts (the
                                  entry group's own next tier is never called)
provider_failover                 a model of another provider serves: secondary (anthropic),
                                  2 attempts (the same-provider model is never called)
model_rotate                      the tier's start rotates: a request starting at the primary
                                  is served by the secondary in 2, the other in 1
pool instance_rotation            the next instance serves: 2 attempts when the rotation
                                  gave the primary first, else 1
pool simple_retry                 the same instance is retried: 2 calls on the primary and a
                                  clear error (429 + Retry-After when both were 429s, else
                                  502 fallback_chain_exhausted); otherwise served in 1
a stream failing after its first  no failover: the client sees the primary's first chunks
byte (cut after N chunks,         then one error event (code stream_interrupted)
oversized event)
================================  ==========================================================
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..integration.conftest import (
    MakeSidecar,
    RunningSidecar,
    anthropic_model,
    eventually,
    metric,
    openai_model,
)
from .exchange import Seen, exchange

PRIMARY, SECONDARY, SAME_PROVIDER, OTHER_TIER = "primary", "secondary", "same-provider", "other"
UPSTREAM = {PRIMARY: "up-primary", SECONDARY: "up-secondary", SAME_PROVIDER: "up-same",
            OTHER_TIER: "up-other"}
MAX_RESPONSE_BYTES = 256 * 1024
PRIMARY_TIMEOUT = 0.4   # the primary's own tier: what "timeout" and "hang after headers" cost
SHARED_TIMEOUT = 1.0    # a tier holding both instances (model_rotate, provider_failover)
CLIENT_DEADLINE = 10.0  # no request may take longer than this to be answered completely
NEVER = {"failure_threshold": 10_000, "recovery_time": 1}


@dataclass(frozen=True)
class Fault:
    name: str
    spec: str | None               # fake-provider spec; None: connection refused
    breaks_stream: bool = False    # a stream fails after its first byte (no failover)
    settings: dict[str, Any] = field(default_factory=dict)  # fake settings for this case

    @property
    def rate_limit(self) -> bool:
        return self.spec is not None and self.spec.startswith("429")


FAULTS = [
    Fault("429 with Retry-After", "429:retry-after=0.2"),
    Fault("429 without Retry-After", "429"),
    Fault("500", "500"),
    Fault("502", "502"),
    Fault("503", "503"),
    Fault("529 overloaded", "529"),
    Fault("connection refused", None),
    Fault("connection reset", "reset"),
    Fault("timeout (no answer)", "hang"),
    Fault("hang after headers", "hang:headers"),
    Fault("stream cut before its first chunk", "cut:0"),
    Fault("stream cut after 2 chunks", "cut:2", breaks_stream=True),
    Fault("malformed JSON", "malformed"),
    Fault("wrong content type", "html"),
    Fault("oversized response", "oversize:1", breaks_stream=True,
          settings={"stream_chunks": 2, "chunk_delay_ms": 20}),
]
STRATEGIES = ["echelon_down", "task_group_switch", "provider_failover", "model_rotate",
              "instance_rotation", "simple_retry"]
ROTATING = {"model_rotate", "instance_rotation", "simple_retry"}
TARGET = {"instance_rotation": "pool", "simple_retry": "pool"}


def _fallback(strategy: str, **extra: Any) -> dict[str, Any]:
    return {"strategy": strategy, "max_attempts": 3, "circuit_breaker": NEVER, **extra}


def matrix_config(fake: FakeProvider, strategy: str, primary_url: str) -> dict[str, Any]:
    models = {
        PRIMARY: {**openai_model(fake, UPSTREAM[PRIMARY]), "base_url": primary_url},
        SECONDARY: openai_model(fake, UPSTREAM[SECONDARY]),
        SAME_PROVIDER: openai_model(fake, UPSTREAM[SAME_PROVIDER]),
        OTHER_TIER: openai_model(fake, UPSTREAM[OTHER_TIER]),
    }
    fast = {"models": [PRIMARY], "priority": 1, "timeout": PRIMARY_TIMEOUT}
    groups: dict[str, Any]
    pools: dict[str, Any] = {}
    if strategy == "echelon_down":
        groups = {"g": {"echelon1": fast,
                        "echelon2": {"models": [SECONDARY], "priority": 2, "timeout": 10},
                        "fallback_config": _fallback("echelon_down")}}
    elif strategy == "task_group_switch":
        groups = {"g": {"echelon1": fast,
                        "echelon2": {"models": [OTHER_TIER], "priority": 2},
                        "fallback_config": _fallback("task_group_switch",
                                                     fallback_groups=["h"])},
                  "h": {"echelon1": {"models": [SECONDARY], "timeout": 10},
                        "fallback_config": _fallback("echelon_down")}}
    elif strategy == "provider_failover":
        models[SECONDARY] = anthropic_model(fake, UPSTREAM[SECONDARY])
        groups = {"g": {"echelon1": {"models": [PRIMARY, SAME_PROVIDER, SECONDARY],
                                     "timeout": SHARED_TIMEOUT},
                        "fallback_config": _fallback("provider_failover")}}
    elif strategy == "model_rotate":
        groups = {"g": {"echelon1": {"models": [PRIMARY, SECONDARY], "timeout": SHARED_TIMEOUT},
                        "fallback_config": _fallback("model_rotate")}}
    else:
        groups = {"g": {"echelon1": fast,
                        "echelon2": {"models": [SECONDARY], "priority": 2, "timeout": 10},
                        "fallback_config": _fallback("echelon_down")}}
        pools = {"pool": {"task_groups": ["g"], "rotation_strategy": "round_robin",
                          "fallback_strategy": strategy, "max_instance_attempts": 2,
                          "failure_threshold": 10_000, "recovery_time": 1}}
    return {"task_groups": groups, "polling_pools": pools, "models": models}


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A loopback address that refuses connections: a bound port nobody listens on (kept
    bound for the test, so no other process can take it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


# -- expectations ------------------------------------------------------------------------------

def _calls(strategy: str, fault: Fault, stream: bool, seen: Seen) -> dict[str, int]:
    """The upstream calls a request made, per model id, implied by what its client saw; fails
    when the outcome is not one this strategy allows for this fault."""
    breaks = stream and fault.breaks_stream
    what = seen.describe()
    if seen.kind == "broken":
        assert breaks, f"a stream broke on a fault that should fail over: {what}"
        assert (seen.served_by, seen.attempts) == (PRIMARY, 1), what
        assert seen.code == "stream_interrupted", what
        # what went out before the break came from the primary (the role chunk has no text)
        assert not seen.text or seen.text.startswith(f"[fake:{UPSTREAM[PRIMARY]}]"), what
        return {PRIMARY: 1}
    if seen.kind == "error":
        assert strategy == "simple_retry" and not breaks, f"unexpected error: {what}"
        assert seen.attempts == 2 and len([a for a in seen.trail if a.get("call")]) == 2, what
        assert {a["model"] for a in seen.trail} == {PRIMARY}, seen.trail
        if fault.rate_limit:
            assert (seen.status, seen.code) == (429, "upstream_rate_limited"), what
            assert seen.retry_after is not None and int(seen.retry_after) >= 1, what
        else:
            assert (seen.status, seen.code) == (502, "fallback_chain_exhausted"), what
        return {PRIMARY: 2}
    assert seen.status == 200, what
    assert seen.served_by == SECONDARY, what
    assert seen.text.startswith(f"[fake:{UPSTREAM[SECONDARY]}]"), what
    if seen.attempts == 1:
        assert strategy in ROTATING, f"the primary was not tried first: {what}"
        return {SECONDARY: 1}
    assert seen.attempts == 2, what
    assert not breaks, f"a stream failing after its first byte was failed over: {what}"
    return {PRIMARY: 1, SECONDARY: 1}


@dataclass
class Matrix:
    sc: RunningSidecar
    fake: FakeProvider
    http: aiohttp.ClientSession
    strategy: str
    stream: bool
    refusing_url: str
    caplog: pytest.LogCaptureFixture | None = None
    sent: int = 0

    @property
    def target(self) -> str:
        return TARGET.get(self.strategy, "g")

    async def send(self, **kwargs: Any) -> Seen:
        self.sent += 1
        return await exchange(self.http, self.sc.data_url, self.target, stream=self.stream,
                              deadline=CLIENT_DEADLINE, **kwargs)

    async def settle(self) -> None:
        """Nothing in flight: upstream calls closed, every concurrency slot released."""
        async with asyncio.timeout(5):
            await self.fake.wait_for(lambda s: s.in_flight == 0)
        await eventually(lambda: self._idle(), what="the sidecar to hold no slot")

    async def _idle(self) -> bool:
        return self.sc.in_flight(await self.sc.status()) == 0

    async def _no_retry_after(self) -> bool:
        return not (await self.sc.status()).get("retry_after")

    async def reconfigure(self, primary_url: str) -> None:
        self.sc.rewrite(matrix_config(self.fake, self.strategy, primary_url))
        assert await self.sc.sidecar.reload_now()

    async def run_case(self, fault: Fault) -> list[str]:
        """Run one fault; returns what went wrong (empty when the case holds)."""
        fake = self.fake
        defaults = {"stream_chunks": 5, "chunk_delay_ms": 0.0}
        fake.configure(**{**defaults, **fault.settings})
        if fault.spec is None:
            await self.reconfigure(self.refusing_url)
        else:
            fake.set_fault(UPSTREAM[PRIMARY], fault.spec)
        before = dict(fake.stats()["by_model"])
        seen: list[Seen] = []
        try:
            for _ in range(2 if self.strategy in ROTATING else 1):
                seen.append(await self.send())
            expected: dict[str, int] = {}
            for one in seen:
                # bounded by the attempts' own timeouts, never by the client giving up
                assert one.elapsed < 2 * SHARED_TIMEOUT + 2.0, f"took {one.elapsed:.2f}s"
                for model, n in _calls(self.strategy, fault, self.stream, one).items():
                    expected[model] = expected.get(model, 0) + n
            await self.settle()
            after = fake.stats()["by_model"]
            got = {model: after.get(up, 0) - before.get(up, 0) for model, up in UPSTREAM.items()}
            if fault.spec is None:
                expected.pop(PRIMARY, None)  # refused: the fake never saw those calls
            want = {model: expected.get(model, 0) for model in UPSTREAM}
            assert got == want, f"upstream calls {got}, expected {want}"
            if self.strategy in ROTATING:
                assert any(s.kind != "served" or s.attempts == 2 for s in seen), \
                    "no request was sent to the faulty instance first"
        except AssertionError as exc:
            return [f"{fault.name}: {exc} (seen: {[s.describe() for s in seen]})"]
        finally:
            fake.clear_faults()
            fake.configure(**defaults)
            if fault.spec is None:
                await self.reconfigure(fake.openai_base_url)
        # an upstream's Retry-After is honoured by every later request (the primary is skipped
        # until it passes): let it pass, so that each case starts from the same state
        await eventually(self._no_retry_after, what="the primary's Retry-After to pass")
        clean = await self.send()  # nothing left behind: the next request is served at once
        if clean.kind != "served" or clean.attempts != 1:
            return [f"{fault.name}: the request after it was not served cleanly: "
                    f"{clean.describe()} (its trail: {self._last_trail()})"]
        return []

    def _last_trail(self) -> object:
        """The attempt trail of the sidecar's last request log line (what each attempt met)."""
        records = self.caplog.records if self.caplog is not None else []
        trails = [r.trail for r in records if hasattr(r, "trail")]
        return trails[-1] if trails else "not logged"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_every_fault_under_every_strategy_ends_as_the_strategy_says(
    fake: FakeProvider, make_sidecar: MakeSidecar, refusing_url: str, strategy: str,
    stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="echelon.sidecar")
    sc = await make_sidecar(matrix_config(fake, strategy, fake.openai_base_url))
    sc.sidecar.engine.provider.max_response_bytes = MAX_RESPONSE_BYTES  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as http:
        matrix = Matrix(sc, fake, http, strategy, stream, refusing_url, caplog)
        problems: list[str] = []
        for fault in FAULTS:
            problems += await matrix.run_case(fault)
        text = await sc.metrics()
    assert not problems, "\n".join(problems)
    # every request sent is accounted for, once: served, or answered with an error
    assert metric(text, "echelon_requests_total") == matrix.sent
