"""The arms of the benchmark and the fake upstream they all call.

- ``direct``: the client calls the fake upstream itself (the floor);
- ``bare``: a bare aiohttp pass-through proxy on the default asyncio loop (the Python floor);
- ``stream``: a bare streaming proxy: aiohttp on uvloop relaying a stream chunk by chunk as
  the upstream framed it (the floor of a stream relay on Echelon's own loop);
- ``echelon``: ``echelon-sidecar`` on a two-tier group with breakers and limits on;
- ``litellm``: LiteLLM's proxy with the equivalent model group and fallbacks.

Every request names the model ``bench`` (or ``bench_slow``, whose upstream answers after
50 ms); the gateways route it to the fake upstream, whose model is named the same, so the
upstream does the same work in every arm.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .litellm_env import LITELLM_VERSION
from .procs import Proc, free_port, wait_http

__all__ = ["ARMS", "MASTER_KEY", "PACED_GROUPS", "Arm", "Upstream", "echelon_config",
           "litellm_config", "start_arm", "start_paced", "start_upstream"]

ARMS = ("direct", "bare", "stream", "echelon", "litellm")
MASTER_KEY = "sk-bench-master-key"  # LiteLLM's; the other arms ignore the header
UPSTREAM_KEY_ENV = "ECHELON_BENCH_UPSTREAM_KEY"
UPSTREAM_KEY = "sk-bench-upstream"
SLOW_MS = 50
BIG = 10_000_000


@dataclass
class Upstream:
    proc: Proc
    port: int
    refused_port: int  # a port nothing listens on (connections refused)
    scheme: str = "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


@dataclass
class Arm:
    name: str
    url: str  # the chat completions endpoint
    proc: Proc | None  # None for direct (the upstream is measured separately)
    notes: dict[str, Any] = field(default_factory=dict)


def start_upstream(core: int | None, log_dir: Path, stream_chunks: int,
                   tls: tuple[Path, Path] | None = None, name: str = "upstream") -> Upstream:
    """``echelon fake-provider``; with ``tls`` (certificate, key) over HTTPS."""
    port_file = log_dir / f"{name}.port"
    port_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "echelon_tools.fake_provider", "--port", "0",
           "--port-file", str(port_file), "--stream-chunks", str(stream_chunks),
           "--record-requests", "1",
           "--fault", f"bench_slow=latency:{SLOW_MS}",
           "--fault", "fo_503=503"]
    if tls is not None:
        cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    proc = Proc(name, cmd, core=core, log_dir=log_dir)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the fake upstream did not start:\n{proc.log_tail()}")
        time.sleep(0.05)
    port = int(port_file.read_text().strip())
    return Upstream(proc, port, free_port(), "https" if tls is not None else "http")


def start_paced(core: int | None, log_dir: Path, chunks: int, rate: float,
                tls: tuple[Path, Path] | None = None, name: str = "paced") -> Upstream:
    """The paced streaming upstream (``paced.py``); with ``tls`` over HTTPS."""
    port_file = log_dir / f"{name}.port"
    port_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bench.harness.paced", "--port", "0", "--port-file",
           str(port_file), "--chunks", str(chunks), "--rate", str(rate)]
    if tls is not None:
        cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    proc = Proc(name, cmd, core=core, log_dir=log_dir)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the paced upstream did not start:\n{proc.log_tail()}")
        time.sleep(0.05)
    return Upstream(proc, int(port_file.read_text().strip()), free_port(),
                    "https" if tls is not None else "http")


def _tier(models: list[str], priority: int) -> dict[str, Any]:
    return {"models": models, "priority": priority, "rpm_limit": BIG,
            "concurrency_limit": 100_000, "timeout": 30, "max_retries": 0}


#: the paced streams' groups (one per upstream format) and their upstream model names
PACED_GROUPS = {"openai": ("pace_openai", "pace-gpt"),
                "anthropic": ("pace_anthropic", "pace-claude"),
                "gemini": ("pace_gemini", "pace-gemini")}


def echelon_config(up: Upstream, paced: Upstream | None = None) -> dict[str, Any]:
    """Two-tier groups with breakers, tier rpm and concurrency limits, concurrency control at
    the group, echelon and model levels and a global token bucket — all generous enough never
    to refuse, so what is measured is their cost, not their refusals. With ``paced``, one
    more group per upstream format on the paced streaming upstream (one tier, one model)."""
    v1 = f"{up.base}/v1"

    def model(name: str, base: str = v1) -> dict[str, Any]:
        return {"provider": "openai", "model": name, "base_url": base,
                "api_key_env": UPSTREAM_KEY_ENV}

    breaker = {"failure_threshold": 5, "recovery_time": 30, "half_open_requests": 1}
    # the most the config allows: failover runs stay below it, so the breaker never opens
    never_open = {"failure_threshold": 10_000, "recovery_time": 1, "half_open_requests": 1}

    def group(e1: str, e2: str, cb: dict[str, Any]) -> dict[str, Any]:
        return {"echelon1": _tier([e1], 1), "echelon2": _tier([e2], 2),
                "fallback_config": {"strategy": "echelon_down", "max_attempts": 3,
                                    "retry_delay": 0, "circuit_breaker": cb}}

    paced_models: dict[str, Any] = {}
    paced_groups: dict[str, Any] = {}
    if paced is not None:
        for fmt, (group_name, upstream_model) in PACED_GROUPS.items():
            base = f"{paced.base}/v1" if fmt == "openai" else paced.base
            paced_models[group_name] = {"provider": fmt, "model": upstream_model,
                                        "base_url": base, "api_key_env": UPSTREAM_KEY_ENV}
            paced_groups[group_name] = {"echelon1": _tier([group_name], 1),
                                        "fallback_config": {"retry_delay": 0,
                                                            "circuit_breaker": breaker}}
    return {
        "models": {
            **paced_models,
            "e1": model("bench"), "e2": model("bench"),
            "e1_slow": model("bench_slow"), "e2_slow": model("bench_slow"),
            "fo_503": model("fo_503"),
            "fo_refused": model("bench", f"http://127.0.0.1:{up.refused_port}/v1"),
        },
        "task_groups": {
            "bench": group("e1", "e2", breaker),
            "bench_slow": group("e1_slow", "e2_slow", breaker),
            # failover: tier 1 fails on every request (the breaker never opens, so every
            # request pays the failed call), tier 2 answers
            "failover_503": group("fo_503", "e2", never_open),
            "failover_refused": group("fo_refused", "e2", never_open),
            "tier2_only": {"echelon1": _tier(["e2"], 1),
                           "fallback_config": {"retry_delay": 0, "circuit_breaker": breaker}},
            **paced_groups,
        },
        "concurrency_control": {"levels": {
            level: {"limit": 100_000, "queue_size": 1000}
            for level in ("group", "echelon", "model")}},
        "rate_limiting": {"algorithm": "token_bucket", "bucket_size": BIG,
                          "refill_rate": 1_000_000},
    }


def _litellm_paced(paced: Upstream) -> list[dict[str, Any]]:
    out = []
    for fmt, (group_name, upstream_model) in PACED_GROUPS.items():
        if fmt == "openai":
            params = {"model": f"openai/{upstream_model}", "api_base": f"{paced.base}/v1"}
        elif fmt == "anthropic":
            params = {"model": f"anthropic/{upstream_model}", "api_base": paced.base}
        else:
            params = {"model": f"gemini/{upstream_model}",
                      "api_base": f"{paced.base}/v1beta/models/{upstream_model}"}
        out.append({"model_name": group_name,
                    "litellm_params": {**params, "api_key": UPSTREAM_KEY}})
    return out


def litellm_config(up: Upstream, paced: Upstream | None = None) -> dict[str, Any]:
    """The same groups for LiteLLM: a model group per tier, fallbacks tier 1 -> tier 2, and the
    settings LiteLLM's production guide recommends (no database, no spend or error logs,
    no verbose logging, simple-shuffle routing)."""
    v1 = f"{up.base}/v1"

    def deployment(name: str, upstream_model: str, base: str = v1) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {
            "model": f"openai/{upstream_model}", "api_base": base, "api_key": UPSTREAM_KEY}}

    return {
        "model_list": [
            deployment("bench", "bench"), deployment("bench_e2", "bench"),
            deployment("bench_slow", "bench_slow"), deployment("bench_slow_e2", "bench_slow"),
            deployment("failover_503", "fo_503"),
            deployment("failover_refused", "bench", f"http://127.0.0.1:{up.refused_port}/v1"),
            deployment("tier2_only", "bench"),
            *(_litellm_paced(paced) if paced is not None else []),
        ],
        "router_settings": {
            "routing_strategy": "simple-shuffle",
            "num_retries": 0,
            "retry_after": 0,
            "disable_cooldowns": True,  # like a breaker that never opens in the failover runs
            "fallbacks": [{"bench": ["bench_e2"]}, {"bench_slow": ["bench_slow_e2"]},
                          {"failover_503": ["bench_e2"]}, {"failover_refused": ["bench_e2"]}],
        },
        "litellm_settings": {
            "set_verbose": False,
            "json_logs": True,
            "request_timeout": 600,
            "turn_off_message_logging": True,
            "drop_params": True,
        },
        "general_settings": {
            "master_key": MASTER_KEY,
            "disable_spend_logs": True,
            "disable_error_logs": True,
            "proxy_batch_write_at": 60,
            "allow_requests_on_db_unavailable": True,
        },
    }


LITELLM_ENV = {
    "LITELLM_LOG": "ERROR",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the cost map from the internet
    "LITELLM_TELEMETRY": "False",
    "DISABLE_ADMIN_UI": "True",
}


def start_arm(name: str, up: Upstream, *, core: int | None, log_dir: Path,
              litellm_python: Path | None = None, paced: Upstream | None = None,
              cafile: Path | None = None, relay_to: Upstream | None = None,
              tag: str = "") -> Arm:
    """Start one arm. ``paced``: the gateways (Echelon, LiteLLM) also route the paced groups
    to it; ``relay_to``: what the bare proxies forward to (default ``up``); ``cafile``: the
    test CA every arm must trust (an HTTPS upstream); ``tag``: a suffix of the process name
    (several sets of arms in one run)."""
    path = "/v1/chat/completions"
    if name == "direct":
        return Arm(name, f"{up.base}{path}", None)
    port = free_port()
    target = relay_to or up
    trust = {"SSL_CERT_FILE": str(cafile)} if cafile is not None else {}
    if name in ("bare", "stream"):
        module = "bench.harness.bare_proxy" if name == "bare" else "bench.harness.stream_proxy"
        cmd = [sys.executable, "-m", module, "--port", str(port), "--upstream", target.base]
        if cafile is not None:
            cmd += ["--cafile", str(cafile)]
        proc = Proc(name + tag, cmd, core=core, log_dir=log_dir)
        notes = ({"loop": "asyncio (default)", "relay": "iter_any()"} if name == "bare" else
                 {"loop": "uvloop", "relay": "iter_chunks(): one write per upstream chunk"})
        arm = Arm(name, f"http://127.0.0.1:{port}{path}", proc, notes)
        wait_http(f"http://127.0.0.1:{port}/", 30, proc.popen)
        return arm
    if name == "echelon":
        cfg = log_dir / f"echelon{tag}.yaml"
        cfg.write_text(yaml.safe_dump(echelon_config(up, paced), sort_keys=False))
        admin = free_port()
        cmd = [str(Path(sys.executable).parent / "echelon-sidecar"), "--config", str(cfg),
               "--port", str(port), "--admin-port", str(admin), "--admin-host", "127.0.0.1",
               "--reload-interval", "0", "--log-level", "warning", "--log-format", "json"]
        proc = Proc(name + tag, cmd, core=core, log_dir=log_dir,
                    env={UPSTREAM_KEY_ENV: UPSTREAM_KEY, **trust})
        wait_http(f"http://127.0.0.1:{admin}/readyz", 30, proc.popen)
        notes = {"loop": "uvloop", "admin": f"http://127.0.0.1:{admin}",
                 "config": "two-tier groups, breakers, tier rpm + concurrency limits, "
                           "concurrency_control (group/echelon/model), global token bucket"}
        if cafile is not None:
            notes["trust"] = "SSL_CERT_FILE=<test CA>"
        return Arm(name, f"http://127.0.0.1:{port}{path}", proc, notes)
    if name == "litellm":
        if litellm_python is None:
            raise RuntimeError("the LiteLLM arm needs its venv (see --litellm-venv)")
        cfg = log_dir / f"litellm{tag}.yaml"
        config = litellm_config(up, paced)
        cfg.write_text(yaml.safe_dump(config, sort_keys=False))
        cmd = [str(litellm_python), "-c",
               "from litellm.proxy.proxy_cli import run_server; run_server()",
               "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
               "--num_workers", "1"]
        proc = Proc(name + tag, cmd, core=core, log_dir=log_dir, env={**LITELLM_ENV, **trust})
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", 180, proc.popen)
        notes = {"version": LITELLM_VERSION, "workers": 1,
                 "server": "uvicorn (LiteLLM's default)", "env": LITELLM_ENV,
                 "settings": json.dumps({k: v for k, v in config.items()
                                         if k != "model_list"}, sort_keys=True)}
        if cafile is not None:
            notes["trust"] = "SSL_CERT_FILE=<test CA>"
        return Arm(name, f"http://127.0.0.1:{port}{path}", proc, notes)
    raise ValueError(f"unknown arm {name!r}")
