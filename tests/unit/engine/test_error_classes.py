"""Each error class through the engine: what falls back, counts, marks broken or returns."""

from __future__ import annotations

import asyncio

import pytest

from echelon_sidecar.engine import ChainExhausted, Outcome, RequestRejected, UpstreamError

from .support import Harness, cannot, crash, fail, fallback, make_config, slow, tier


def harness(threshold: int = 1, **extra: object) -> Harness:
    return Harness(make_config({
        "g": {"echelon1": tier("oa-1", "an-1", concurrency_limit=4),
              "fallback_config": fallback(circuit_breaker={"failure_threshold": threshold,
                                                           "recovery_time": 10,
                                                           "max_recovery_time": 500},
                                          **extra)},
    }))


def breaker(h: Harness, model: str) -> dict[str, object]:
    return next(b for b in h.engine.status()["breakers"] if b["model"] == model)


@pytest.mark.parametrize(
    ("behaviour", "error_class"),
    [
        (fail(None), "connect_error"),
        (fail(None, "timeout"), "timeout"),
        (fail(408), "request_timeout"),
        (fail(409), "conflict"),
        (fail(429), "rate_limited"),
        (fail(500), "server_error"),
        (fail(503), "server_error"),
        (fail(529), "overloaded"),
        (crash(), "unexpected"),
    ],
)
async def test_transient_failures_fall_back_and_count_against_the_breaker(
    behaviour: object, error_class: str
) -> None:
    h = harness()
    h.provider.on("oa-1", behaviour)  # type: ignore[arg-type]
    outcome = await h.call("g")
    assert outcome.model == "an-1"
    first = outcome.attempts[0]
    assert (first.result, first.error_class, first.reason) == ("error", error_class, "fallback")
    assert breaker(h, "oa-1")["state"] == "open"


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failures_mark_the_instance_broken_and_fall_back(status: int) -> None:
    h = harness(threshold=5)
    h.provider.on("oa-1", fail(status))
    outcome = await h.call("g")
    assert outcome.model == "an-1"
    assert outcome.attempts[0].reason == "marked_broken"
    snap = breaker(h, "oa-1")
    assert snap["state"] == "open" and snap["retry_in"] == 500.0


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_invalid_requests_return_at_once_without_penalty(status: int) -> None:
    h = harness()
    h.provider.on("oa-1", fail(status, message="messages[0] is bad", body={"error": "bad"}))
    err = await h.fails("g")
    assert isinstance(err, RequestRejected)
    assert (err.status, err.body) == (status, {"error": "bad"})
    assert h.provider.models_called == ["oa-1"]
    assert breaker(h, "oa-1")["consecutive_failures"] == 0
    assert err.outcome.attempts[0].reason == "rejected"


async def test_other_4xx_fall_back_without_penalty() -> None:
    h = harness()
    h.provider.on("oa-1", fail(413))
    outcome = await h.call("g")
    assert outcome.model == "an-1"
    assert outcome.attempts[0].reason == "request_specific"
    assert breaker(h, "oa-1")["state"] == "closed"


async def test_an_instance_that_cannot_serve_is_skipped_without_penalty_or_count() -> None:
    h = harness()
    h.provider.on("oa-1", cannot("tools are not supported"))
    outcome = await h.call("g")
    assert outcome.model == "an-1"
    assert outcome.attempt_count == 1
    first = outcome.attempts[0]
    assert (first.result, first.reason, first.message) == (
        "skipped", "cannot_serve", "tools are not supported")
    assert breaker(h, "oa-1")["consecutive_failures"] == 0


async def test_a_cancelled_request_releases_everything_without_penalty() -> None:
    h = harness()
    h.provider.on("oa-1", slow(100))
    task = asyncio.ensure_future(h.engine.call(h.request("g")))
    await h.clock.advance(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker(h, "oa-1")["consecutive_failures"] == 0
    limits = h.engine.status()["limits"]
    assert all(item.get("in_flight", 0) == 0 for item in limits)


async def test_a_failure_after_the_commit_point_counts_and_is_recorded() -> None:
    h = harness()
    seen: list[Outcome] = []


    async def relay() -> None:
        async with h.engine.serve(h.request("g")) as outcome:
            seen.append(outcome)
            limit = next(x for x in h.engine.status()["limits"] if x["level"] == "echelon")
            assert limit["in_flight"] == 1  # held while the caller relays the stream
            raise UpstreamError(None, "stream_broken", "connection reset mid-stream")

    with pytest.raises(UpstreamError):
        await relay()
    outcome = seen[0]
    assert outcome.failed_after_commit
    assert outcome.attempts[-1].reason == "failed_after_commit"
    assert outcome.attempts[-1].error_class == "stream_broken"
    assert breaker(h, "oa-1")["state"] == "open"
    limit = next(x for x in h.engine.status()["limits"] if x["level"] == "echelon")
    assert limit["in_flight"] == 0


async def test_a_cancelled_block_releases_without_penalty() -> None:
    h = harness()

    async def relay() -> None:
        async with h.engine.serve(h.request("g")):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await relay()
    assert breaker(h, "oa-1")["consecutive_failures"] == 0
    limit = next(x for x in h.engine.status()["limits"] if x["level"] == "echelon")
    assert limit["in_flight"] == 0


async def test_an_exhausted_chain_lists_every_attempt_and_why() -> None:
    h = harness(threshold=5)
    h.provider.on("oa-1", fail(503, message="overloaded")).on("an-1", fail(None, "timeout"))
    err = await h.fails("g")
    assert isinstance(err, ChainExhausted)
    text = str(err)
    assert "g.echelon1/oa-1: error (HTTP 503 server_error): overloaded" in text
    assert "g.echelon1/an-1: error (timeout)" in text


async def test_the_outcome_is_complete_inside_the_serve_block() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", "an-1"), "echelon2": tier("gm-1"),
              "fallback_config": fallback(max_attempts=3)},
    }))
    h.provider.on("oa-1", fail(503)).on("an-1", fail(503))
    async with h.engine.serve(h.request("g")) as outcome:
        # what the server puts in response headers before relaying the stream
        assert (outcome.model, outcome.attempt_count, outcome.fallbacks_taken) == ("gm-1", 3, 1)
        assert outcome.stop_reason == "served" and outcome.result == "answer from gm-1"
    assert outcome.duration >= 0 and outcome.attempt_count == 3
