"""ConcurrencyLimit: slots, FIFO queue, queue full, deadlines, cancellation, hand-over."""

from __future__ import annotations

import asyncio

from echelon_sidecar.engine import Admission, ConcurrencyLimit, FakeClock


async def test_slots_up_to_limit_then_refused_without_queue() -> None:
    limit = ConcurrencyLimit(2, 0, clock=FakeClock())
    assert await limit.acquire() is Admission.GRANTED
    assert limit.try_acquire()
    assert not limit.try_acquire()
    assert await limit.acquire() is Admission.QUEUE_FULL
    limit.release()
    assert limit.in_flight == 1


async def test_waiters_are_served_in_fifo_order() -> None:
    clock = FakeClock()
    limit = ConcurrencyLimit(1, 3, clock=clock)
    assert limit.try_acquire()
    order: list[str] = []

    async def wait(name: str) -> None:
        assert await limit.acquire() is Admission.GRANTED
        order.append(name)

    tasks = [asyncio.create_task(wait(n)) for n in "abc"]
    await clock.settle()
    assert limit.queued == 3
    assert await limit.acquire() is Admission.QUEUE_FULL
    for _ in range(3):
        limit.release()
        await clock.settle()
    assert order == ["a", "b", "c"]
    assert limit.in_flight == 1 and limit.queued == 0
    await asyncio.gather(*tasks)


async def test_a_free_slot_does_not_jump_the_queue() -> None:
    clock = FakeClock()
    limit = ConcurrencyLimit(1, 1, clock=clock)
    assert limit.try_acquire()
    waiter = asyncio.create_task(limit.acquire())
    await clock.settle()
    limit.release()  # handed to the waiter, not freed
    assert not limit.try_acquire()
    assert await waiter is Admission.GRANTED
    assert limit.in_flight == 1


async def test_a_waiter_gives_up_at_its_deadline_on_the_clock() -> None:
    clock = FakeClock()
    limit = ConcurrencyLimit(1, 1, clock=clock)
    assert limit.try_acquire()
    waiter = asyncio.create_task(limit.acquire(deadline=5.0))
    await clock.advance(4.9)
    assert not waiter.done()
    await clock.advance(0.1)
    assert await waiter is Admission.TIMED_OUT
    assert limit.queued == 0 and limit.in_flight == 1


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    clock = FakeClock()
    limit = ConcurrencyLimit(1, 2, clock=clock)
    assert limit.try_acquire()
    first = asyncio.create_task(limit.acquire())
    second = asyncio.create_task(limit.acquire())
    await clock.settle()
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert limit.queued == 1
    limit.release()
    assert await second is Admission.GRANTED
    limit.release()
    assert limit.in_flight == 0 and limit.queued == 0


async def test_a_slot_handed_to_a_waiter_cancelled_meanwhile_moves_on() -> None:
    clock = FakeClock()
    limit = ConcurrencyLimit(1, 2, clock=clock)
    assert limit.try_acquire()
    first = asyncio.create_task(limit.acquire())
    second = asyncio.create_task(limit.acquire())
    await clock.settle()
    limit.release()  # hands the slot to `first` ...
    first.cancel()  # ... which is cancelled before it runs
    await asyncio.gather(first, return_exceptions=True)
    assert await clock.drive(second) is Admission.GRANTED  # fails fast if the slot leaked
    limit.release()
    assert limit.in_flight == 0 and limit.queued == 0


async def test_queue_depth_is_reported() -> None:
    clock = FakeClock()
    depths: list[int] = []
    limit = ConcurrencyLimit(1, 2, clock=clock, on_depth=depths.append)
    assert limit.try_acquire()
    waiter = asyncio.create_task(limit.acquire())
    await clock.settle()
    limit.release()
    await waiter
    assert depths == [1, 0]
