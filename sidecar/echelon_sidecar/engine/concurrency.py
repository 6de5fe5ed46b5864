"""Concurrency limits: at most ``limit`` holders, up to ``queue_size`` waiters in FIFO order.

- A slot is taken at once when one is free and nobody is queued (queued waiters go first).
- Otherwise the caller waits in the queue if it has room, or is refused at once.
- A waiter gives up at its deadline (clock time, driven by the injected clock): refused.
- A cancelled waiter leaves the queue; if a slot had already been handed to it, it is passed
  on to the next waiter, so no slot ever leaks.
- ``release()`` hands the slot straight to the next waiter (strict FIFO) or frees it.

Levels (see ``plans``): ``group`` and ``node`` slots are held for the whole request, ``echelon``
(tier) and ``model`` slots for one attempt. Limits are this sidecar's share of the cluster-wide
budget (``config.share()``, at least 1); queue sizes are local and not divided.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from enum import IntEnum

from .clock import Clock

__all__ = ["Admission", "ConcurrencyLimit"]


class Admission(IntEnum):
    GRANTED = 0
    QUEUE_FULL = 1
    """Refused at once: every slot is taken and the queue is full."""
    TIMED_OUT = 2
    """Waited in the queue until the deadline."""


DepthListener = Callable[[int], None]


class ConcurrencyLimit:
    """A counting semaphore with a bounded FIFO queue and clock-driven deadlines."""

    __slots__ = ("_waiters", "clock", "in_flight", "limit", "on_depth", "params", "queue_size")

    def __init__(
        self,
        limit: int,
        queue_size: int = 0,
        *,
        clock: Clock,
        on_depth: DepthListener | None = None,
    ) -> None:
        if limit < 1 or queue_size < 0:
            raise ValueError("a concurrency limit needs limit >= 1 and queue_size >= 0")
        self.limit = limit
        self.queue_size = queue_size
        self.clock = clock
        self.in_flight = 0
        self.on_depth = on_depth
        self.params = (limit, queue_size)
        self._waiters: deque[asyncio.Future[bool]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody waits; never waits."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return True
        return False

    async def acquire(self, deadline: float | None = None) -> Admission:
        """Take a slot, waiting in FIFO order until ``deadline`` if the queue has room."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return Admission.GRANTED
        if len(self._waiters) >= self.queue_size:
            return Admission.QUEUE_FULL
        clock = self.clock
        if deadline is not None and deadline <= clock.now():
            return Admission.TIMED_OUT
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._depth()
        timer = None
        if deadline is not None:

            def expire() -> None:
                if not waiter.done():
                    waiter.set_result(False)
                    self._leave(waiter)

            timer = clock.call_at(deadline, expire)
        try:
            granted = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release()  # the slot was handed over just before the cancel: pass it on
            else:
                self._leave(waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        return Admission.GRANTED if granted else Admission.TIMED_OUT

    def release(self) -> None:
        """Give a slot back: to the next waiter in line, or to the pool."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # the slot moves on; in_flight is unchanged
                self._depth()
                return
        if self.in_flight <= 0:
            raise RuntimeError("ConcurrencyLimit released more often than acquired")
        self.in_flight -= 1

    def snapshot(self) -> dict[str, object]:
        return {
            "limit": self.limit,
            "queue_size": self.queue_size,
            "in_flight": self.in_flight,
            "queued": len(self._waiters),
        }

    def _leave(self, waiter: asyncio.Future[bool]) -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            return
        self._depth()

    def _depth(self) -> None:
        if self.on_depth is not None:
            self.on_depth(len(self._waiters))
