"""`FakeState`: the mutable state one fake provider app holds (settings, faults, counters)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from .faults import FaultBook
from .settings import FakeSettings
from .stats import RequestLog, Stats

__all__ = ["STATE", "FakeState"]


@dataclass
class FakeState:
    settings: FakeSettings
    faults: FaultBook
    stats: Stats
    log: RequestLog
    shutdown: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def from_settings(cls, settings: FakeSettings) -> FakeState:
        book = FaultBook(seed=settings.seed)
        for model, fault in settings.faults.items():
            book.set(model, fault)
        return cls(
            settings=settings,
            faults=book,
            stats=Stats(arrivals_kept=settings.arrivals_kept),
            log=RequestLog(keep=settings.record_requests),
        )

    def reset(self, *, clear_faults: bool = False, seed: int | None = None) -> None:
        """Zero the counters and records; restart fault counters and the RNG."""
        self.stats.reset()
        self.log.clear()
        if clear_faults:
            self.faults.clear()
        self.faults.reseed(seed)


STATE = web.AppKey("echelon_fake_state", FakeState)
