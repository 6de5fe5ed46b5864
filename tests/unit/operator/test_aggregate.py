"""Polling sidecars' /v1/status (real HTTP on loopback) and adding up their circuits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from echelon_operator.aggregate import (
    MAX_BODY,
    SidecarReport,
    SidecarTarget,
    aggregate,
    budget_members,
    poll_sidecars,
    sidecar_targets,
)


def status_doc(*states: tuple[str, str, str], ready: bool = True, **extra: Any) -> dict:
    """A /v1/status document per docs/status-api.md."""
    return {
        "config_version": "abc", "ready": ready, "pool": "p", "sidecars": 2,
        "reload": {"reloads": 1, "failures": 0, "last_error": None, "last_attempt": 1.0},
        "instances": [
            {"group": g, "model": m, "provider": "openai", "state": s,
             "consecutive_failures": 3 if s != "closed" else 0,
             "last_error": "http_503" if s != "closed" else None,
             "open_since": None, "open_until": None}
            for g, m, s in states
        ],
        "pools": {}, "limits": {}, **extra,
    }


def pod(name: str, phase: str = "Running", ip: str | None = "127.0.0.1", port: int = 9090,
        sidecar: bool = True, deleting: bool = False) -> dict:
    containers: list[dict[str, Any]] = [{"name": "app"}]
    if sidecar:
        containers.append({"name": "echelon-sidecar", "ports": [
            {"name": "echelon-http", "containerPort": 8080},
            {"name": "echelon-admin", "containerPort": port}]})
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {"phase": phase}
    if ip:
        status["podIP"] = ip
    return {"metadata": meta, "spec": {"containers": containers}, "status": status}


def test_targets_are_running_pods_with_the_sidecars_admin_port() -> None:
    targets = sidecar_targets([
        pod("b", port=9191), pod("a"), pod("pending", phase="Pending"), pod("no-ip", ip=None),
        pod("plain", sidecar=False), pod("going", deleting=True),
    ])
    assert targets == [SidecarTarget("a", "127.0.0.1", 9090), SidecarTarget("b", "127.0.0.1", 9191)]
    assert targets[0].url == "http://127.0.0.1:9090/v1/status"
    assert SidecarTarget("c", "fd00::1", 1).url == "http://[fd00::1]:1/v1/status"


def test_budget_members_are_the_pods_running_or_about_to_run_the_pools_sidecar() -> None:
    def serving(p: dict, pool: str = "p") -> dict:
        p["spec"]["volumes"] = [{"name": "echelon-config",
                                 "configMap": {"name": f"echelon-pool-{pool}"}}]
        return p

    members = budget_members([
        serving(pod("web-b")), serving(pod("web-a", phase="Pending", ip=None)),
        serving(pod("web-c", phase="Failed")), serving(pod("web-d", phase="Succeeded")),
        serving(pod("web-e", deleting=True)), pod("plain", sidecar=False),
        serving(pod("web-f"), pool="other"),  # its Deployment was relabelled: not this pool's
    ], "p")
    assert members == ("web-a", "web-b")


def native(p: dict) -> dict:
    """The same pod with its sidecar as a native sidecar (an init container, restart Always)."""
    spec = p["spec"]
    sidecars = [c for c in spec["containers"] if c["name"] == "echelon-sidecar"]
    spec["containers"] = [c for c in spec["containers"] if c["name"] != "echelon-sidecar"]
    spec["initContainers"] = [{**c, "restartPolicy": "Always"} for c in sidecars]
    spec["volumes"] = [{"name": "echelon-config", "configMap": {"name": "echelon-pool-p"}}]
    return p


def test_native_sidecars_are_polled_and_hold_budget_shares_like_regular_ones() -> None:
    pods = [native(pod("job-a")), native(pod("job-b", phase="Succeeded")),
            native(pod("web-c", port=9191))]
    assert sidecar_targets(pods) == [SidecarTarget("job-a", "127.0.0.1", 9090),
                                     SidecarTarget("web-c", "127.0.0.1", 9191)]
    # a Job's pod that completed holds no share any more
    assert budget_members(pods, "p") == ("job-a", "web-c")
    plain_init = pod("init-only", sidecar=False)
    plain_init["spec"]["initContainers"] = [{"name": "echelon-sidecar"}]  # runs once, exits
    assert sidecar_targets([plain_init]) == []


def test_aggregate_counts_states_per_group_and_model() -> None:
    t = SidecarTarget("x", "127.0.0.1", 1)
    health = aggregate([
        SidecarReport(t, status_doc(("g", "m1", "open"), ("g", "m2", "closed"))),
        SidecarReport(t, status_doc(("g", "m1", "half_open"), ("g", "m2", "closed"))),
        SidecarReport(t, status_doc(("g", "m1", "closed"), ready=False)),
        SidecarReport(t, error="no answer within 1s"),
    ])
    assert health.polled == 4 and health.ready == 2
    m1 = health.counts[("g", "m1")]
    assert (m1.closed, m1.open, m1.half_open, m1.last_error) == (1, 1, 1, "http_503")
    assert health.counts[("g", "m2")].closed == 2
    assert health.problems[0] == "1 sidecar(s) did not answer: x (no answer within 1s)"
    assert "1 sidecar(s) answer but are not ready" in health.problems
    assert health.versions == {"abc": 3}


def test_a_refused_reload_is_a_problem_and_unknown_keys_are_ignored() -> None:
    t = SidecarTarget("x", "127.0.0.1", 1)
    doc = status_doc(("g", "m", "closed"), future_field={"x": 1})
    doc["reload"]["last_error"] = "config.yaml:3: error: bad"
    doc["instances"].append({"group": "g", "model": "m9", "state": "weird"})
    health = aggregate([SidecarReport(t, doc)])
    assert list(health.counts) == [("g", "m")]
    assert health.problems == ["sidecar x refused a new config: config.yaml:3: error: bad"]


@pytest.fixture
async def sidecars() -> Any:
    """Tiny status servers on loopback: a healthy one, a broken one, a slow one."""
    gate = asyncio.Event()
    in_flight = {"now": 0, "max": 0}

    async def healthy(_: web.Request) -> web.Response:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.01)
        in_flight["now"] -= 1
        return web.json_response(status_doc(("g", "m", "open")))

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async def slow(_: web.Request) -> web.Response:
        await gate.wait()
        return web.json_response(status_doc())

    async def garbage(_: web.Request) -> web.Response:
        return web.Response(text="not json", content_type="application/json")

    async def huge(_: web.Request) -> web.Response:
        return web.Response(body=b"[" + b"0," * (MAX_BODY // 2) + b"0]",
                            content_type="application/json")

    async def echo(request: web.Request) -> web.Response:
        doc = status_doc()
        doc["seen"] = {"method": request.method, "host": request.host,
                       "agent": request.headers.get("User-Agent"),
                       "keep_alive": request.keep_alive}
        return web.json_response(doc)

    runners, ports = [], {}
    for name, handler in (("healthy", healthy), ("broken", broken), ("slow", slow),
                          ("garbage", garbage), ("huge", huge), ("echo", echo)):
        app = web.Application()
        app.router.add_get("/v1/status", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports[name] = runner.addresses[0][1]
        runners.append(runner)
    yield ports, in_flight
    gate.set()
    for runner in runners:
        await runner.cleanup()


async def test_poll_reports_each_sidecar_bounded_by_timeout(sidecars) -> None:
    ports, _ = sidecars
    targets = [SidecarTarget(name, "127.0.0.1", port) for name, port in sorted(ports.items())]
    targets.append(SidecarTarget("closed-port", "127.0.0.1", 1))
    reports = await poll_sidecars(targets, limit_s=0.5, concurrency=8)
    by_pod = {r.target.pod: r for r in reports}
    assert by_pod["healthy"].status is not None
    assert by_pod["broken"].error == "HTTP 500"
    assert by_pod["slow"].error == "no answer within 0.5s"
    assert by_pod["garbage"].error == "status is not valid JSON"
    assert by_pod["huge"].error == "status document too large"
    seen = by_pod["echo"].status["seen"]  # type: ignore[index]
    assert seen == {"method": "GET", "host": f"127.0.0.1:{ports['echo']}",
                    "agent": "echelon-operator", "keep_alive": False}
    assert by_pod["closed-port"].error is not None and by_pod["closed-port"].status is None
    health = aggregate(reports)
    assert health.counts[("g", "m")].open == 1


async def test_poll_respects_the_concurrency_bound(sidecars) -> None:
    ports, in_flight = sidecars
    targets = [SidecarTarget(f"p{i}", "127.0.0.1", ports["healthy"]) for i in range(12)]
    reports = await poll_sidecars(targets, limit_s=5, concurrency=3)
    assert all(r.status is not None for r in reports)
    assert in_flight["max"] <= 3


async def test_a_shared_limit_bounds_polls_over_several_calls(sidecars) -> None:
    ports, in_flight = sidecars
    limit = asyncio.Semaphore(2)
    calls = [poll_sidecars([SidecarTarget(f"{k}-{i}", "127.0.0.1", ports["healthy"])
                            for i in range(6)], limit_s=5, concurrency=32, limit=limit)
             for k in range(3)]
    results = await asyncio.gather(*calls)
    assert all(r.status is not None for reports in results for r in reports)
    assert in_flight["max"] <= 2
