"""A real Prometheus (Debian's, from scripts/install-prometheus) scrapes a running sidecar: the
target is up, what it stores is what ``/metrics`` says, and every query of the chart's Grafana
dashboard returns data from it.

Skipped, saying why, only where Prometheus cannot be installed.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from echelon_tools.fake_provider import FakeProvider

from ...prometheus import PrometheusServer
from ...unit.chart.test_dashboard import DASHBOARD, panel_queries
from ..conftest import (
    MakeSidecar,
    RunningSidecar,
    anthropic_model,
    gemini_model,
    metric,
    openai_model,
)

PRICE = {"input_per_million": 2.5, "output_per_million": 10.0}
#: what Grafana puts in place of the dashboard's variables (All = the variables' allValue)
VARIABLES = {"$namespace": ".*", "$group": ".*", "$__rate_interval": "1m", "$__range": "5m"}


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {
            "plan_group": {
                "echelon1": {"models": ["flaky"], "priority": 1},
                "echelon2": {"models": ["steady"], "priority": 2},
                "fallback_config": {"circuit_breaker": {"failure_threshold": 2,
                                                        "recovery_time": 600}},
            },
            "chat_group": {"echelon1": {"models": ["claude", "oa"]}},
            "exec_group": {"echelon1": {"models": ["gem"]}, "echelon2": {"models": ["oa"]}},
        },
        "polling_pools": {
            "exec_pool": {"task_groups": ["exec_group"], "rotation_strategy": "round_robin"},
        },
        "models": {
            "flaky": openai_model(fake, "up-flaky"),
            "steady": openai_model(fake, "up-steady", price=PRICE),
            "claude": anthropic_model(fake, "up-claude", price=PRICE),
            "oa": openai_model(fake, "up-oa", price=PRICE),
            "gem": gemini_model(fake, "up-gem"),
        },
    }


async def _traffic(sc: RunningSidecar) -> None:
    """Served, fallen back, streamed, pooled and failed requests."""
    hi = [{"role": "user", "content": "hello prometheus"}]
    for _ in range(3):
        await sc.openai.chat.completions.create(model="plan_group", messages=hi)
        await sc.openai.chat.completions.create(model="chat_group", messages=hi)
        await sc.openai.chat.completions.create(model="exec_pool", messages=hi)
        chunks: list[Any] = []
        await sc.openai_stream(chunks, model="chat_group", messages=hi,
                               stream_options={"include_usage": True})
        await sc.openai_stream(chunks, model="exec_group.echelon2", messages=hi)
        events: list[str] = []
        await sc.anthropic_stream(events, model="chat_group", max_tokens=64, messages=hi)
    status, _, _ = await sc.post("/v1/chat/completions", {"model": "plan_group.echelon1",
                                                          "messages": hi},
                                 headers={"X-Echelon-Fallback-Groups": "none"})
    assert status >= 500


@asynccontextmanager
async def scraped_sidecar(fake: FakeProvider, make_sidecar: MakeSidecar,
                          tmp_path: Path) -> AsyncIterator[tuple[RunningSidecar,
                                                                 PrometheusServer]]:
    """A sidecar with traffic in two waves, each scraped a few times by a real Prometheus."""
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-flaky", "503")
    target = urlsplit(sc.admin_url).netloc
    async with PrometheusServer(tmp_path / "prometheus", [target]) as prom:
        await prom.wait_for('up{job="echelon"} == 1')
        await _traffic(sc)
        await prom.scrapes(3)
        await _traffic(sc)
        await prom.scrapes(3)
        yield sc, prom


async def test_prometheus_scrapes_the_sidecars_metrics(
    fake: FakeProvider, make_sidecar: MakeSidecar, tmp_path: Path
) -> None:
    async with scraped_sidecar(fake, make_sidecar, tmp_path) as (sc, prom):
        [target] = await prom.targets_up()
        assert target["health"] == "up", target
        text = await sc.metrics()
        # counters as Prometheus stored them are what the sidecar exposes (no traffic since)
        for name, labels in (
            ("echelon_tokens_total", {"group": "chat_group", "kind": "output"}),
            ("echelon_cost_total", {"group": "plan_group"}),
            ("echelon_requests_total", {"target": "plan_group", "outcome": "ok"}),
            ("echelon_fallback_requests_total", {"target": "plan_group"}),
            ("echelon_time_to_first_token_seconds_count", {"group": "chat_group"}),
        ):
            selector = ", ".join(f'{k}="{v}"' for k, v in labels.items())
            [sample] = await prom.query(f"sum(last_over_time({name}{{{selector}}}[1m]))")
            exposed = metric(text, name, **labels)
            assert exposed > 0, f"{name}{labels}"
            assert math.isclose(float(sample["value"][1]), exposed, rel_tol=1e-9), name
        open_circuits = await prom.query(
            'echelon_circuit_state{group="plan_group", model="flaky", state="open"} == 1')
        assert open_circuits, "flaky's circuit is open"


async def test_every_dashboard_query_returns_data_from_a_real_prometheus(
    fake: FakeProvider, make_sidecar: MakeSidecar, tmp_path: Path
) -> None:
    queries = panel_queries(json.loads(DASHBOARD.read_text()))
    async with scraped_sidecar(fake, make_sidecar, tmp_path) as (_, prom):
        empty: list[str] = []
        for title, expr in queries:
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{title}: a variable the test does not know: {expr}"
            result = await prom.query(expr)
            values = [float(r["value"][1]) for r in result]
            if not any(math.isfinite(v) for v in values):
                empty.append(f"{title}: {expr} -> {result}")
        await asyncio.sleep(0)
        assert empty == [], "panels without data:\n" + "\n".join(empty)
