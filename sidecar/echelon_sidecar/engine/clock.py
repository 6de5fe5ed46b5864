"""The engine's injected clock: real loop time in production, a fake one in tests.

Everything time-dependent in the engine (per-attempt timeouts, retry delays, queue-wait
deadlines, circuit open periods, rate windows, session TTLs, health-check intervals) reads
``clock.now()`` and waits through ``clock.sleep()`` or ``clock.call_at()``. Nothing calls
``asyncio.wait_for`` or ``asyncio.sleep`` with a real duration, so :class:`FakeClock` drives it
all and tests never sleep.

- :class:`SystemClock` -- real monotonic time (``time.monotonic``), ``asyncio.sleep`` and the
  running loop's timers.
- :class:`FakeClock` -- time moves only through ``await clock.advance(dt)`` /
  ``await clock.run_until(t)`` (or ``await clock.drive(aw)``, which jumps to the next timer
  whenever every task is idle). Timers fire in deadline order (ties: the order they were set);
  after each one the loop is run until it is idle, so tests are deterministic.

``call_at`` is part of the protocol (beyond ``now``/``sleep``) so that a timeout costs one timer
and no extra task: :func:`attempt_timeout` arms a clock timer that cancels the running task,
the way ``asyncio.timeout`` does with the loop's own timer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

__all__ = ["Clock", "FakeClock", "SystemClock", "TimerHandle", "attempt_timeout"]

T = TypeVar("T")


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic seconds, sleeping, and one-shot timers on the same time line."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle: ...


class SystemClock:
    """Real monotonic time (``time.monotonic``); timers and sleeps on the running loop.

    ``call_at`` converts to a delay (``loop.call_later``), so the clock stays consistent with
    loops whose own ``time()`` differs from ``time.monotonic`` (uvloop's is cached per
    iteration, in milliseconds).
    """

    __slots__ = ()

    now = staticmethod(time.monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(when - time.monotonic(), callback)


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "seq", "when")

    def __init__(self, when: float, seq: int, callback: Callable[[], object]) -> None:
        self.when = when
        self.seq = seq
        self.callback = callback
        self.cancelled = False

    def __lt__(self, other: _FakeTimer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that only moves when told to. Timers fire in deadline order."""

    def __init__(self, start: float = 0.0, *, settle_rounds: int = 1000) -> None:
        self._now = float(start)
        self._timers: list[_FakeTimer] = []
        self._seq = itertools.count()
        self._settle_rounds = settle_rounds

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        timer = _FakeTimer(max(when, self._now), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_at(self._now + seconds, wake)
        try:
            await future
        finally:
            timer.cancel()

    # -- moving time -------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the earliest pending timer fires (None if there is none)."""
        self._drop_cancelled()
        return self._timers[0].when if self._timers else None

    @property
    def pending(self) -> int:
        self._drop_cancelled()
        return sum(1 for t in self._timers if not t.cancelled)

    async def settle(self) -> None:
        """Run the loop until no task is ready (woken tasks run to their next wait)."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        for _ in range(self._settle_rounds):
            await asyncio.sleep(0)
            if ready is not None and not ready:
                return

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing due timers in order and letting tasks run."""
        await self.run_until(self._now + max(0.0, seconds))

    async def run_until(self, when: float) -> None:
        """Move time forward to ``when`` (never backward)."""
        await self.settle()
        while True:
            self._drop_cancelled()
            if not self._timers or self._timers[0].when > when:
                break
            timer = heapq.heappop(self._timers)
            self._now = max(self._now, timer.when)
            timer.callback()
            await self.settle()
        self._now = max(self._now, when)
        await self.settle()

    async def drive(self, awaitable: Awaitable[T], *, limit: float = 1e9) -> T:
        """Run ``awaitable`` to completion, jumping to the next timer whenever all is idle.

        Raises RuntimeError if the awaitable waits on something no timer will ever wake, or if
        it runs past ``limit`` seconds of fake time.
        """
        task: asyncio.Future[T] = asyncio.ensure_future(awaitable)
        try:
            while True:
                await self.settle()
                if task.done():
                    return task.result()
                deadline = self.next_deadline()
                if deadline is None:
                    raise RuntimeError("FakeClock.drive: the task waits but no timer is pending")
                if deadline > limit:
                    raise RuntimeError(f"FakeClock.drive: still running at t={deadline}")
                await self.run_until(deadline)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _drop_cancelled(self) -> None:
        timers = self._timers
        while timers and timers[0].cancelled:
            heapq.heappop(timers)


class _Expiry:
    """The callback of an attempt timeout: cancel the task that armed it, once."""

    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        self.task.cancel()


class AttemptTimedOut(Exception):
    """Internal: the injected clock's timer ended an attempt."""


async def attempt_timeout(clock: Clock, seconds: float, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` for at most ``seconds`` of clock time.

    Raises :class:`AttemptTimedOut` when the clock's timer fires first; a cancellation from
    elsewhere (the caller went away) propagates as ``CancelledError``.
    """
    task = asyncio.current_task()
    assert task is not None
    expiry = _Expiry(task)
    handle = clock.call_at(clock.now() + seconds, expiry)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if expiry.fired and task.uncancel() == 0:
            raise AttemptTimedOut from None
        raise
    finally:
        handle.cancel()
