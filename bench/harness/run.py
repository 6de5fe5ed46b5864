"""One benchmark run: start the upstream and the arms, drive the load, collect the numbers."""

from __future__ import annotations

import contextlib
import io
import json
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .arms import MASTER_KEY, Arm, Upstream, start_arm, start_upstream
from .machine import IdlePoll, describe, loadavg
from .procs import Proc, pinned
from .wrk import run_wrk

__all__ = ["Plan", "run_plan"]


@dataclass
class Plan:
    mode: str
    arms: list[str]
    duration: float
    warmup: float
    concurrency: list[int]
    stream_concurrency: list[int]
    slow_concurrency: list[int]
    rates: list[float]
    failover_duration: float
    rounds: int = 1
    stream_chunks: int = 5
    server_core: int | None = 0
    client_core: int | None = 1
    wrk: str | None = None
    # wrk drives closed-loop non-streaming points from this concurrency up; below it the
    # harness's generator does (at c=1 wrk's own timing adds a tail the wire does not show)
    wrk_min_concurrency: int = 2
    # idle CPUs poll rather than halt while arms are measured (machine.IdlePoll); c=1 is
    # measured once more without it, for comparison
    idle_poll: bool = True
    litellm_python: Path | None = None
    operator_groups: list[int] = field(default_factory=list)
    operator_modes: list[str] = field(default_factory=list)
    operator_kubeconfig: str | None = None
    # paced streams (streams.run_paced): concurrencies of the passthrough kind and of the
    # translated kinds; chunks per stream, chunks per second; seconds recorded per point
    # after a ramp of first requests; a stream's own time limit
    paced_kinds: list[str] = field(default_factory=list)
    paced_concurrency: list[int] = field(default_factory=list)
    paced_translated: list[int] = field(default_factory=list)
    paced_chunks: int = 200
    paced_rate: float = 50.0
    paced_duration: float = 8.0
    paced_ramp: float = 4.0
    paced_stream_timeout: float = 60.0
    paced_rounds: int = 1
    # TLS (streams.run_tls): closed-loop, 5-chunk stream and paced passthrough points over
    # HTTPS; off when tls is False
    tls: bool = False
    tls_concurrency: list[int] = field(default_factory=list)
    tls_stream_concurrency: list[int] = field(default_factory=list)
    tls_paced_concurrency: list[int] = field(default_factory=list)
    # the operator over many simulated sidecars (bench/operator_scale.py): pod counts
    operator_scale: list[int] = field(default_factory=list)
    # one sidecar's start-up, idle RSS and RSS with many streams open (bench/footprint.py)
    footprint_runs: int = 7
    footprint_streams: int = 1000
    sections: list[str] = field(default_factory=lambda: ["main"])
    command: str = ""


def _log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def _body(model: str, stream: bool) -> bytes:
    body: dict[str, Any] = {"model": model, "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Say hello to the benchmark in five words."}],
        "max_tokens": 32, "temperature": 0.2}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


