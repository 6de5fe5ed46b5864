"""The admin port: probes, /metrics and /v1/status reflect what happened; no secret anywhere."""

from __future__ import annotations

import json
import logging
from typing import Any

import openai
import psutil
import pytest

from echelon_sidecar.cli import build_parser
from echelon_sidecar.server import ServerSettings
from echelon_tools.fake_provider import FakeProvider

from ..conftest import FAKE_API_KEY, HI, MakeSidecar, RunningSidecar, metric, openai_model


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {
            "g": {
                "echelon1": {"models": ["a"], "priority": 1},
                "echelon2": {"models": ["b"], "priority": 2},
                "fallback_config": {"circuit_breaker": {"failure_threshold": 2,
                                                        "recovery_time": 60}},
            },
            "pg": {"echelon1": {"models": ["c", "d"]}},
        },
        "polling_pools": {"pool": {"task_groups": ["pg"], "failure_threshold": 1,
                                   "recovery_time": 60}},
        "models": {name: openai_model(fake, f"up-{name}") for name in "abcd"},
    }


async def _get(sc: RunningSidecar, path: str) -> tuple[int, str]:
    async with sc.http.get(f"{sc.admin_url}{path}") as resp:
        return resp.status, await resp.text()


async def test_probes_answer_ready_once_a_config_is_loaded(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    status, text = await _get(sc, "/healthz")
    assert status == 200 and json.loads(text) == {"status": "ok"}
    status, text = await _get(sc, "/readyz")
    assert status == 200 and json.loads(text)["status"] == "ready"


async def test_a_sidecar_started_on_an_invalid_config_is_not_ready_and_says_why(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar("task_groups:\n  g:\n    echelon1: {models: []}\n")
    status, text = await _get(sc, "/readyz")
    assert status == 503
    assert "models" in text
    code, _, body = await sc.post("/v1/chat/completions", {"model": "g", "messages": HI})
    assert code == 503 and "no valid config" in body["error"]["message"]
    assert (await sc.status())["ready"] is False


async def test_a_pool_flag_naming_no_pool_of_the_config_is_refused_like_a_bad_config(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake), pool="ghost_pool")
    status, text = await _get(sc, "/readyz")
    assert status == 503
    assert "--pool ghost_pool: the config has no polling pool of that name" in text
    assert "(its pools: pool)" in text


async def test_metrics_and_status_reflect_requests_fallbacks_and_failures(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    await sc.openai.chat.completions.create(model="g", messages=HI)
    fake.set_fault("up-a", "503")
    await sc.openai.chat.completions.create(model="g", messages=HI)
    fake.set_fault("up-b", "500")
    with pytest.raises(openai.InternalServerError):
        await sc.openai.chat.completions.create(model="g", messages=HI)
    with pytest.raises(openai.NotFoundError):
        await sc.openai.chat.completions.create(model="ghost", messages=HI)
    fake.set_fault("up-c", "503")
    for _ in range(2):
        await sc.openai.chat.completions.create(model="pool", messages=HI)

    text = await sc.metrics()
    assert metric(text, "echelon_requests_total", target="g", outcome="ok") == 2
    assert metric(text, "echelon_requests_total", target="g", tier="g.echelon1",
                  model="a", outcome="ok") == 1
    assert metric(text, "echelon_requests_total", target="g", tier="g.echelon2",
                  model="b", outcome="ok") == 1
    assert metric(text, "echelon_requests_total", target="g", outcome="ChainExhausted") == 1
    assert metric(text, "echelon_requests_total", target="ghost", outcome="unknown_target") == 1
    assert metric(text, "echelon_requests_total", target="pool", outcome="ok") == 2
    assert metric(text, "echelon_fallbacks_total", target="g") == 2
    assert metric(text, "echelon_fallback_requests_total", target="g", outcome="success") == 1
    assert metric(text, "echelon_fallback_requests_total", target="g", outcome="failure") == 1
    assert metric(text, "echelon_attempts_total", model="a", result="server_error") == 2
    assert metric(text, "echelon_circuit_state", group="g", model="a", state="open") == 1
    assert metric(text, "echelon_circuit_state", group="g", model="b", state="closed") == 1
    assert metric(text, "echelon_in_flight_requests") == 0
    assert metric(text, "echelon_request_duration_seconds_count", target="g") == 3
    assert metric(text, "echelon_pool_instance_healthy", pool="pool", model="c") == 0
    assert metric(text, "echelon_pool_instance_healthy", pool="pool", model="d") == 1

    status = await sc.status()
    assert status["ready"] is True and len(status["config_version"]) >= 8
    instances = {(i["group"], i["model"]): i for i in status["instances"]}
    a, b = instances[("g", "a")], instances[("g", "b")]
    assert (a["state"], a["consecutive_failures"], a["last_error"]) == ("open", 2,
                                                                       "server_error")
    assert (b["state"], b["consecutive_failures"], b["last_error"]) == ("closed", 1,
                                                                       "server_error")
    pool = {i["model"]: i for i in status["pools"]["pool"]}
    assert pool["c"]["healthy"] is False and pool["c"]["consecutive_failures"] >= 1
    assert pool["d"]["healthy"] is True


async def test_no_secret_in_any_admin_response_error_body_or_log_line(
    fake: FakeProvider, make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sc = await make_sidecar(_config(fake))
    await sc.openai.chat.completions.create(model="g", messages=HI)
    sent = fake.last_request("up-a")
    assert sent is not None and sent.headers["Authorization"] == f"Bearer {FAKE_API_KEY}"
    # upstreams that echo the key back in their errors
    fake.set_fault("up-a", f"500:message=internal error for key {FAKE_API_KEY}")
    fake.set_fault("up-b", f"401:message=Incorrect API key provided: {FAKE_API_KEY}")
    with pytest.raises(openai.APIStatusError) as info:
        await sc.openai.chat.completions.create(model="g", messages=HI)
    assert FAKE_API_KEY not in info.value.response.text
    fake.set_fault("up-c", f"429:message=slow down {FAKE_API_KEY}")
    await sc.openai.chat.completions.create(model="pool", messages=HI)
    stream = await sc.anthropic.messages.create(model="pool", max_tokens=20, messages=HI,
                                                stream=True)
    async for _ in stream:
        pass
    for path in ("/healthz", "/readyz", "/metrics", "/v1/status"):
        _, text = await _get(sc, path)
        assert FAKE_API_KEY not in text, path
        assert FAKE_API_KEY[8:] not in text, path
    assert caplog.records, "the failures were logged"
    for record in caplog.records:
        assert FAKE_API_KEY[8:] not in record.getMessage()
        assert FAKE_API_KEY[8:] not in str(vars(record))


async def test_the_data_port_binds_loopback_by_default(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    assert build_parser().parse_args(["--config", "x.yaml"]).host == "127.0.0.1"
    assert ServerSettings(config="x.yaml").host == "127.0.0.1"  # type: ignore[arg-type]
    sc = await make_sidecar(_config(fake))
    listening = {c.laddr.port: c.laddr.ip for c in psutil.Process().net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN}
    assert listening[sc.sidecar.data_port] == "127.0.0.1"
