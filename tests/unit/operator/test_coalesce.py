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
