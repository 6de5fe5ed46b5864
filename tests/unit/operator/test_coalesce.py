"""Coalescing reconciles: bursts fold into one follow-up run; failures retry."""

from __future__ import annotations

import asyncio

import pytest

from echelon_operator.coalesce import Coalescer, KeyedLocks


async def test_a_burst_of_requests_runs_at_most_twice() -> None:
    runs: list[str] = []
    gate = asyncio.Event()

    async def work(key: str) -> None:
        runs.append(key)
        await gate.wait()

    c: Coalescer[str] = Coalescer(work, backoff=0)
    first = c.request("k")
    await asyncio.sleep(0)
    later = [c.request("k") for _ in range(100)]
    assert len({id(f) for f in later}) == 1  # all share the follow-up run
    gate.set()
    await asyncio.gather(first, *later)
    assert runs == ["k", "k"]
    assert c.busy() == 0


async def test_keys_run_independently_and_errors_reach_the_caller() -> None:
    attempts = {"bad": 0}

    async def work(key: str) -> None:
        if key == "bad":
            attempts["bad"] += 1
            raise RuntimeError("nope")

    c: Coalescer[str] = Coalescer(work, retries=2, backoff=0)
    await c.run("good")
    with pytest.raises(RuntimeError, match="nope"):
        await c.run("bad")
    assert attempts["bad"] == 3
    c.schedule("bad")  # fire and forget: logged, never an unretrieved exception
    await asyncio.sleep(0.05)
    await c.close()


async def test_a_scheduled_run_that_keeps_failing_is_requested_again_until_it_succeeds() -> None:
    attempts = 0
    done = asyncio.Event()

    async def work(key: str) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 5:  # two rounds of (1 + retries) attempts fail: the API server is away
            raise RuntimeError("API server unreachable")
        done.set()

    c: Coalescer[str] = Coalescer(work, retries=2, backoff=0, retry_later=0.01)
    c.schedule("pool")
    c.schedule("pool")  # one retry timer per key, however many callers
    await asyncio.wait_for(done.wait(), timeout=10)
    assert attempts == 6
    assert c._later == {}
    await c.close()


async def test_closing_cancels_the_retries_waiting() -> None:
    async def work(key: str) -> None:
        raise RuntimeError("down")

    c: Coalescer[str] = Coalescer(work, retries=0, backoff=0, retry_later=3600)
    c.schedule("pool")
    for _ in range(1000):  # the retry timer is set by the failed run's done callback
        if c._later:
            break
        await asyncio.sleep(0)
    assert c._later
    await c.close()
    assert c._later == {}
    c.schedule("pool")  # after close: nothing
    assert c.busy() == 0


async def test_keyed_locks_serialize_per_key_and_clean_up() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    order: list[str] = []

    async def hold(key: str, tag: str) -> None:
        async with locks(key):
            order.append(f"{tag}+")
            await asyncio.sleep(0.01)
            order.append(f"{tag}-")

    await asyncio.gather(hold("a", "1"), hold("a", "2"), hold("b", "3"))
    assert order.index("1-") < order.index("2+")
    assert locks._locks == {}
