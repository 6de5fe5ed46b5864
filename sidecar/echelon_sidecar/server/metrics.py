"""Prometheus metrics of one sidecar, fed by the engine's listener hooks.

Labels are bounded by the config (targets, groups, tiers, model ids, error classes); no label
ever carries a credential, a prompt or a response.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..engine import Attempt, BreakerKey, BreakerState, NullListener, Outcome
from .usage import Usage, cost_of

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_STATES = ("closed", "open", "half_open")
_MAX_CACHED_CHILDREN = 10_000


class _Count:
    """An in-process counter with a Gauge's ``inc``/``dec`` (single event loop: no lock)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1

    def get(self) -> float:
        return float(self.value)


class _Children(dict[tuple[str, ...], Any]):
    """``metric.labels(*key)`` cached per label tuple: ``labels()`` validates and locks on
    every call, which the per-request hooks would pay several times per request."""

    __slots__ = ("metric",)

    def __init__(self, metric: Any) -> None:
        super().__init__()
        self.metric = metric

    def __missing__(self, key: tuple[str, ...]) -> Any:
        if len(self) >= _MAX_CACHED_CHILDREN:  # unbounded label values: stay bounded
            self.clear()
        child = self[key] = self.metric.labels(*key)
        return child


class Metrics(NullListener):
    """The sidecar's metrics in their own registry (several sidecars may share a process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "echelon_requests", "Requests by target, serving tier and model, and outcome",
            ["target", "tier", "model", "outcome"], registry=r)
        self.request_seconds = Histogram(
            "echelon_request_duration_seconds", "Time to serve a request (to the commit point "
            "for streams)", ["target", "outcome"], buckets=_LATENCY_BUCKETS, registry=r)
        self.attempts = Counter(
            "echelon_attempts", "Upstream calls and skips, by group, tier, model and result",
            ["group", "tier", "model", "result", "reason"], registry=r)
        self.attempt_seconds = Histogram(
            "echelon_upstream_attempt_duration_seconds", "Duration of upstream calls",
            ["model", "result"], buckets=_LATENCY_BUCKETS, registry=r)
        self.attempts_per_request = Histogram(
            "echelon_request_attempts", "Upstream calls per request", ["target"],
            buckets=(1, 2, 3, 4, 5, 6, 8, 10, 15, 20), registry=r)
        self.fallbacks = Counter(
            "echelon_fallbacks", "Moves to a later step of a chain (or another pool instance)",
            ["target"], registry=r)
        self.fallback_requests = Counter(
            "echelon_fallback_requests", "Requests that needed a fallback, by outcome "
            "(success rate = success / all)", ["target", "outcome"], registry=r)
        self.circuit_state = Gauge(
            "echelon_circuit_state", "1 for the current state of each (group, model) circuit",
            ["group", "model", "state"], registry=r)
        self.transitions = Counter(
            "echelon_circuit_transitions", "Circuit breaker transitions",
            ["group", "model", "from_state", "to_state"], registry=r)
        self.limit_refusals = Counter(
            "echelon_limit_refusals", "Requests refused by a rate or concurrency limit",
            ["level", "key"], registry=r)
        self.queue_depth = Gauge(
            "echelon_queue_depth", "Requests waiting for a concurrency slot", ["level", "key"],
            registry=r)
        # a plain counter read at scrape time: Gauge.inc()/dec() lock on every request
        self.in_flight = _Count()
        Gauge("echelon_in_flight_requests", "Requests being served",
              registry=r).set_function(self.in_flight.get)
        self.reloads = Counter(
            "echelon_config_reloads", "Config reloads by result (success / failure)",
            ["result"], registry=r)
        self.config_valid = Gauge(
            "echelon_config_last_reload_ok", "1 when the last config reload was accepted",
            registry=r)
        self.config_info = Gauge(
            "echelon_config_info", "The loaded config's version", ["version"], registry=r)
        # served requests by the (group, tier) that served them; tokens and cost by model
        self.served_seconds = Histogram(
            "echelon_served_request_duration_seconds", "Time to serve a request completely "
            "(streams: to their last byte), by the group and tier that served it",
            ["group", "tier"], buckets=_LATENCY_BUCKETS, registry=r)
        self.ttft_seconds = Histogram(
            "echelon_time_to_first_token_seconds", "Streams: time from the request to the "
            "first event of the reply sent to the caller, by the group and tier that served it",
            ["group", "tier"], buckets=_LATENCY_BUCKETS, registry=r)
        self.tokens = Counter(
            "echelon_tokens", "Tokens of served replies as their upstream reported them, by "
            "serving group, tier and model, and kind (input: the prompt, cached included; "
            "output: the reply, reasoning included)", ["group", "tier", "model", "kind"],
            registry=r)
        self.cost = Counter(
            "echelon_cost", "Cost of served replies: their tokens at the catalog's price "
            "(models.<id>.price, per million tokens), in the price's currency",
            ["group", "tier", "model"], registry=r)
        self.usage_unreported = Counter(
            "echelon_usage_unreported", "Served replies whose upstream reported no usage "
            "(OpenAI streams without stream_options.include_usage): not in "
            "echelon_tokens_total", ["group", "tier", "model"], registry=r)
        self.pool_healthy = Gauge(
            "echelon_pool_instance_healthy", "1 when a pool instance is in rotation",
            ["pool", "group", "tier", "model"], registry=r)
        for result in ("success", "failure"):
            self.reloads.labels(result)
        self.config_valid.set(1)
        self._version: str | None = None
        self._requests = _Children(self.requests)
        self._request_seconds = _Children(self.request_seconds)
        self._attempts = _Children(self.attempts)
        self._attempt_seconds = _Children(self.attempt_seconds)
        self._attempts_per_request = _Children(self.attempts_per_request)
        self._served_seconds = _Children(self.served_seconds)
        self._ttft_seconds = _Children(self.ttft_seconds)
        self._input_tokens = _Children(self.tokens)
        self._output_tokens = _Children(self.tokens)
        self._cost = _Children(self.cost)
        self._usage_unreported = _Children(self.usage_unreported)

    # -- engine listener hooks ------------------------------------------------------------------

    def on_attempt(self, outcome: Outcome, attempt: Attempt) -> None:
        result = attempt.error_class if attempt.result == "error" and attempt.error_class \
            else attempt.result
        self._attempts[attempt.group, attempt.tier, attempt.model, result,
                       attempt.reason].inc()
        if attempt.call is not None:
            self._attempt_seconds[attempt.model, attempt.result].observe(attempt.duration)

    def on_transition(self, key: BreakerKey, old: BreakerState, new: BreakerState,
                      at: float) -> None:
        group, model = key
        for state in _STATES:
            self.circuit_state.labels(group, model, state).set(1 if state == new.value else 0)
        self.transitions.labels(group, model, old.value, new.value).inc()

    def on_limit_refused(self, level: str, key: str) -> None:
        self.limit_refusals.labels(level, key).inc()

    def on_queue_depth(self, level: str, key: str, depth: int) -> None:
        self.queue_depth.labels(level, key).set(depth)

    # -- server hooks ----------------------------------------------------------------------------

    def observe_request(self, target: str, outcome: Outcome | None, result: str,
                        seconds: float) -> None:
        tier = model = ""
        if outcome is not None:
            if outcome.group is not None:
                tier, model = f"{outcome.group}.{outcome.tier}", outcome.model or ""
            self._attempts_per_request[target,].observe(outcome.attempt_count)
            if outcome.fallbacks_taken:
                self.fallbacks.labels(target).inc(outcome.fallbacks_taken)
                self.fallback_requests.labels(
                    target, "success" if result == "ok" else "failure").inc()
        self._requests[target, tier, model, result].inc()
        self._request_seconds[target, result].observe(seconds)

    def observe_served(self, outcome: Outcome, usage: Usage | None, seconds: float,
                       ttft: float | None = None) -> None:
        """A served request, once its reply went out whole: its duration, time to first
        token (streams), tokens and their cost."""
        group, tier, model = outcome.group or "", outcome.tier or "", outcome.model or ""
        self._served_seconds[group, tier].observe(seconds)
        if ttft is not None:
            self._ttft_seconds[group, tier].observe(ttft)
        key = (group, tier, model)
        if usage is None:
            self._usage_unreported[key].inc()
            return
        inp, out = usage
        if inp:
            self._input_tokens[group, tier, model, "input"].inc(inp)
        if out:
            self._output_tokens[group, tier, model, "output"].inc(out)
        settings = outcome.settings
        price = settings.model.price if settings is not None else None
        if price is not None:
            self._cost[key].inc(cost_of(usage, price))

    def set_config(self, version: str, breakers: list[dict[str, object]]) -> None:
        if self._version is not None and self._version != version:
            self.config_info.remove(self._version)
        self._version = version
        self.config_info.labels(version).set(1)
        for item in breakers:
            for state in _STATES:
                self.circuit_state.labels(str(item["group"]), str(item["model"]), state).set(
                    1 if state == item["state"] else 0)

    def set_pool_health(self, pools: dict[str, list[dict[str, object]]]) -> None:
        for pool, instances in pools.items():
            for item in instances:
                self.pool_healthy.labels(pool, str(item["group"]), str(item["tier"]),
                                         str(item["model"])).set(1 if item["healthy"] else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
