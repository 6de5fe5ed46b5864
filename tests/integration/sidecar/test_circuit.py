"""Circuit breakers seen from outside: an open circuit stops calls, then half-open recovery."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import HI, MakeSidecar, RunningSidecar, eventually, metric, openai_model


def _config(fake: FakeProvider, recovery: float = 0.3) -> dict[str, Any]:
    return {
        "task_groups": {
            "g": {
                "echelon1": {"models": ["flaky"], "priority": 1},
                "echelon2": {"models": ["steady"], "priority": 2},
                "fallback_config": {"circuit_breaker": {
                    "failure_threshold": 2, "recovery_time": recovery, "half_open_requests": 1,
                }},
            },
        },
        "models": {"flaky": openai_model(fake, "up-flaky"),
                   "steady": openai_model(fake, "up-steady")},
    }


def _instance(status: dict[str, Any], model: str) -> dict[str, Any]:
    (found,) = [i for i in status["instances"] if i["model"] == model]
    return found


async def _served_by(sc: RunningSidecar) -> tuple[str, str]:
    raw = await sc.openai.chat.completions.with_raw_response.create(model="g", messages=HI)
    return raw.headers["x-echelon-served-by"], raw.headers["x-echelon-attempts"]


async def test_the_circuit_opens_after_the_threshold_and_the_instance_is_no_longer_called(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake, recovery=60))
    fake.set_fault("up-flaky", "503")
    for _ in range(2):
        assert await _served_by(sc) == ("steady", "2")
    assert fake.stats()["by_model"]["up-flaky"] == 2
    flaky = _instance(await sc.status(), "flaky")
    assert flaky["state"] == "open"
    assert flaky["consecutive_failures"] == 2
    assert flaky["last_error"] == "server_error"
    assert flaky["provider"] == "openai"
    assert flaky["open_since"] is not None and flaky["open_until"] > flaky["open_since"]
    for _ in range(3):
        assert await _served_by(sc) == ("steady", "1")
    assert fake.stats()["by_model"]["up-flaky"] == 2, "an open circuit makes no call"
    text = await sc.metrics()
    assert metric(text, "echelon_circuit_state", group="g", model="flaky", state="open") == 1
    assert metric(text, "echelon_circuit_state", group="g", model="flaky", state="closed") == 0
    assert metric(text, "echelon_circuit_transitions_total", group="g", model="flaky",
                  from_state="closed", to_state="open") == 1
    assert metric(text, "echelon_attempts_total", model="flaky", reason="circuit_open") == 3


async def test_an_open_circuit_turns_half_open_after_recovery_time_and_a_good_probe_closes_it(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake, recovery=0.3))
    fake.set_fault("up-flaky", "503")
    for _ in range(2):
        await _served_by(sc)
    assert _instance(await sc.status(), "flaky")["state"] == "open"
    fake.clear_faults()

    async def half_open() -> bool:
        return _instance(await sc.status(), "flaky")["state"] == "half_open"

    await eventually(half_open, within=5, what="the circuit to turn half-open")
    assert await _served_by(sc) == ("flaky", "1"), "the probe goes to the recovering instance"
    flaky = _instance(await sc.status(), "flaky")
    assert flaky["state"] == "closed"
    assert flaky["consecutive_failures"] == 0
    assert fake.stats()["by_model"]["up-flaky"] == 3
    text = await sc.metrics()
    assert metric(text, "echelon_circuit_state", group="g", model="flaky", state="closed") == 1
    assert metric(text, "echelon_circuit_transitions_total", group="g", model="flaky",
                  from_state="half_open", to_state="closed") == 1


async def test_a_failing_half_open_probe_opens_the_circuit_again(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake, recovery=0.3))
    fake.set_fault("up-flaky", "503")
    for _ in range(2):
        await _served_by(sc)

    async def half_open() -> bool:
        return _instance(await sc.status(), "flaky")["state"] == "half_open"

    await eventually(half_open, within=5, what="the circuit to turn half-open")
    assert await _served_by(sc) == ("steady", "2")
    assert fake.stats()["by_model"]["up-flaky"] == 3
    flaky = _instance(await sc.status(), "flaky")
    assert flaky["state"] == "open"
    assert await _served_by(sc) == ("steady", "1")
    assert fake.stats()["by_model"]["up-flaky"] == 3


async def test_every_circuit_open_fails_fast_with_503_and_a_retry_after(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    config = _config(fake, recovery=60)
    config["task_groups"]["g"]["fallback_config"]["circuit_breaker"]["failure_threshold"] = 1
    sc = await make_sidecar(config)
    fake.set_fault("*", "503")
    with pytest.raises(openai.InternalServerError) as info:
        await sc.openai.chat.completions.create(model="g", messages=HI)
    assert info.value.status_code == 502
    assert info.value.body["code"] == "fallback_chain_exhausted"  # type: ignore[index]
    with pytest.raises(openai.InternalServerError) as info:
        await sc.openai.chat.completions.create(model="g", messages=HI)
    err = info.value
    assert err.status_code == 503
    assert err.body["code"] == "all_circuits_open"  # type: ignore[index]
    assert 50 <= int(err.response.headers["retry-after"]) <= 60
    assert [a["reason"] for a in err.body["attempts"]] == ["circuit_open"] * 2  # type: ignore[index]
    assert fake.stats()["total"] == 2
