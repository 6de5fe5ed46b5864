"""What one attempt, or one walk over a chain or a pool, tells its caller.

=============  ========================================================================
``SERVED``     the attempt served the request (the walk ends; the outcome is ready)
``FAILED``     the call was made and failed; the walker picks what to try next
``SKIP_MODEL`` no call: this instance is out for the rest of this request
``SKIP_TIER``  no call: a tier-level limit refused; every instance of the tier is out
``STOP``       the request ends now (deadline, rejected by the upstream, attempt cap)
``NEXT``       (walkers only) this phase is exhausted: go on to the next phase
=============  ========================================================================

Skips are counted by :class:`SkipKind` so that the final error says why nothing was called.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["FAILED", "NEXT", "SERVED", "SKIP_MODEL", "SKIP_TIER", "STOP", "SkipKind", "Step"]


class Step(IntEnum):
    SERVED = 0
    FAILED = 1
    SKIP_MODEL = 2
    SKIP_TIER = 3
    STOP = 4
    NEXT = 5


SERVED, FAILED, SKIP_MODEL, SKIP_TIER, STOP, NEXT = Step
"""The members as module constants: the hot path compares against these (reading
``Step.SERVED`` goes through the enum class, ~60 ns on CPython 3.11; a global, ~5 ns)."""


class SkipKind(IntEnum):
    OPEN = 0
    """open circuit, or a pool instance out of rotation"""
    LIMIT = 1
    """a local rate or concurrency limit refused"""
    UNSERVABLE = 2
    """the request asks for something this instance cannot do (``InstanceCannotServe``)"""
    WAITING = 3
    """the instance asked to wait (Retry-After) and the wait has not passed"""
    OTHER = 4
    """the instance can never serve its tier (not in the catalog, no reasoning control)"""
