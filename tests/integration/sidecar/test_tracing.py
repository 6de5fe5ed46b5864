"""OpenTelemetry traces: the spans a collector receives over OTLP/HTTP, and what the upstream
receives in its ``traceparent``.

Each test runs an OTLP receiver of its own (``tests/integration/otlp.py``) and points the
standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` at it before the sidecar starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import (
    FAKE_API_KEY,
    MakeSidecar,
    anthropic_model,
    eventually,
    gemini_model,
    openai_model,
)
from ..otlp import OtlpReceiver, ReceivedSpan

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
PROMPT = "the secret plans of the tracing test"


@pytest.fixture
async def otlp(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OtlpReceiver]:
    """A receiver, and the sidecars of the test exporting to it every 50 ms."""
    async with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "echelon-test-sidecar")
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
        monkeypatch.delenv(_CAPTURE, raising=False)
        yield receiver


_CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {
            "plan_group": {
                "echelon1": {"models": ["flaky", "steady"], "priority": 1},
                "echelon2": {"models": ["claude"], "priority": 2},
            },
            "gem_group": {"echelon1": {"models": ["gem"]}},
        },
        "models": {
            "flaky": openai_model(fake, "up-flaky"),
            "steady": openai_model(fake, "up-steady",
                                   price={"input_per_million": 2.5, "output_per_million": 10}),
            "claude": anthropic_model(fake, "up-claude"),
            "gem": gemini_model(fake, "up-gem"),
        },
    }


def _by_kind(spans: list[ReceivedSpan], kind: str) -> list[ReceivedSpan]:
    return sorted((s for s in spans if s.kind == kind), key=lambda s: s.start_ns)


def _traceparent(header: str) -> tuple[str, str, str]:
    version, trace_id, span_id, flags = header.split("-")
    assert version == "00"
    return trace_id, span_id, flags


async def test_a_request_span_continues_the_callers_trace_with_a_child_span_per_attempt(
    otlp: OtlpReceiver, fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-flaky", "503")
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model="plan_group.echelon1", messages=[{"role": "user", "content": PROMPT}],
        max_tokens=50, temperature=0.3,
        extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
                       "tracestate": "vendor=abc"})
    reply = raw.parse()
    assert reply.usage is not None

    spans = await otlp.wait_for_trace(CALLER_TRACE, count=3)
    [server] = _by_kind(spans, "SERVER")
    failed, served = _by_kind(spans, "CLIENT")
    assert server.parent_span_id == CALLER_SPAN
    assert server.name == "chat plan_group.echelon1"
    assert server.scope == "echelon_sidecar"
    assert server.resource["service.name"] == "echelon-test-sidecar"
    attrs = server.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "plan_group.echelon1"
    assert attrs["gen_ai.response.model"] == "up-steady"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert attrs["gen_ai.request.temperature"] == pytest.approx(0.3)
    assert attrs["echelon.tier"] == "plan_group.echelon1"
    assert attrs["echelon.model_id"] == "steady"
    assert attrs["echelon.attempts"] == 2
    assert attrs["echelon.stop_reason"] == "served"
    assert attrs["http.response.status_code"] == 200
    assert attrs["echelon.request_id"] == raw.headers["x-request-id"]
    assert "error.type" not in attrs and server.status == "UNSET"

    for child in (failed, served):
        assert child.parent_span_id == server.span_id
        assert server.start_ns <= child.start_ns <= child.end_ns <= server.end_ns
    assert failed.start_ns < served.start_ns
    assert failed.name == "chat up-flaky" and served.name == "chat up-steady"
    assert failed.status == "ERROR"
    assert failed.attributes["echelon.attempt.outcome"] == "error"
    assert failed.attributes["echelon.attempt.reason"] == "fallback"
    assert failed.attributes["error.type"] == "server_error"
    assert failed.attributes["http.response.status_code"] == 503
    assert failed.attributes["echelon.attempt.call"] == 1
    assert served.status == "UNSET"
    assert served.attributes["echelon.attempt.outcome"] == "ok"
    assert served.attributes["echelon.attempt.call"] == 2
    assert served.attributes["gen_ai.provider.name"] == "openai"
    assert served.attributes["gen_ai.request.model"] == "up-steady"
    assert served.attributes["echelon.model_id"] == "steady"
    assert served.attributes["server.address"] == "127.0.0.1"

    # each upstream call carried the trace, naming its own attempt's span
    for model, child in (("up-flaky", failed), ("up-steady", served)):
        record = fake.last_request(model)
        assert record is not None
        trace_id, span_id, flags = _traceparent(record.headers["traceparent"])
        assert (trace_id, span_id, flags) == (CALLER_TRACE, child.span_id, "01")
        assert record.headers["tracestate"] == "vendor=abc"


async def test_without_a_caller_trace_the_request_starts_one_the_upstream_continues(
    otlp: OtlpReceiver, fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    await sc.openai.chat.completions.create(model="gem_group", messages=[
        {"role": "user", "content": "hi"}])
    record = fake.last_request("up-gem")
    assert record is not None
    trace_id, span_id, flags = _traceparent(record.headers["traceparent"])
    assert flags == "01"
    spans = await otlp.wait_for_trace(trace_id, count=2)
    [server] = _by_kind(spans, "SERVER")
    [client] = _by_kind(spans, "CLIENT")
    assert server.parent_span_id == ""
    assert client.span_id == span_id and client.parent_span_id == server.span_id
    assert client.attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert server.attributes["gen_ai.usage.input_tokens"] > 0


async def test_a_fallback_to_another_tier_and_a_translated_stream_report_usage(
    otlp: OtlpReceiver, fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-flaky", "503")
    fake.set_fault("up-steady", "reset")
    chunks: list[Any] = []
    await sc.openai_stream(chunks, model="plan_group", messages=[{"role": "user",
                                                                 "content": "hi"}],
                           extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    assert chunks
    spans = await otlp.wait_for_trace(CALLER_TRACE, count=4)
    [server] = _by_kind(spans, "SERVER")
    clients = _by_kind(spans, "CLIENT")
    assert [c.attributes["echelon.model_id"] for c in clients] == ["flaky", "steady", "claude"]
    assert [c.attributes["echelon.attempt.outcome"] for c in clients] == ["error", "error", "ok"]
    assert clients[1].attributes["error.type"]  # the connection was reset: no status
    assert "http.response.status_code" not in clients[1].attributes
    attrs = server.attributes
    assert attrs["echelon.stream"] is True
    assert attrs["echelon.tier"] == "plan_group.echelon2"
    assert attrs["echelon.attempts"] == 3 and attrs["echelon.fallbacks"] >= 1
    assert attrs["gen_ai.provider.name"] == "anthropic"
    # the caller did not ask for usage; the Anthropic stream reported it all the same
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0


async def test_a_request_that_exhausts_its_chain_ends_in_an_error_span(
    otlp: OtlpReceiver, fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("*", "503")
    status, _, _ = await sc.post("/v1/chat/completions", {
        "model": "gem_group", "messages": [{"role": "user", "content": "hi"}]},
        headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    assert status == 502 or status == 503
    spans = await otlp.wait_for_trace(CALLER_TRACE, count=2)
    [server] = _by_kind(spans, "SERVER")
    assert server.status == "ERROR"
    assert server.attributes["error.type"] == "ChainExhausted"
    assert server.attributes["http.response.status_code"] == status
    assert "gen_ai.response.model" not in server.attributes


async def test_skips_without_a_call_are_events_of_the_request_span(
    otlp: OtlpReceiver, fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    config = _config(fake)
    config["task_groups"]["plan_group"]["fallback_config"] = {
        "circuit_breaker": {"failure_threshold": 1, "recovery_time": 300}}
    sc = await make_sidecar(config)
    fake.set_fault("up-flaky", "503")
    await sc.openai.chat.completions.create(model="plan_group", messages=[
        {"role": "user", "content": "first"}])  # opens flaky's circuit
    await sc.openai.chat.completions.create(model="plan_group", messages=[
        {"role": "user", "content": "second"}],
        extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    spans = await otlp.wait_for_trace(CALLER_TRACE, count=2)
    [server] = _by_kind(spans, "SERVER")
    [client] = _by_kind(spans, "CLIENT")
    assert client.attributes["echelon.model_id"] == "steady"
    [skip] = [e for e in server.events if e["name"] == "echelon.skip"]
    assert skip["attributes"]["echelon.model_id"] == "flaky"
    assert skip["attributes"]["echelon.attempt.reason"] == "circuit_open"


async def test_an_unsampled_caller_trace_exports_nothing_and_stays_unsampled_upstream(
    otlp: OtlpReceiver, fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    await sc.openai.chat.completions.create(
        model="gem_group", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"})
    record = fake.last_request("up-gem")
    assert record is not None
    trace_id, _, flags = _traceparent(record.headers["traceparent"])
    assert (trace_id, flags) == (CALLER_TRACE, "00")
    # a sampled request after it is exported: the unsampled one never was
    await sc.openai.chat.completions.create(
        model="gem_group", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"traceparent": f"00-{'1' * 32}-{CALLER_SPAN}-01"})
    await otlp.wait_for_trace("1" * 32, count=2)
    assert otlp.trace(CALLER_TRACE) == []


async def test_no_prompt_reply_or_credential_in_any_span_unless_content_is_opted_in(
    otlp: OtlpReceiver, fake: FakeProvider, make_sidecar: MakeSidecar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sc = await make_sidecar(_config(fake))
    reply = await sc.openai.chat.completions.create(
        model="plan_group", messages=[{"role": "user", "content": PROMPT}],
        extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    answer = reply.choices[0].message.content or ""
    assert answer
    spans = await otlp.wait_for_trace(CALLER_TRACE, count=2)
    dumped = json.dumps([s.__dict__ for s in spans], default=str)
    assert FAKE_API_KEY not in dumped
    assert PROMPT not in dumped and answer not in dumped

    monkeypatch.setenv(_CAPTURE, "true")
    opted = await make_sidecar(_config(fake))
    reply = await opted.openai.chat.completions.create(
        model="plan_group", messages=[{"role": "user", "content": PROMPT}],
        extra_headers={"traceparent": f"00-{'2' * 32}-{CALLER_SPAN}-01"})
    spans = await otlp.wait_for_trace("2" * 32, count=2)
    [server] = _by_kind(spans, "SERVER")
    assert PROMPT in server.attributes["gen_ai.input.messages"]
    assert (reply.choices[0].message.content or "") in server.attributes["gen_ai.output.messages"]
    assert FAKE_API_KEY not in json.dumps([s.__dict__ for s in spans], default=str)


async def test_tracing_off_forwards_the_callers_traceparent_unchanged(
    fake: FakeProvider, make_sidecar: MakeSidecar, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    sc = await make_sidecar(_config(fake))
    assert sc.sidecar.tracing is None
    header = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    await sc.openai.chat.completions.create(
        model="gem_group", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"traceparent": header, "tracestate": "a=1"})
    record = fake.last_request("up-gem")
    assert record is not None
    assert record.headers["traceparent"] == header and record.headers["tracestate"] == "a=1"
    # an invalid one is not forwarded; none at all sends none
    for given in ("00-nothex-00f067aa0ba902b7-01", None):
        await sc.openai.chat.completions.create(
            model="gem_group", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"traceparent": given} if given else {})
        record = fake.last_request("up-gem")
        assert record is not None and "traceparent" not in record.headers


def test_with_tracing_off_nothing_of_opentelemetry_is_imported(tmp_path: Path) -> None:
    """The sidecar started and serving a request, in a process of its own without OTEL_*."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "import aiohttp\n"
        "from echelon_sidecar.server import ServerSettings, Sidecar\n"
        "async def main():\n"
        f"    path = Path({str(tmp_path)!r}) / 'c.yaml'\n"
        "    path.write_text('task_groups: {g: {echelon1: {models: [m]}}}\\n'\n"
        "                    'models: {m: {provider: openai, model: x, '\n"
        "                    'base_url: \"http://127.0.0.1:9\"}}\\n')\n"
        "    async with Sidecar(ServerSettings(config=path, port=0, admin_port=0,\n"
        "                       admin_host='127.0.0.1', reload_interval=0)) as sc:\n"
        "        async with aiohttp.ClientSession() as http:\n"
        "            async with http.post(sc.data_url + '/v1/chat/completions', json={\n"
        "                    'model': 'g', 'messages': [{'role': 'user', 'content': 'x'}]},\n"
        "                    headers={'traceparent': '00-' + '3' * 32 + '-' + '4' * 16 + '-01'}"
        ") as r:\n"
        "                assert r.status >= 500, r.status\n"
        "        assert sc.tracing is None\n"
        "    print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
        "asyncio.run(main())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


async def test_spans_reach_the_collector_when_the_sidecar_stops(
    otlp: OtlpReceiver, fake: FakeProvider, make_sidecar: MakeSidecar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")  # only the shutdown flush sends
    sc = await make_sidecar(_config(fake))
    await sc.openai.chat.completions.create(
        model="gem_group", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    assert otlp.trace(CALLER_TRACE) == []
    await sc.sidecar.stop()
    await eventually(lambda: len(otlp.trace(CALLER_TRACE)) == 2, what="spans flushed on stop")
    assert otlp.content_types == {"application/x-protobuf"}
