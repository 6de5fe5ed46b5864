"""Test support: a scripted fake provider on the fake clock, and config builders."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from echelon_sidecar.config import EchelonConfig
from echelon_sidecar.engine import (
    AttemptSettings,
    Engine,
    EngineRequest,
    FakeClock,
    Instance,
    InstanceCannotServe,
    NullListener,
    UpstreamError,
)

MODELS: dict[str, dict[str, Any]] = {
    "oa-1": {"provider": "openai", "model": "gpt-4o"},
    "oa-2": {"provider": "openai", "model": "gpt-4o-mini"},
    "oa-3": {"provider": "openai", "model": "gpt-4.1"},
    "an-1": {"provider": "anthropic", "model": "claude-sonnet"},
    "an-2": {"provider": "anthropic", "model": "claude-haiku"},
    "gm-1": {"provider": "gemini", "model": "gemini-pro"},
    "local-1": {"provider": "openai_compatible", "model": "llama",
                "base_url": "http://local.test:8000/v1"},
}

Behaviour = Callable[[FakeClock], Awaitable[Any]]


def ok(value: Any = None) -> Behaviour:
    async def run(clock: FakeClock) -> Any:
        return value
    return run


def fail(status: int | None, error_class: str | None = None, *, retry_after: float | None = None,
         message: str = "upstream said no", body: object = None) -> Behaviour:
    async def run(clock: FakeClock) -> Any:
        raise UpstreamError(status, error_class, message, retry_after, body=body)
    return run


def slow(seconds: float, then: Behaviour | None = None) -> Behaviour:
    async def run(clock: FakeClock) -> Any:
        await clock.sleep(seconds)
        return await (then or ok())(clock)
    return run


def hang() -> Behaviour:
    async def run(clock: FakeClock) -> Any:
        await asyncio.get_running_loop().create_future()
    return run


def cannot(reason: str = "no tools") -> Behaviour:
    async def run(clock: FakeClock) -> Any:
        raise InstanceCannotServe(reason)
    return run


def crash() -> Behaviour:
    async def run(clock: FakeClock) -> Any:
        raise ValueError("provider bug")
    return run


@dataclass
class Call:
    at: float
    model: str
    settings: AttemptSettings
    request: EngineRequest


@dataclass
class FakeProvider:
    """Answers per model from a script (then ``default``); measures calls and concurrency."""

    clock: FakeClock
    default: Behaviour = field(default_factory=ok)
    scripts: dict[str, list[Behaviour]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight: Counter[str] = field(default_factory=Counter)
    total_in_flight: int = 0
    max_total_in_flight: int = 0
    probes: list[tuple[float, str]] = field(default_factory=list)
    probe_scripts: dict[str, list[Behaviour]] = field(default_factory=dict)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)

    def on(self, model: str, *behaviours: Behaviour) -> FakeProvider:
        self.scripts.setdefault(model, []).extend(behaviours)
        return self

    def always(self, model: str, behaviour: Behaviour) -> FakeProvider:
        self.behaviours[model] = behaviour
        return self

    def on_probe(self, model: str, *behaviours: Behaviour) -> FakeProvider:
        self.probe_scripts.setdefault(model, []).extend(behaviours)
        return self

    @property
    def models_called(self) -> list[str]:
        return [c.model for c in self.calls]

    async def call(self, instance: Instance, request: EngineRequest,
                   settings: AttemptSettings) -> Any:
        model = instance.model_id
        script = self.scripts.get(model)
        behaviour = script.pop(0) if script else self.behaviours.get(model, self.default)
        self.calls.append(Call(self.clock.now(), model, settings, request))
        self.in_flight[model] += 1
        self.total_in_flight += 1
        self.max_in_flight[model] = max(self.max_in_flight[model], self.in_flight[model])
        self.max_total_in_flight = max(self.max_total_in_flight, self.total_in_flight)
        try:
            result = await behaviour(self.clock)
            return result if result is not None else f"answer from {model}"
        finally:
            self.in_flight[model] -= 1
            self.total_in_flight -= 1

    async def probe(self, instance: Instance) -> None:
        self.probes.append((self.clock.now(), instance.model_id))
        script = self.probe_scripts.get(instance.model_id)
        if script:
            await script.pop(0)(self.clock)


class Recorder(NullListener):
    """Records every event."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, str, str]] = []
        self.transitions: list[tuple[tuple[str, str], str, str, float]] = []
        self.refusals: list[tuple[str, str]] = []
        self.outcomes: list[Any] = []
        self.depths: list[tuple[str, str, int]] = []

    def on_attempt(self, outcome: Any, attempt: Any) -> None:
        self.attempts.append((attempt.model, attempt.result, attempt.reason))

    def on_transition(self, key: Any, old: Any, new: Any, at: float) -> None:
        self.transitions.append((key, old.value, new.value, at))

    def on_limit_refused(self, level: str, key: str) -> None:
        self.refusals.append((level, key))

    def on_outcome(self, outcome: Any) -> None:
        self.outcomes.append(outcome)

    def on_queue_depth(self, level: str, key: str, depth: int) -> None:
        self.depths.append((level, key, depth))


def tier(*models: str, priority: int | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"models": list(models), **extra}
    if priority is not None:
        out["priority"] = priority
    return out


def make_config(
    groups: dict[str, Any],
    *,
    pools: dict[str, Any] | None = None,
    nodes: dict[str, Any] | None = None,
    models: dict[str, Any] | None = None,
    **sections: Any,
) -> EchelonConfig:
    data: dict[str, Any] = {
        "task_groups": groups,
        "models": {**MODELS, **(models or {})},
        "polling_pools": pools or {},
        "workflow_nodes": nodes or {},
        **sections,
    }
    return EchelonConfig.model_validate(data)


def fallback(**values: Any) -> dict[str, Any]:
    """A fallback_config block with no retry delay unless given."""
    return {"retry_delay": 0, **values}


class Harness:
    """An engine on a fake clock with a fake provider; requests driven to completion."""

    def __init__(self, config: EchelonConfig, *, seed: int = 7, listeners: Any = ()) -> None:
        self.clock = FakeClock(1000.0)
        self.provider = FakeProvider(self.clock)
        self.rng = random.Random(seed)
        self.engine = Engine(config, self.provider, clock=self.clock, rng=self.rng,
                             listeners=listeners)

    def request(self, model: str, *, node: str | None = None, timeout: float | None = None,
                **fields: Any) -> EngineRequest:
        target = self.engine.resolve(model, node)
        deadline = self.clock.now() + timeout if timeout is not None else None
        return EngineRequest(target, deadline=deadline, **fields)

    async def call(self, model: str, **kwargs: Any) -> Any:
        """Serve one request to completion (time jumps as needed); returns the outcome."""
        return await self.clock.drive(self.engine.call(self.request(model, **kwargs)))

    async def fails(self, model: str, **kwargs: Any) -> Any:
        """Serve one request expected to fail; returns the raised RoutingError."""
        try:
            await self.call(model, **kwargs)
        except Exception as exc:  # the caller asserts on the type
            return exc
        raise AssertionError("the request was served")
