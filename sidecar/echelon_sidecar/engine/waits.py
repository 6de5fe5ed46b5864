"""Waiting out a Retry-After: only when nothing else of the route could serve.

An instance whose upstream answered with ``Retry-After`` is remembered (per model id, for
every request) until that time. While it runs, requests skip the instance at once, without a
call and without waiting (``attempt``), and go on along their pool and chain. Only when the
whole route -- pool, chain, last resort -- ended without serving does :func:`wait_for_retry_after`
consider the instances this request skipped that way, soonest first:

- it waits until the soonest one may be called again -- and at least the backoff before a
  next call (``retry_delay``) -- if that is before the request's deadline (without a
  deadline: if the Retry-After is at most the entry group's ``max_retry_delay``), then
  attempts it; a failure moves on to the next soonest, while calls remain (``max_attempts``);
- when none can be called before the deadline, the request ends ``rate_limited``: the caller
  gets 429 with a ``Retry-After`` equal to the soonest instance's (see ``failure``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .attempt import attempt, backoff_delay
from .steps import NEXT, SERVED, STOP, Step

if TYPE_CHECKING:
    from .run import Run, Waiting

__all__ = ["soonest_retry", "wait_for_retry_after"]


def soonest_retry(run: Run) -> Waiting | None:
    """The remembered instance whose Retry-After ends first (None when there is none)."""
    waiting = run.waiting
    if not waiting:
        return None
    return min(waiting, key=lambda w: w.inst.memo.until)


async def wait_for_retry_after(run: Run) -> Step:
    """Call the instances that asked to wait, soonest first; SERVED, STOP or NEXT."""
    clock = run.env.clock
    for _ in range(4 * len(run.waiting)):  # an instance asked to wait again goes back in line
        soonest = soonest_retry(run)
        if soonest is None:
            break
        if run.capped():
            return STOP
        now = clock.now()
        until = soonest.inst.memo.until
        if run.deadline is not None:
            if until >= run.deadline:
                break
        elif until - now > run.max_retry_delay:
            break
        wait = max(until - now, backoff_delay(run))
        if run.deadline is not None and now + wait >= run.deadline:
            break
        run.waiting.remove(soonest)
        if wait > 0.0:
            await clock.sleep(wait)
        result = await attempt(run, soonest.inst, soonest.phase, soonest.health,
                               soonest.bypass, waited=True)
        if result is SERVED or result is STOP:
            return result
    return NEXT
