"""The references a sidecar's footprint is measured against: ``python -c pass``, the floor (a
process that imports the sidecar's dependencies and serves ``/readyz`` on aiohttp, nothing
else) and the floor's steps (one more dependency imported at each)."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from .process_stats import (
    cpu_seconds,
    free_port,
    readyz_status,
    status_kb,
    stop_process,
    summary,
)

__all__ = ["FLOOR_STEPS", "measure_floor", "measure_floor_steps", "measure_interpreter"]


def measure_interpreter(runs: int) -> dict[str, Any]:
    """The floor: ``python -c pass`` with the same interpreter (site-packages included)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return {"start_s": summary(times)}


_FLOOR = """
import asyncio, sys
import orjson, pydantic, prometheus_client, uvloop, yaml
from aiohttp import web
class M(pydantic.BaseModel):
    x: int = 1
M(x=2); yaml.safe_load("a: 1"); orjson.dumps({})
prometheus_client.Counter("c", "c", registry=prometheus_client.CollectorRegistry())
async def main():
    app = web.Application()
    async def readyz(request):
        return web.json_response({"status": "ready"})
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1])).start()
    await asyncio.Event().wait()
uvloop.run(main())
"""


def measure_floor(runs: int, settle: float, deadline: float = 30.0) -> dict[str, Any]:
    """The dependencies alone (see the module docstring): ready time, CPU, idle RSS."""
    ready, cpu, rss = [], [], []
    for _ in range(runs):
        port = free_port()
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _FLOOR, str(port)])
        try:
            while time.perf_counter() - started < deadline and proc.poll() is None:
                if readyz_status(port) == 200:
                    ready.append(time.perf_counter() - started)
                    cpu.append(cpu_seconds(proc.pid))
                    time.sleep(settle)
                    rss.append(status_kb(proc.pid).get("VmRSS", 0) / 1024)
                    break
                time.sleep(0.005)
        finally:
            stop_process(proc)
    return {"ready_s": summary(ready), "cpu_s": summary(cpu), "idle_rss_mb": summary(rss, 1)}


#: what the floor is made of: each step imports what the ones before it did and more
FLOOR_STEPS = [
    ("the interpreter (`python -c pass`, site-packages on the path)", ""),
    ("+ asyncio, ssl, uvloop", "import asyncio, ssl, uvloop"),
    ("+ aiohttp (its server imports its client too)", "from aiohttp import web"),
    ("+ pydantic, one model built", "import pydantic\n"
     "class M(pydantic.BaseModel):\n    x: int = 1\nM(x=2)"),
    ("+ PyYAML, orjson, prometheus-client (the floor's imports, not serving)",
     "import orjson, prometheus_client, yaml\n"
     "yaml.safe_load('a: 1'); orjson.dumps({})\n"
     "prometheus_client.Counter('c', 'c', registry=prometheus_client.CollectorRegistry())"),
]
_STEP_TAIL = "\nimport sys\nsys.stdout.write('up\\n'); sys.stdout.flush(); sys.stdin.read()\n"


def measure_floor_steps(runs: int, settle: float, deadline: float = 30.0) -> list[dict[str, Any]]:
    """Idle RSS of a process at each of FLOOR_STEPS (imports only, nothing served): where the
    floor's memory goes."""
    out: list[dict[str, Any]] = []
    code = ""
    for label, step in FLOOR_STEPS:
        code += step + "\n"
        rss: list[float] = []
        for _ in range(runs):
            proc = subprocess.Popen([sys.executable, "-c", code + _STEP_TAIL],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            try:
                assert proc.stdout is not None and proc.stdin is not None
                ready = proc.stdout.readline() == b"up\n"  # bounded: the child exits on error
                if ready:
                    time.sleep(settle)
                    rss.append(status_kb(proc.pid).get("VmRSS", 0) / 1024)
                proc.stdin.close()
                proc.wait(timeout=deadline)
            finally:
                stop_process(proc)
        out.append({"step": label, "idle_rss_mb": summary(rss, 1)})
    return out
