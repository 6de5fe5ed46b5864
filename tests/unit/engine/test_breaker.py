"""Circuit breaker transitions, half-open probes, growing open period, events."""

from __future__ import annotations

from echelon_sidecar.config import CircuitBreaker
from echelon_sidecar.engine import Breaker, BreakerState
from echelon_sidecar.engine.breaker import NORMAL, REFUSED

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def make(**cfg: float) -> tuple[Breaker, list[tuple[str, str, float]]]:
    events: list[tuple[str, str, float]] = []
    breaker = Breaker(("g", "m"), CircuitBreaker(**cfg),  # type: ignore[arg-type]
                      lambda key, old, new, at: events.append((old.value, new.value, at)))
    return breaker, events


def trip(breaker: Breaker, now: float, times: int) -> None:
    for _ in range(times):
        breaker.failure(breaker.admit(now), now, "server_error")


def test_closed_opens_after_threshold_consecutive_failures() -> None:
    breaker, events = make(failure_threshold=3, recovery_time=10)
    trip(breaker, 0.0, 2)
    breaker.success(breaker.admit(0.0), 0.0)  # a success resets the count
    trip(breaker, 1.0, 2)
    assert breaker.state is CLOSED
    trip(breaker, 2.0, 1)
    assert breaker.state is OPEN
    assert events == [("closed", "open", 2.0)]
    assert breaker.open_until == 12.0


def test_open_refuses_until_its_period_elapses_then_half_opens() -> None:
    breaker, events = make(failure_threshold=1, recovery_time=10)
    trip(breaker, 0.0, 1)
    assert breaker.admit(9.99) == REFUSED
    assert not breaker.available(9.99)
    assert breaker.available(10.0)
    ticket = breaker.admit(10.0)
    assert ticket > 0
    assert breaker.state is HALF
    assert events[-1] == ("open", "half_open", 10.0)


def test_half_open_admits_exactly_its_probes_concurrently() -> None:
    breaker, _ = make(failure_threshold=1, recovery_time=10, half_open_requests=2)
    trip(breaker, 0.0, 1)
    first, second = breaker.admit(10.0), breaker.admit(10.0)
    assert first > 0 and second > 0
    assert breaker.admit(10.0) == REFUSED  # others see it as open
    breaker.success(first, 11.0)
    assert breaker.state is HALF  # all probes must succeed
    assert breaker.admit(11.0) == REFUSED  # no third probe in this episode
    breaker.success(second, 12.0)
    assert breaker.state is CLOSED
    assert breaker.admit(12.0) == NORMAL


def test_a_probe_without_verdict_gives_its_place_back() -> None:
    breaker, _ = make(failure_threshold=1, recovery_time=10)
    trip(breaker, 0.0, 1)
    ticket = breaker.admit(10.0)
    assert breaker.admit(10.0) == REFUSED
    breaker.release(ticket)
    assert breaker.admit(10.0) > 0


def test_failed_probe_reopens_for_a_growing_period_up_to_the_cap() -> None:
    breaker, events = make(failure_threshold=1, recovery_time=10, recovery_backoff=2,
                           max_recovery_time=35)
    trip(breaker, 0.0, 1)
    periods = []
    now = 0.0
    for _ in range(4):
        now = breaker.open_until  # type: ignore[assignment]
        ticket = breaker.admit(now)
        breaker.failure(ticket, now, "timeout")
        periods.append(breaker.open_until - now)  # type: ignore[operator]
    assert periods == [20.0, 35.0, 35.0, 35.0]
    assert [e[:2] for e in events[:3]] == [("closed", "open"), ("open", "half_open"),
                                          ("half_open", "open")]
    # closing resets the growth
    now = breaker.open_until  # type: ignore[assignment]
    breaker.success(breaker.admit(now), now)
    assert breaker.state is CLOSED and breaker.reopen_count == 0
    trip(breaker, now, 1)
    assert breaker.open_until - now == 10.0  # type: ignore[operator]


def test_default_cap_is_ten_times_recovery_time() -> None:
    breaker, _ = make(failure_threshold=1, recovery_time=1, recovery_backoff=10)
    trip(breaker, 0.0, 1)
    for _ in range(3):
        now = breaker.open_until
        breaker.failure(breaker.admit(now), now, "x")  # type: ignore[arg-type]
    assert breaker.open_until - now == 10.0  # type: ignore[operator]


def test_broken_opens_at_once_for_the_longest_period() -> None:
    breaker, events = make(failure_threshold=5, recovery_time=10, max_recovery_time=300)
    breaker.broken(1.0, "unauthorized")
    assert breaker.state is OPEN and breaker.open_until == 301.0
    assert breaker.last_error_class == "unauthorized"
    assert events == [("closed", "open", 1.0)]


def test_late_results_of_calls_admitted_while_closed_do_not_move_an_open_circuit() -> None:
    breaker, _ = make(failure_threshold=1, recovery_time=10)
    early = breaker.admit(0.0)
    trip(breaker, 0.0, 1)
    breaker.success(early, 1.0)
    assert breaker.state is OPEN
    ticket = breaker.admit(10.0)
    breaker.failure(early, 10.5, "x")  # a stale result does not decide the probe
    assert breaker.state is HALF
    breaker.success(ticket, 11.0)
    assert breaker.state is CLOSED


def test_snapshot_reports_state_and_timing() -> None:
    breaker, _ = make(failure_threshold=1, recovery_time=10)
    trip(breaker, 0.0, 1)
    snap = breaker.snapshot(4.0)
    assert snap["state"] == "open"
    assert snap["open_since"] == 0.0 and snap["open_until"] == 10.0
    assert snap["retry_in"] == 6.0
    assert snap["last_error_class"] == "server_error"
    assert breaker.snapshot(10.0)["state"] == "half_open"


def test_a_circuit_failing_its_probes_for_hours_stays_at_the_cap() -> None:
    breaker, _ = make(failure_threshold=1, recovery_time=1, recovery_backoff=2)
    trip(breaker, 0.0, 1)
    for _ in range(3000):  # 2.0 ** 3000 would overflow if the count kept growing
        now = breaker.open_until
        breaker.failure(breaker.admit(now), now, "server_error")  # type: ignore[arg-type]
    assert breaker.open_until - now == 10.0  # type: ignore[operator]
    assert breaker.reopen_count < 10
