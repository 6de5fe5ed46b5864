"""Run one reconcile per key at a time, folding bursts of requests into one more run.

When 1000 TaskGroups appear at once, the pool that references them all must be re-rendered,
but not 1000 times: a request made while a run for that key is in progress is served by a
single follow-up run (which sees everything that changed meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Coalescer", "KeyedLocks"]

K = TypeVar("K", bound=Hashable)
logger = logging.getLogger("echelon_operator")


@dataclass
class _Slot:
    task: asyncio.Task[None] | None = None
    #: the future of the next run, when a request came in during the current one
    pending: asyncio.Future[None] | None = None


@dataclass
class Coalescer(Generic[K]):
    """``await request(key)`` returns after a run of ``fn(key)`` that started after the call.

    A failing run is retried ``retries`` times with ``backoff`` seconds between; its last
    error reaches whoever awaits. Nobody awaits a :meth:`schedule` run (kopf will not
    retry it for us), so when it still fails -- the API server away for longer than the
    backoffs -- it is requested again every ``retry_later`` seconds until it succeeds:
    a dependent pool is never left un-rendered for want of a trigger.
    """

    fn: Callable[[K], Awaitable[None]]
    name: str = "reconcile"
    retries: int = 3
    backoff: float = 2.0
    retry_later: float = 30.0
    _slots: dict[K, _Slot] = field(default_factory=dict)
    _later: dict[K, asyncio.TimerHandle] = field(default_factory=dict)
    _closed: bool = False

    def request(self, key: K) -> asyncio.Future[None]:
        slot = self._slots.setdefault(key, _Slot())
        if slot.task is None:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            slot.task = asyncio.create_task(self._loop(key, slot, future),
                                            name=f"{self.name} {key}")
            return future
        if slot.pending is None:
            slot.pending = asyncio.get_running_loop().create_future()
        return slot.pending

    def schedule(self, key: K) -> None:
        """Request a run without waiting for it (retried later while it fails)."""
        if self._closed:
            return
        self.request(key).add_done_callback(lambda f: self._scheduled_done(key, f))

    def _scheduled_done(self, key: K, future: asyncio.Future[None]) -> None:
        if future.cancelled() or self._closed:
            return
        if future.exception() is None:  # (an error was logged by the loop)
            handle = self._later.pop(key, None)  # a later run succeeded: covers earlier ones
            if handle is not None:
                handle.cancel()
            return
        if key in self._later:
            return
        logger.warning("%s %s: trying again in %gs", self.name, key, self.retry_later)
        loop = asyncio.get_running_loop()
        self._later[key] = loop.call_later(self.retry_later, self._retry, key)

    def _retry(self, key: K) -> None:
        self._later.pop(key, None)
        self.schedule(key)

    async def run(self, key: K) -> None:
        await asyncio.shield(self.request(key))

    async def _loop(self, key: K, slot: _Slot, future: asyncio.Future[None]) -> None:
        try:
            while True:
                error: BaseException | None = None
                for attempt in range(self.retries + 1):
                    try:
                        await self.fn(key)
                        error = None
                        break
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        error = exc
                        logger.warning("%s %s failed (attempt %d): %s", self.name, key,
                                       attempt + 1, exc)
                        if attempt < self.retries:
                            await asyncio.sleep(self.backoff * (attempt + 1))
                if not future.done():
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)
                if slot.pending is None:
                    break
                future, slot.pending = slot.pending, None
        except asyncio.CancelledError:
            for f in (future, slot.pending):
                if f is not None and not f.done():
                    f.cancel()
            raise
        finally:
            slot.task = None
            if self._slots.get(key) is slot:
                del self._slots[key]

    def busy(self) -> int:
        return sum(1 for s in self._slots.values() if s.task is not None)

    async def close(self) -> None:
        self._closed = True
        for handle in self._later.values():
            handle.cancel()
        self._later.clear()
        tasks = [s.task for s in self._slots.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class KeyedLocks(Generic[K]):
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[K, tuple[asyncio.Lock, int]] = {}

    def __call__(self, key: K) -> _Held[K]:
        return _Held(self, key)


class _Held(Generic[K]):
    def __init__(self, owner: KeyedLocks[K], key: K) -> None:
        self.owner, self.key = owner, key

    async def __aenter__(self) -> None:
        lock, users = self.owner._locks.get(self.key, (asyncio.Lock(), 0))
        self.owner._locks[self.key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._drop(lock)
            raise

    async def __aexit__(self, *exc: object) -> None:
        lock, _ = self.owner._locks[self.key]
        lock.release()
        self._drop(lock)

    def _drop(self, lock: asyncio.Lock) -> None:
        _, users = self.owner._locks[self.key]
        if users <= 1:
            del self.owner._locks[self.key]
        else:
            self.owner._locks[self.key] = (lock, users - 1)