class Driver:
    """Runs one load point against one arm, with wrk or the Python generator."""

    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.headers = {"Authorization": f"Bearer {MASTER_KEY}"}

    def loadgen(self, url: str, body: bytes, *, concurrency: int | None = None,
                rate: float | None = None, duration: float, warmup: float,
                connections: int = 64, cafile: Path | None = None) -> dict[str, Any]:
        body_file = self.workdir / "body.json"
        body_file.write_bytes(body)
        cmd = [sys.executable, "-m", "bench.harness.loadgen", "--url", url,
               "--body-file", str(body_file), "--duration", str(duration),
               "--warmup", str(warmup), "--connections", str(connections)]
        cmd += ["--concurrency", str(concurrency)] if rate is None else ["--rate", str(rate)]
        if cafile is not None:
            cmd += ["--cafile", str(cafile)]
        for k, v in self.headers.items():
            cmd += ["--header", f"{k}:{v}"]
        proc = subprocess.run(pinned(cmd, self.plan.client_core), capture_output=True,
                              text=True, timeout=duration + warmup + 60, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen failed: {proc.stderr.strip()[-800:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        result["errors"] = {k: v for k, v in result["errors"].items() if v}
        result["loadgen"] = "python"
        return result

    def closed(self, url: str, body: bytes, concurrency: int, *, stream: bool,
               duration: float | None = None, server: Proc | None = None,
               cafile: Path | None = None) -> dict[str, Any]:
        """A closed-loop point; with ``server``, also its CPU time per request."""
        duration = duration or self.plan.duration
        if self.plan.wrk and not stream and concurrency >= self.plan.wrk_min_concurrency:
            # warm-up (connections, caches) is a short unrecorded wrk run
            if self.plan.warmup > 0:
                run_wrk(self.plan.wrk, url, body, concurrency=concurrency,
                        duration=self.plan.warmup, core=self.plan.client_core,
                        workdir=self.workdir, headers=self.headers)
            cpu = server.cpu_seconds() if server else 0.0
            result = run_wrk(self.plan.wrk, url, body, concurrency=concurrency,
                             duration=duration, core=self.plan.client_core,
                             workdir=self.workdir, headers=self.headers)
            result["loadgen"] = "wrk"
        else:
            cpu = server.cpu_seconds() if server else 0.0
            result = self.loadgen(url, body, concurrency=concurrency, duration=duration,
                                  warmup=self.plan.warmup, cafile=cafile)
        if server is not None and result.get("requests_total"):
            result["server_cpu_us_per_request"] = round(
                (server.cpu_seconds() - cpu) / result["requests_total"] * 1e6, 1)
        return result


def _saturated(result: dict[str, Any]) -> bool:
    offered = result.get("offered_rps") or 0
    done = result.get("requests", 0) + result.get("error_count", 0)
    return (result["rps"] < 0.9 * offered or result.get("error_count", 0) > 0.01 * max(done, 1)
            or (result.get("p99_ms") or 0) > 1000)


def _check(url: str, model: str) -> dict[str, Any]:
    """One request, to prove an arm answers (and, for failover, who served it)."""
    req = urllib.request.Request(url, data=_body(model, False), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {MASTER_KEY}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        payload = json.loads(resp.read())
        headers = {k.lower(): v for k, v in resp.headers.items()
                   if k.lower().startswith(("x-echelon-", "x-litellm-"))}
    return {"status": 200, "model": payload.get("model"), "headers": headers}


def _settle(proc: Proc | None, window: float = 0.25, limit: float = 30.0) -> None:
    """Until ``proc`` is idle (under 10 % of a core over ``window``): a server still working
    off a backlog (LiteLLM past saturation keeps serving requests whose clients left) would
    otherwise steal the core from the next arm's point."""
    if proc is None:
        return
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = proc.cpu_seconds()
        time.sleep(window)
        if proc.cpu_seconds() - before < 0.1 * window:
            return


def _each_arm(arms: dict[str, Arm], what: str,
              step: Callable[[Arm], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, arm in arms.items():
        result = step(arm)
        _settle(arm.proc)
        _log(f"{what:<28} {name:<8} {result['rps']:>9.1f} req/s  p50 {result['p50_ms']} ms"
             f"  p99 {result['p99_ms']} ms  errors {result.get('error_count', 0)}  "
             f"cpu {result.get('server_cpu_us_per_request')} us/req")
        out[name] = result
    return out


def _best_round(runs: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
    """The run with the lowest p50 (TTFT p50 for streams): on a shared machine noise only ever
    adds time, so each arm's least disturbed round is the fairest comparison (every arm gets
    the same number of rounds, in turn). Every round is kept under ``rounds``."""
    def key(r: dict[str, Any]) -> float:
        lat = r.get("ttft") if stream else r
        value = (lat or {}).get("p50_ms")
        return float("inf") if value is None else float(value)
    chosen = dict(min(runs, key=key))
    if len(runs) > 1:
        chosen["rounds"] = [dict(r) for r in runs]
    return chosen


def _server(arm: Arm, upstream: Upstream) -> Proc:
    """The process whose CPU a point charges: the gateway, or the upstream for direct."""
    return arm.proc if arm.proc is not None else upstream.proc


def _closed_rounds(plan: Plan, arms: dict[str, Arm], driver: Driver, upstream: Upstream,
                   levels: list[int], *, stream: bool, tag: str = "") -> dict[str, Any]:
    """``plan.rounds`` passes over every closed-loop point and arm in turn; each arm's point
    reports its best round (by p50, or TTFT p50)."""
    rounds: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in range(plan.rounds):
        for c in levels:
            label = f"{'stream' if stream else 'non-stream'} c={c}{tag}" + (
                f" (round {r + 1}/{plan.rounds})" if plan.rounds > 1 else "")
            point = _each_arm(
                arms, label,
                lambda arm, c=c: driver.closed(arm.url, _body("bench", stream), c,
                                               stream=stream, server=_server(arm, upstream)))
            for name, result in point.items():
                rounds.setdefault(str(c), {}).setdefault(name, []).append(result)
    return {c: {name: _best_round(runs, stream) for name, runs in by_arm.items()}
            for c, by_arm in rounds.items()}


def run_load(plan: Plan, arms: dict[str, Arm], driver: Driver, upstream: Upstream,
             idle: IdlePoll | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {"closed": {}, "stream": {}, "slow": {}, "open": {}}
    results["closed"] = _closed_rounds(plan, arms, driver, upstream, plan.concurrency,
                                       stream=False)
    if idle is not None and idle.held and 1 in plan.concurrency:
        # the same c=1 point on the machine as it idles by default (vCPUs halt)
        with idle.paused():
            results["closed_default_idle"] = _closed_rounds(
                plan, arms, driver, upstream, [1], stream=False, tag=" (default idle)")
    results["stream"] = _closed_rounds(plan, arms, driver, upstream, plan.stream_concurrency,
                                       stream=True)
    for c in plan.slow_concurrency:
        results["slow"][str(c)] = _each_arm(
            arms, f"50 ms upstream c={c}",
            lambda arm, c=c: driver.closed(arm.url, _body("bench_slow", False), c,
                                           stream=False, server=_server(arm, upstream)))
    live = dict(arms)
    for rate in plan.rates:
        point: dict[str, Any] = {}
        for name, arm in list(live.items()):
            result = driver.loadgen(arm.url, _body("bench", False), rate=rate,
                                    duration=plan.duration, warmup=plan.warmup)
            _settle(arm.proc)
            _log(f"open loop {rate:>6g}/s          {name:<8} {result['rps']:>9.1f} req/s  "
                 f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  "
                 f"errors {result.get('error_count', 0)}")
            result["saturated"] = _saturated(result)
            point[name] = result
            if result["saturated"]:
                del live[name]  # past saturation: higher rates only queue more
        results["open"][f"{rate:g}"] = point
        if not live:
            break
    return results


def run_failover(plan: Plan, arms: dict[str, Arm], driver: Driver) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("echelon", "litellm"):
        arm = arms.get(name)
        if arm is None:
            continue
        entry: dict[str, Any] = {}
        for scenario in ("tier2_only", "failover_503", "failover_refused"):
            try:
                entry[f"{scenario}_check"] = _check(arm.url, scenario)
            except Exception as exc:  # reported, not fatal: the table says what failed
                entry[f"{scenario}_check"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            result = driver.loadgen(arm.url, _body(scenario, False), concurrency=1,
                                    duration=plan.failover_duration,
                                    warmup=min(plan.warmup, 0.5))
            _settle(arm.proc)
            _log(f"failover {scenario:<19} {name:<8} p50 {result['p50_ms']} ms  "
                 f"p99 {result['p99_ms']} ms  errors {result.get('error_count', 0)}")
            entry[scenario] = result
        base = entry["tier2_only"]
        for scenario in ("failover_503", "failover_refused"):
            r = entry[scenario]
            if r.get("p50_ms") is not None and base.get("p50_ms") is not None:
                entry[f"{scenario}_added_p50_ms"] = round(r["p50_ms"] - base["p50_ms"], 3)
                entry[f"{scenario}_added_p99_ms"] = round(r["p99_ms"] - base["p99_ms"], 3)
        out[name] = entry
    return out


def run_operator(plan: Plan) -> dict[str, Any]:
    try:
        from bench import operator_bench
    except ImportError as exc:
        return {"skipped": f"bench/operator_bench.py is not importable: {exc}"}
    args = ["--groups", ",".join(str(n) for n in plan.operator_groups),
            "--modes", ",".join(plan.operator_modes)]
    if plan.operator_kubeconfig:
        args += ["--kubeconfig", plan.operator_kubeconfig]
    out = io.StringIO()
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(out):
            code = operator_bench.main(args)
    except Exception as exc:
        return {"skipped": f"the operator benchmark failed: {type(exc).__name__}: {exc}"[:600],
                "args": args}
    if code != 0:
        return {"skipped": f"the operator benchmark exited {code}", "args": args}
    report: dict[str, Any] = json.loads(out.getvalue())
    report["args"] = args
    report["wall_s"] = round(time.monotonic() - started, 1)
    return report


def _tls_closed(plan: Plan, workdir: Path) -> Callable[..., dict[str, Any]]:
    """Closed-loop points of the TLS section (every arm in turn, ``plan.rounds`` rounds, each
    arm's best), with the connections the upstream accepted per 1,000 requests."""
    driver = Driver(plan, workdir)

    def closed(arms: dict[str, Arm], up: Upstream, levels: list[int], stream: bool,
               cafile: Path) -> dict[str, Any]:
        def stats() -> dict[str, Any]:
            ctx = ssl.create_default_context(cafile=str(cafile))
            with urllib.request.urlopen(f"{up.base}/_fake/stats", timeout=10,
                                        context=ctx) as resp:
                return dict(json.loads(resp.read()))

        def step(arm: Arm, c: int) -> dict[str, Any]:
            before = stats()
            result = driver.closed(arm.url, _body("bench", stream), c, stream=stream,
                                   server=_server(arm, up), cafile=cafile)
            after = stats()
            result["upstream_connections"] = after["connections"] - before["connections"]
            result["upstream_requests"] = after["total"] - before["total"]
            if result["upstream_requests"]:
                result["handshakes_per_1000_requests"] = round(
                    result["upstream_connections"] / result["upstream_requests"] * 1000, 2)
            return result

        rounds: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for r in range(plan.rounds):
            for c in levels:
                label = f"tls {'stream' if stream else 'non-stream'} c={c}" + (
                    f" (round {r + 1}/{plan.rounds})" if plan.rounds > 1 else "")
                point = _each_arm(arms, label, lambda arm, c=c: step(arm, c))
                for name, result in point.items():
                    rounds.setdefault(str(c), {}).setdefault(name, []).append(result)
        return {c: {name: _best_round(runs, stream) for name, runs in by_arm.items()}
                for c, by_arm in rounds.items()}

    return closed


def _run_main(plan: Plan, workdir: Path, idle: IdlePoll) -> dict[str, Any]:
    """The sections on the fake provider: closed and open loop, streams, failover."""
    upstream: Upstream | None = None
    arms: dict[str, Arm] = {}
    try:
        upstream = start_upstream(plan.client_core, workdir, plan.stream_chunks)
        for name in plan.arms:
            _log(f"starting {name}")
            arms[name] = start_arm(name, upstream, core=plan.server_core, log_dir=workdir,
                                   litellm_python=plan.litellm_python)
        checks = {name: _check(arm.url, "bench") for name, arm in arms.items()}
        driver = Driver(plan, workdir)
        load = run_load(plan, arms, driver, upstream, idle)
        failover = run_failover(plan, arms, driver)
        rss = {name: (arm.proc.peak_rss_mb() if arm.proc else None)
               for name, arm in arms.items()}
        rss["upstream"] = upstream.proc.peak_rss_mb()
    except Exception:
        for name, arm in arms.items():
            if arm.proc is not None:
                _log(f"--- {name} log tail ---\n{arm.proc.log_tail()}")
        if upstream is not None:
            _log(f"--- upstream log tail ---\n{upstream.proc.log_tail()}")
        raise
    finally:
        for arm in arms.values():
            if arm.proc is not None:
                arm.proc.stop()
        if upstream is not None:
            upstream.proc.stop()
    return {"checks": checks, "arms": {name: arm.notes for name, arm in arms.items()},
            "load": load, "failover": failover, "rss": rss}


def run_plan(plan: Plan) -> dict[str, Any]:
    from .streams import run_paced, run_tls
    machine = describe(plan.wrk, plan.litellm_python if "litellm" in plan.arms else None)
    started = time.time()
    main: dict[str, Any] = {"checks": {}, "arms": {}, "load": {}, "failover": {}, "rss": {}}
    sections: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="echelon-bench.") as tmp:
        workdir = Path(tmp)
        idle = IdlePoll()
        try:
            if plan.idle_poll and not idle.hold():
                _log(f"idle CPUs keep halting (cannot hold {idle.error})")
            machine["cpu_idle"]["while_measuring"] = (
                "poll (cpu_dma_latency held at 0)" if idle.held else
                "the machine's default" + (f" (not held: {idle.error})" if idle.error
                                           else ""))
            if "main" in plan.sections:
                main = _run_main(plan, workdir, idle)
            if "paced" in plan.sections and plan.paced_kinds:
                sections["paced"] = run_paced(plan, workdir)
            if "tls" in plan.sections and plan.tls:
                sections["tls"] = run_tls(plan, workdir, _tls_closed(plan, workdir))
        finally:
            idle.release()
    operator = run_operator(plan) if plan.operator_groups else {
        "skipped": "not run in this mode (--full runs it; --no-operator skips it)"}
    if plan.operator_scale:
        sections["operator_scale"] = run_operator_scale(plan)
    if "footprint" in plan.sections:
        sections["footprint"] = run_footprint_section(plan)
    machine["loadavg_end"] = loadavg()
    return {
        "meta": {
            "date": time.strftime("%Y-%m-%d", time.localtime(started)),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "wall_s": round(time.time() - started, 1),
            "command": plan.command,
            "mode": plan.mode,
            "plan": {k: (str(v) if isinstance(v, Path) else v)
                     for k, v in plan.__dict__.items()},
            "machine": machine,
            "arms": main["arms"] or (sections.get("paced") or {}).get("arms") or {},
            "checks": main["checks"],
        },
        **main["load"],
        "failover": main["failover"],
        "rss_mb": main["rss"],
        "operator": operator,
        **sections,
    }


def run_footprint_section(plan: Plan) -> dict[str, Any]:
    """bench/footprint.py's report, with the sidecar image's size when scripts/build-images
    made one (dist/images)."""
    from bench import footprint

    try:
        report = footprint.run_footprint(runs=plan.footprint_runs,
                                         streams=plan.footprint_streams)
    except Exception as exc:
        return {"skipped": f"the footprint benchmark failed: {type(exc).__name__}: "
                           f"{exc}"[:600]}
    report["image"] = footprint.image_size()
    return report


def run_operator_scale(plan: Plan) -> dict[str, Any]:
    try:
        from bench import operator_scale
    except ImportError as exc:
        return {"skipped": f"bench/operator_scale.py is not importable: {exc}"}
    args = ["--pods", ",".join(str(n) for n in plan.operator_scale)]
    if plan.operator_kubeconfig:
        args += ["--kubeconfig", plan.operator_kubeconfig]
    out = io.StringIO()
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(out):
            code = operator_scale.main(args)
    except Exception as exc:
        return {"skipped": f"the operator scale benchmark failed: {type(exc).__name__}: "
                           f"{exc}"[:600], "args": args}
    if code != 0:
        return {"skipped": f"the operator scale benchmark exited {code}", "args": args}
    report: dict[str, Any] = json.loads(out.getvalue())
    report["args"] = args
    report["wall_s"] = round(time.monotonic() - started, 1)
    return report
