"""A stream relayed from the upstream connection's callbacks, without a task wake-up per chunk.

Relaying by awaiting each upstream read costs, per chunk, a future made and resolved, a task
step scheduled and run and the coroutines resumed -- the same again as the relaying work
itself at a few hundred concurrent streams. :class:`Pump` is the lean client's
:class:`~echelon_sidecar.providers.lean_response.BodySink`: the connection's
``data_received`` hands it each read, which it decodes, translates (``StreamRelay``) and writes
to the caller's transport (``StreamOut``) at once. The relay's task sleeps until something
needs it: the stream's end, an error (raised in the task, as the awaiting relay raised it),
or back-pressure -- the caller reads slower than the upstream sends: the upstream's reading
is paused, the task waits for the caller's transport to drain, and reading resumes.

The idle limit is the task's ``_IdleWatch`` as before: each read sets its ``since``.
"""

from __future__ import annotations

import asyncio

from ..providers.lean_response import Body, LeanError
from ..translate import SSEDecoder
from .relay import StreamBroken, StreamRelay
from .stream_out import StreamOut

__all__ = ["IdleWatch", "Pump"]


class Pump:
    """Relays one lean-client stream body from its connection's callbacks (see the module)."""

    __slots__ = ("_body", "_clock", "_decoder", "_limit", "_pending", "_relay", "_sink",
                 "_waiter", "_watch", "ended", "failure", "paused")

    def __init__(self, body: Body, decoder: SSEDecoder, relay: StreamRelay, sink: StreamOut,
                 limit: int, watch: IdleWatch) -> None:
        self._body = body
        self._decoder = decoder
        self._relay = relay
        self._sink = sink
        self._limit = limit
        self._pending = 0
        self._watch = watch
        self._clock = watch.loop.time
        self._waiter: asyncio.Future[None] | None = None
        self.ended = False  # the body ended, or the relay saw the stream's end marker
        self.failure: BaseException | None = None
        self.paused = False  # the upstream's reading is paused until the caller drains

    # -- BodySink: called from the upstream connection's callbacks -------------------------------

    def data(self, data: bytes) -> None:
        if self.failure is not None or self.ended:
            return
        try:
            self._watch.since = self._clock()
            events = self._decoder.feed(data)
            if events:
                self._pending = 0
            else:  # bytes of an event still incomplete: bounded, like a whole body
                self._pending += len(data)
                if self._limit and self._pending > self._limit:
                    raise StreamBroken(f"an upstream event exceeds {self._limit} bytes")
            relay = self._relay
            out = relay.feed(events, data)
            if out and self._sink.send(out) and not self.paused:
                self.paused = True
                self._body.pause_reading()
                self._wake()
            if relay.done:
                self.ended = True
                self._wake()
        except BaseException as exc:  # raised again in the relay's task
            self.failure = exc
            self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def error(self, error: LeanError) -> None:
        if self.failure is None:
            self.failure = StreamBroken(
                f"the upstream connection failed: {type(error).__name__}")
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the relay's task ------------------------------------------------------------------------

    async def run(self) -> None:
        """Relay until the stream ends (then return) or fails (then raise what failed)."""
        body, watch = self._body, self._watch
        loop = asyncio.get_running_loop()
        body.attach(self)
        try:
            while True:
                if self.failure is not None:
                    raise self.failure
                if self.paused:  # the caller's transport is full: wait for it, then read on
                    watch.waiting = False
                    await self._sink.drain()
                    self.paused = False
                    self._watch.since = self._clock()
                    body.resume_reading()
                    continue
                if self.ended:
                    return
                self._waiter = loop.create_future()
                watch.waiting = True
                try:
                    await self._waiter
                finally:
                    watch.waiting = False
                    self._waiter = None
        finally:
            body.detach()
            if self.paused:  # never leave the connection unread (it may go back to the pool)
                self.paused = False
                body.resume_reading()


class IdleWatch:
    """The upstream's idle limit over a whole stream, with one timer: while the relay waits
    for the upstream's next chunk (``waiting``, since ``since``), ``idle`` seconds without one
    cancel the relay's task, and :meth:`expired` tells that cancellation from any other.
    What ``asyncio.timeout(idle)`` around each read did, without a timer set and cancelled
    for every chunk (about a tenth of a stream relay's CPU time): the timer fires at most
    once per ``idle`` seconds and is set again from the current wait's start."""

    __slots__ = ("_cancelling", "_handle", "_idle", "_task", "fired", "loop", "since",
                 "waiting")

    def __init__(self, idle: float) -> None:
        self.loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        self._idle = idle
        self.since = self.loop.time()
        self.waiting = False
        self.fired = False
        self._handle: asyncio.TimerHandle | None = self.loop.call_at(
            self.since + idle, self._check)

    def _check(self) -> None:
        now = self.loop.time()
        if self.waiting and now - self.since >= self._idle:
            self.fired = True
            self._handle = None
            self._task.cancel()
            return
        start = self.since if self.waiting else now
        self._handle = self.loop.call_at(start + self._idle, self._check)

    def expired(self) -> bool:
        """After a CancelledError: True when this watch cancelled the task (and then the
        cancellation is withdrawn, as ``asyncio.timeout`` does before raising)."""
        return self.fired and self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
