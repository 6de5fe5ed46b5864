"""The arms of the benchmark and the fake upstream they all call.

- ``direct``: the client calls the fake upstream itself (the floor);
- ``bare``: a bare aiohttp pass-through proxy on the default asyncio loop (the Python floor);
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

__all__ = ["ARMS", "MASTER_KEY", "Arm", "Upstream", "echelon_config", "litellm_config",
           "start_arm", "start_upstream"]

ARMS = ("direct", "bare", "echelon", "litellm")
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

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Arm:
    name: str
    url: str  # the chat completions endpoint
    proc: Proc | None  # None for direct (the upstream is measured separately)
    notes: dict[str, Any] = field(default_factory=dict)


def start_upstream(core: int | None, log_dir: Path, stream_chunks: int) -> Upstream:
    port_file = log_dir / "upstream.port"
    port_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "echelon_sidecar.fake_provider", "--port", "0",
           "--port-file", str(port_file), "--stream-chunks", str(stream_chunks),
           "--record-requests", "1",
           "--fault", f"bench_slow=latency:{SLOW_MS}",
           "--fault", "fo_503=503"]
    proc = Proc("upstream", cmd, core=core, log_dir=log_dir)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the fake upstream did not start:\n{proc.log_tail()}")
        time.sleep(0.05)
    port = int(port_file.read_text().strip())
    return Upstream(proc, port, free_port())


def _tier(models: list[str], priority: int) -> dict[str, Any]:
    return {"models": models, "priority": priority, "rpm_limit": BIG,
            "concurrency_limit": 100_000, "timeout": 30, "max_retries": 0}


def echelon_config(up: Upstream) -> dict[str, Any]:
    """Two-tier groups with breakers, tier rpm and concurrency limits, concurrency control at
    the group, echelon and model levels and a global token bucket — all generous enough never
    to refuse, so what is measured is their cost, not their refusals."""
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

    return {
        "models": {
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
        },
        "concurrency_control": {"levels": {
            level: {"limit": 100_000, "queue_size": 1000}
            for level in ("group", "echelon", "model")}},
        "rate_limiting": {"algorithm": "token_bucket", "bucket_size": BIG,
                          "refill_rate": 1_000_000},
    }


def litellm_config(up: Upstream) -> dict[str, Any]:
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
              litellm_python: Path | None = None) -> Arm:
    path = "/v1/chat/completions"
    if name == "direct":
        return Arm(name, f"{up.base}{path}", None)
    port = free_port()
    if name == "bare":
        proc = Proc("bare", [sys.executable, "-m", "bench.harness.bare_proxy", "--port",
                             str(port), "--upstream", up.base], core=core, log_dir=log_dir)
        arm = Arm(name, f"http://127.0.0.1:{port}{path}", proc, {"loop": "asyncio (default)"})
        wait_http(f"http://127.0.0.1:{port}/", 30, proc.popen)
        return arm
    if name == "echelon":
        cfg = log_dir / "echelon.yaml"
        cfg.write_text(yaml.safe_dump(echelon_config(up), sort_keys=False))
        admin = free_port()
        cmd = [str(Path(sys.executable).parent / "echelon-sidecar"), "--config", str(cfg),
               "--port", str(port), "--admin-port", str(admin), "--admin-host", "127.0.0.1",
               "--reload-interval", "0", "--log-level", "warning", "--log-format", "json"]
        proc = Proc("echelon", cmd, core=core, log_dir=log_dir,
                    env={UPSTREAM_KEY_ENV: UPSTREAM_KEY})
        wait_http(f"http://127.0.0.1:{admin}/readyz", 30, proc.popen)
        return Arm(name, f"http://127.0.0.1:{port}{path}", proc,
                   {"loop": "uvloop", "admin": f"http://127.0.0.1:{admin}",
                    "config": "two-tier groups, breakers, tier rpm + concurrency limits, "
                              "concurrency_control (group/echelon/model), global token bucket"})
    if name == "litellm":
        if litellm_python is None:
            raise RuntimeError("the LiteLLM arm needs its venv (see --litellm-venv)")
        cfg = log_dir / "litellm.yaml"
        cfg.write_text(yaml.safe_dump(litellm_config(up), sort_keys=False))
        cmd = [str(litellm_python), "-c",
               "from litellm.proxy.proxy_cli import run_server; run_server()",
               "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
               "--num_workers", "1"]
        proc = Proc("litellm", cmd, core=core, log_dir=log_dir, env=LITELLM_ENV)
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", 180, proc.popen)
        return Arm(name, f"http://127.0.0.1:{port}{path}", proc, {
            "version": LITELLM_VERSION, "workers": 1, "server": "uvicorn (LiteLLM's default)",
            "env": LITELLM_ENV,
            "settings": json.dumps({k: v for k, v in litellm_config(up).items()
                                    if k != "model_list"}, sort_keys=True)})
    raise ValueError(f"unknown arm {name!r}")
