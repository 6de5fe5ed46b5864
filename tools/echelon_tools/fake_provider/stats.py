"""Counters and request records: what the fake upstream saw, for tests to assert on.

`Stats` counts generation requests (chat completions, messages, generateContent): totals per
model and per answered status, requests in flight and the most ever in flight at once (globally
and per model), requests per wall-clock minute, and the arrival times of the latest requests.
`RequestLog` keeps the latest request bodies and headers per model in bounded deques.

`by_status` keys are the HTTP status answered, `"none"` when no status line went out (a `reset`,
or a `hang` ended by the server stopping) and `"client_closed"` when the client left first.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["NO_RESPONSE", "RecordedRequest", "RequestLog", "Stats"]

# `by_status` key for requests that got no status line (reset, hang, client went away first).
NO_RESPONSE = "none"


def _minute_label(minute: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(minute * 60))


class Stats:
    """Request counters. Not thread-safe: used from the server's event loop only."""

    def __init__(self, arrivals_kept: int = 10_000) -> None:
        self._arrivals_kept = arrivals_kept
        self._watchers: set[asyncio.Event] = set()
        self.reset()

    async def wait_for(self, predicate: Callable[[Stats], bool]) -> None:
        """Return once `predicate(self)` holds; re-checked whenever a request begins or ends.

        No timeout of its own: wrap it in `asyncio.timeout(...)`.
        """
        event = asyncio.Event()
        self._watchers.add(event)
        try:
            while not predicate(self):
                await event.wait()
                event.clear()
        finally:
            self._watchers.discard(event)

    def _notify(self) -> None:
        for event in self._watchers:
            event.set()

    def reset(self) -> None:
        self.total = 0
        # connections accepted (with TLS: handshakes completed); see app.count_connections
        self.connections = 0
        self.by_model: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_model_status: dict[str, Counter[str]] = {}
        self.by_endpoint: Counter[str] = Counter()
        self.faults: dict[str, Counter[str]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.in_flight_by_model: Counter[str] = Counter()
        self.max_in_flight_by_model: Counter[str] = Counter()
        self.per_minute: Counter[int] = Counter()
        self.per_minute_by_model: dict[str, Counter[int]] = {}
        self.arrivals: deque[float] = deque(maxlen=self._arrivals_kept)
        self.arrivals_by_model: dict[str, deque[float]] = {}

    def count_endpoint(self, endpoint: str) -> None:
        """Count a non-generation request (model listing) by endpoint only."""
        self.by_endpoint[endpoint] += 1

    def begin(self, model: str, endpoint: str) -> None:
        now = time.time()
        self.total += 1
        self.by_endpoint[endpoint] += 1
        self.by_model[model] += 1
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        flying = self.in_flight_by_model[model] + 1
        self.in_flight_by_model[model] = flying
        if flying > self.max_in_flight_by_model[model]:
            self.max_in_flight_by_model[model] = flying
        minute = int(now // 60)
        self.per_minute[minute] += 1
        per_model = self.per_minute_by_model.get(model)
        if per_model is None:
            per_model = self.per_minute_by_model[model] = Counter()
        per_model[minute] += 1
        self.arrivals.append(now)
        arrivals = self.arrivals_by_model.get(model)
        if arrivals is None:
            arrivals = self.arrivals_by_model[model] = deque(maxlen=self._arrivals_kept)
        arrivals.append(now)
        if self._watchers:
            self._notify()

    def end(self, model: str, status: str) -> None:
        self.in_flight -= 1
        self.in_flight_by_model[model] -= 1
        self.by_status[status] += 1
        per_model = self.by_model_status.get(model)
        if per_model is None:
            per_model = self.by_model_status[model] = Counter()
        per_model[status] += 1
        if self._watchers:
            self._notify()

    def count_fault(self, model: str, kind: str) -> None:
        per_model = self.faults.get(model)
        if per_model is None:
            per_model = self.faults[model] = Counter()
        per_model[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        """The JSON of `GET /_fake/stats`."""
        return {
            "total": self.total,
            "connections": self.connections,
            "by_model": dict(self.by_model),
            "by_status": dict(self.by_status),
            "by_model_status": {m: dict(c) for m, c in self.by_model_status.items()},
            "by_endpoint": dict(self.by_endpoint),
            "faults_injected": {m: dict(c) for m, c in self.faults.items()},
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "in_flight_by_model": {m: n for m, n in self.in_flight_by_model.items()},
            "max_in_flight_by_model": dict(self.max_in_flight_by_model),
            "per_minute": {_minute_label(k): v for k, v in sorted(self.per_minute.items())},
            "per_minute_by_model": {
                m: {_minute_label(k): v for k, v in sorted(c.items())}
                for m, c in self.per_minute_by_model.items()
            },
            "arrivals": list(self.arrivals),
            "arrivals_by_model": {m: list(d) for m, d in self.arrivals_by_model.items()},
        }


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake upstream received it.

    `headers` and `query` are the request's own (case-insensitive, read-only) mappings;
    `to_json()` turns them into plain objects, header names lower-cased.
    """

    time: float
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    model: str
    endpoint: str

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "body": self.body,
            "model": self.model,
            "endpoint": self.endpoint,
        }


class RequestLog:
    """The latest `keep` requests per model (oldest dropped first)."""

    def __init__(self, keep: int = 50) -> None:
        self.keep = keep
        self._by_model: dict[str, deque[RecordedRequest]] = {}
        self._order: deque[RecordedRequest] = deque(maxlen=max(keep, 1) * 16)

    def add(self, record: RecordedRequest) -> None:
        if self.keep <= 0:
            return
        entries = self._by_model.get(record.model)
        if entries is None or entries.maxlen != self.keep:
            entries = self._by_model[record.model] = deque(entries or (), maxlen=self.keep)
        entries.append(record)
        self._order.append(record)

    def get(self, model: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, oldest first: for `model`, or across models (bounded)."""
        if model is None:
            return list(self._order)
        return list(self._by_model.get(model, ()))

    def models(self) -> list[str]:
        return sorted(self._by_model)

    def clear(self) -> None:
        self._by_model.clear()
        self._order.clear()
