"""FakeClock and the clock-driven attempt timeout."""

from __future__ import annotations

import asyncio

import pytest

from echelon_sidecar.engine import FakeClock, SystemClock
from echelon_sidecar.engine.clock import AttemptTimedOut, attempt_timeout


async def test_time_moves_only_when_advanced() -> None:
    clock = FakeClock(5.0)
    assert clock.now() == 5.0
    await asyncio.sleep(0)
    assert clock.now() == 5.0
    await clock.advance(2.5)
    assert clock.now() == 7.5


async def test_sleepers_wake_in_deadline_order_and_run_before_advance_returns() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("c", 3), ("a", 1), ("b", 2))]
    await clock.settle()
    await clock.advance(2.5)
    assert woke == [("a", 1.0), ("b", 2.0)]
    await clock.run_until(10)
    assert woke[-1] == ("c", 3.0)
    assert clock.now() == 10.0
    await asyncio.gather(*tasks)


async def test_cancelled_sleeper_leaves_no_timer() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(5))
    await clock.settle()
    assert clock.pending == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert clock.pending == 0


async def test_drive_jumps_to_the_next_timer_until_done() -> None:
    clock = FakeClock()

    async def work() -> float:
        await clock.sleep(30)
        await clock.sleep(12)
        return clock.now()

    assert await clock.drive(work()) == 42.0


async def test_drive_reports_a_wait_no_timer_will_end() -> None:
    clock = FakeClock()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(RuntimeError, match="no timer"):
        await clock.drive(never)


async def test_attempt_timeout_fires_on_the_fake_clock() -> None:
    clock = FakeClock()

    async def slow() -> str:
        await clock.sleep(10)
        return "late"

    async def bounded() -> str:
        return await attempt_timeout(clock, 3, slow())

    task = asyncio.create_task(bounded())
    await clock.advance(2.9)
    assert not task.done()
    await clock.advance(0.1)
    with pytest.raises(AttemptTimedOut):
        await task
    assert clock.now() == 3.0


async def test_attempt_timeout_lets_a_fast_call_through_and_disarms() -> None:
    clock = FakeClock()

    async def fast() -> str:
        await clock.sleep(1)
        return "done"

    assert await clock.drive(attempt_timeout(clock, 3, fast())) == "done"
    assert clock.pending == 0


async def test_attempt_timeout_passes_an_outside_cancellation_through() -> None:
    clock = FakeClock()

    async def bounded() -> None:
        await attempt_timeout(clock, 3, clock.sleep(10))

    task = asyncio.create_task(bounded())
    await clock.settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_system_clock_uses_loop_time() -> None:
    clock = SystemClock()
    loop = asyncio.get_running_loop()
    assert abs(clock.now() - loop.time()) < 0.5
    fired = asyncio.Event()
    clock.call_at(clock.now(), fired.set)
    await asyncio.wait_for(fired.wait(), 1)
    await clock.sleep(0)
