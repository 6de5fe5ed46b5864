"""Closed-loop load with wrk (a Lua script gives it the POST body and prints JSON)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .procs import pinned

__all__ = ["ensure_wrk", "run_wrk"]

_SCRIPT = """\
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
%(headers)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def ensure_wrk(install: bool) -> str | None:
    """The wrk binary; installed with apt-get when missing and allowed (root, Debian)."""
    found = shutil.which("wrk")
    if found or not install or shutil.which("apt-get") is None:
        return found
    try:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True,
                       capture_output=True, timeout=300)
    except (subprocess.SubprocessError, OSError):
        return None
    return shutil.which("wrk")


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def run_wrk(wrk: str, url: str, body: bytes, *, concurrency: int, duration: float,
            core: int | None, workdir: Path, headers: dict[str, str] | None = None,
            timeout: float = 10.0) -> dict[str, Any]:
    script = workdir / "wrk-post.lua"
    header_lines = "\n".join(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}"
                             for k, v in (headers or {}).items())
    script.write_text(_SCRIPT % {"body": _lua_string(body.decode()), "headers": header_lines})
    cmd = pinned([wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s",
                  f"--timeout={max(1, round(timeout))}s", "-s", str(script), url], core)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout + 30,
                          check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    raw = json.loads(line[len("WRKJSON "):])
    seconds = raw["duration_us"] / 1e6
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]}
    ok = raw["requests"] - raw["status"]
    return {
        "requests": ok,
        "seconds": round(seconds, 3),
        "rps": round(ok / seconds, 1) if seconds else 0.0,
        # wrk's histogram holds every completed request (errors included)
        "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
        "mean_ms": round(raw["mean_us"] / 1000, 3),
        "errors": errors, "error_count": sum(errors.values()),
        "concurrency": concurrency,
        "requests_total": raw["requests"] + errors.get("timeout", 0) + errors.get("read", 0),
    }
