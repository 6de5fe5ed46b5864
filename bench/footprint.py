"""One sidecar's footprint: time from process start to ready, idle RSS, RSS with open streams.

    python -m bench.footprint [--runs 7] [--config PATH ...] [--streams 1000] [--json OUT]

For each config (default: ``configs/llms``, ``configs/_task_groups.yaml``, ``configs/k8s`` and,
where ``../shared/seeds`` is beside the repository, the source document's combined example with
the catalog of ``configs/llms/models.yaml``), ``echelon-sidecar`` is started ``--runs`` times as
a subprocess on ports from the OS. Each run reports:

- ``ready_s``: wall time from just before the process is spawned to the first ``200`` of
  ``GET /readyz`` (polled every 5 ms on the admin port);
- ``cpu_s``: the CPU time (user + system) the process had used by then: less sensitive than the
  wall time to other work on a shared machine;
- ``idle_rss_mb``: ``VmRSS`` of ``/proc/<pid>/status`` after ``--settle`` seconds idle (and
  ``VmHWM``, the peak, as ``hwm_mb``).

Then, unless ``--streams 0``: a fake upstream (``python -m echelon_tools.fake_provider``)
that streams slowly (``--stream-chunks`` chunks ``--chunk-delay-ms`` apart), a sidecar on it,
and ``--streams`` concurrent streamed chat completions held open through the sidecar: its RSS
once every stream has its first chunk, and again after they are all closed. Everything runs
on 127.0.0.1; every wait is bounded (``--deadline``), every process is stopped at the end.

Two references are measured the same way: ``python -c pass`` (the interpreter's own start),
and ``floor``: a process that imports the sidecar's dependencies (aiohttp's server and client,
pydantic with one model built, PyYAML, orjson, uvloop, prometheus-client), serves ``/readyz``
on aiohttp and does nothing else -- what no change inside Echelon can go below -- and the
floor's steps (``FLOOR_STEPS``): the idle RSS of a process importing one more of those
dependencies at each step, so the report shows where the floor's memory goes.

Every process measured runs with the environment the sidecar image sets (sidecar/Dockerfile,
``PATH`` aside: ``bench/image_env.py``), its TLS trust above all (the system's CAs through their
hashed directory, not the bundle parsed into each TLS context).

Before measuring, the sidecar package's bytecode is compiled (``compileall``, as ``pip
install`` does for the image); ``--no-compile`` measures the tree as it is (a source checkout
run with ``PYTHONDONTWRITEBYTECODE`` compiles every module at every start).

The medians over the runs are compared with issue 20's targets (ready < 0.5 s, idle RSS
< 45 MB). ``run_footprint(...)`` returns the whole report as a dict (``python -m bench`` can
include it). Not a test: it measures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .footprint_floor import measure_floor, measure_floor_steps, measure_interpreter
from .footprint_image import ImageRoot, image_root, sidecar_archive, skip_reason
from .footprint_render import TARGETS, render
from .image_env import image_env
from .process_stats import (
    cpu_seconds,
    free_port,
    readyz_status,
    status_kb,
    stop_process,
    summary,
)

__all__ = ["TARGETS", "default_configs", "main", "run_footprint"]

REPO = Path(__file__).resolve().parent.parent
SEED_DOC = REPO.parent / "shared" / "seeds" / "003_0e025ccb3d733202.txt"
_UPSTREAM_KEY_ENV = "ECHELON_FOOTPRINT_UPSTREAM_KEY"


# -- processes -----------------------------------------------------------------------------------

def _sidecar_cmd() -> list[str]:
    script = Path(sys.executable).parent / "echelon-sidecar"
    return [str(script)] if script.exists() else [sys.executable, "-m", "echelon_sidecar.cli"]


class _Sidecar:
    """``echelon-sidecar`` on ``config`` with ports from the OS, its log in ``log``."""

    def __init__(self, config: Path | str, log: Path, env: dict[str, str] | None = None,
                 image: ImageRoot | None = None) -> None:
        self.port, self.admin_port = free_port(), free_port()
        cmd = [*(image.launcher() if image else _sidecar_cmd()), "--config", str(config),
               "--port", str(self.port), "--admin-host", "127.0.0.1",
               "--admin-port", str(self.admin_port), "--log-format", "json"]
        self._log = log.open("ab")
        self.started = time.perf_counter()
        # in the image: the image's environment alone, as its containers get it
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=image.env if image else {**os.environ, **(env or {})})

    def wait_ready(self, deadline: float) -> float | None:
        """Seconds from the spawn to the first 200 of /readyz (None: not within deadline)."""
        stop = self.started + deadline
        while time.perf_counter() < stop and self.proc.poll() is None:
            if readyz_status(self.admin_port) == 200:
                return time.perf_counter() - self.started
            time.sleep(0.005)
        return None

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


# -- configs -------------------------------------------------------------------------------------

def default_configs() -> list[Path]:
    configs = [REPO / "configs" / "llms", REPO / "configs" / "_task_groups.yaml",
               REPO / "configs" / "k8s"]
    if SEED_DOC.exists():
        configs.append(SEED_DOC)
    return configs


def _document_config(doc: Path, workdir: Path) -> Path:
    """A source document (text with fenced YAML): its first YAML block (the combined
    ``_task_groups.yaml`` example) and, as the document has none, the example catalog."""
    blocks = re.findall(r"```ya?ml\n(.*?)```", doc.read_text(), flags=re.S)
    if not blocks:
        raise ValueError(f"{doc}: no ```yaml block")
    text = blocks[0]
    if not re.search(r"^models:", text, flags=re.M):
        text += "\n" + (REPO / "configs" / "llms" / "models.yaml").read_text()
    out = workdir / f"{doc.stem}.yaml"
    out.write_text(text)
    return out


def _label(config: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(config.resolve().relative_to(REPO))
    return f"seed:{config.name}" if config.suffix in (".txt", ".md") else str(config)


# -- start-up and idle ---------------------------------------------------------------------------

def measure_start(config: Path | str, runs: int, settle: float, workdir: Path,
                  deadline: float = 30.0, image: ImageRoot | None = None) -> dict[str, Any]:
    """``runs`` starts of a sidecar on ``config``: ready time, CPU to ready, idle RSS (in
    ``image``, ``config`` a path inside it: see bench/footprint_image.py)."""
    ready, cpu, rss, hwm, anon = [], [], [], [], []
    failures: list[str] = []
    log = workdir / f"sidecar-{len(list(workdir.glob('sidecar-*.log')))}.log"
    for _ in range(runs):
        sidecar = _Sidecar(config, log, image=image)
        try:
            seconds = sidecar.wait_ready(deadline)
            if seconds is None:
                failures.append(f"not ready within {deadline:g}s (exit {sidecar.proc.poll()})")
                continue
            pid = sidecar.proc.pid
            ready.append(seconds)
            cpu.append(cpu_seconds(pid))
            time.sleep(settle)
            status = status_kb(pid)
            rss.append(status.get("VmRSS", 0) / 1024)
            hwm.append(status.get("VmHWM", 0) / 1024)
            anon.append(status.get("RssAnon", 0) / 1024)
        finally:
            sidecar.stop()
    return {"ready_s": summary(ready), "cpu_s": summary(cpu),
            "idle_rss_mb": summary(rss, 1), "hwm_mb": summary(hwm, 1),
            "rss_anon_mb": summary(anon, 1), "failures": failures, "log": str(log)}


def compile_sidecar() -> int:
    """Compile the sidecar package's bytecode beside its sources; how many files it wrote."""
    import echelon_sidecar

    before = _pyc_count(Path(echelon_sidecar.__file__).parent)
    compileall.compile_dir(Path(echelon_sidecar.__file__).parent, quiet=1)
    return _pyc_count(Path(echelon_sidecar.__file__).parent) - before


def _pyc_count(root: Path) -> int:
    return sum(1 for _ in root.rglob("__pycache__/*.pyc"))


# -- open streams --------------------------------------------------------------------------------

@contextlib.contextmanager
def _fake_upstream(workdir: Path, chunks: int, delay_ms: float) -> Iterator[int]:
    port_file = workdir / "upstream.port"
    cmd = [sys.executable, "-m", "echelon_tools.fake_provider", "--port", "0",
           "--port-file", str(port_file), "--stream-chunks", str(chunks),
           "--chunk-delay-ms", str(delay_ms), "--record-requests", "0"]
    with (workdir / "upstream.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            stop = time.monotonic() + 30
            while not port_file.exists():
                if proc.poll() is not None or time.monotonic() > stop:
                    raise RuntimeError("the fake upstream did not start (see upstream.log)")
                time.sleep(0.02)
            yield int(port_file.read_text())
        finally:
            stop_process(proc)


def _stream_config(upstream_port: int, streams: int) -> dict[str, Any]:
    big = 10 * streams + 1000
    return {
        "models": {"slow": {"provider": "openai", "model": "slow-stream",
                            "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                            "api_key_env": _UPSTREAM_KEY_ENV}},
        "task_groups": {"streams": {"echelon1": {
            "models": ["slow"], "priority": 1, "concurrency_limit": big, "rpm_limit": big * 60,
            "timeout": 300, "max_retries": 0}}},
    }


async def _hold_streams(url: str, count: int, deadline: float, pid: int) -> dict[str, Any]:
    import aiohttp

    body = {"model": "streams", "stream": True,
            "messages": [{"role": "user", "content": "stream slowly please"}]}
    opened = asyncio.Event()
    first: list[float] = []
    errors: list[str] = []
    ended: list[int] = []  # streams that reached their end (before they were closed)
    started = time.perf_counter()

    async def one(session: aiohttp.ClientSession) -> None:
        try:
            async with session.post(url, json=body) as resp:
                if resp.status != 200:
                    errors.append(f"HTTP {resp.status}")
                    return
                await resp.content.readany()
                first.append(time.perf_counter() - started)
                if len(first) == count:
                    opened.set()
                async for _ in resp.content.iter_any():
                    pass
                ended.append(1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors.append(type(exc).__name__)
        finally:
            if len(first) + len(errors) >= count:
                opened.set()

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=deadline)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(one(session)) for _ in range(count)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(opened.wait(), deadline)
        open_s = time.perf_counter() - started
        await asyncio.sleep(0.5)
        rss = max(status_kb(pid).get("VmRSS", 0) for _ in range(3)) / 1024
        held_open = len(first) - len(ended)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"opened": len(first), "open_at_sample": held_open, "errors": len(errors),
            "error_kinds": sorted(set(errors)),
            "open_s": round(open_s, 2), "rss_mb": round(rss, 1),
            "first_chunk_p50_s": round(statistics.median(first), 3) if first else None}


def measure_streams(count: int, chunks: int, delay_ms: float, settle: float, workdir: Path,
                    deadline: float) -> dict[str, Any]:
    """RSS of one sidecar holding ``count`` open streams against a slow fake upstream."""
    with _fake_upstream(workdir, chunks, delay_ms) as upstream_port:
        config = workdir / "streams.yaml"
        config.write_text(json.dumps(_stream_config(upstream_port, count)))  # JSON is YAML
        sidecar = _Sidecar(config, workdir / "sidecar-streams.log",
                           env={_UPSTREAM_KEY_ENV: "sk-footprint"})
        try:
            if sidecar.wait_ready(deadline) is None:
                raise RuntimeError("the streams sidecar did not get ready (see its log)")
            pid = sidecar.proc.pid
            time.sleep(settle)
            idle = status_kb(pid).get("VmRSS", 0) / 1024
            url = f"http://127.0.0.1:{sidecar.port}/v1/chat/completions"
            held = asyncio.run(_hold_streams(url, count, deadline, pid))
            time.sleep(settle)
            after = status_kb(pid)
        finally:
            sidecar.stop()
    held.update(count=count, idle_rss_mb=round(idle, 1),
                per_stream_kb=round((held["rss_mb"] - idle) * 1024
                                    / max(held["open_at_sample"], 1), 1),
                after_close_rss_mb=round(after.get("VmRSS", 0) / 1024, 1),
                hwm_mb=round(after.get("VmHWM", 0) / 1024, 1),
                stream_chunks=chunks, chunk_delay_ms=delay_ms)
    return held


# -- the report ----------------------------------------------------------------------------------

def _targets(configs: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for label, result in configs.items():
        for key, (limit, unit) in TARGETS.items():
            value = result[key]["median"]
            out.append({"config": label, "what": key, "target": f"< {limit:g} {unit}",
                        "measured": value, "met": value is not None and value < limit})
    return out


def measure_in_image(configs: Sequence[Path], runs: int, settle: float, workdir: Path,
                     deadline: float) -> dict[str, Any]:
    """The same starts inside the sidecar image (bench/footprint_image.py), or why not."""
    archive = sidecar_archive()
    reason = skip_reason(archive)
    if reason is not None or archive is None:
        sys.stderr.write(f"[footprint] in the image: skipped ({reason})\n")
        return {"skipped": reason}
    out: dict[str, Any] = {"archive": archive.name, "configs": {}}
    with image_root(archive) as image:
        out["user"] = image.user
        for n, config in enumerate(configs):
            path = _document_config(config, workdir) if config.suffix in (".txt", ".md") \
                else config
            label = _label(config)
            result = out["configs"][label] = measure_start(
                image.add_config(path, str(n)), runs, settle, workdir, deadline, image=image)
            sys.stderr.write(f"[footprint] in the image, {label}: ready "
                             f"{result['ready_s']['median']} s, idle RSS "
                             f"{result['idle_rss_mb']['median']} MB\n")
    return out


@contextlib.contextmanager
def _as_the_image_runs() -> Iterator[dict[str, str]]:
    """Every process measured gets the sidecar image's environment (sidecar/Dockerfile; its
    ``PATH`` aside), the TLS trust above all: yields what was set."""
    env = {k: v for k, v in image_env().items() if k != "PATH"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_footprint(configs: Sequence[Path] | None = None, *, runs: int = 7, settle: float = 1.0,
                  streams: int = 1000, stream_chunks: int = 400, chunk_delay_ms: float = 250.0,
                  deadline: float = 60.0, compile_first: bool = True,
                  workdir: Path | None = None) -> dict[str, Any]:
    """Measure and return the report (see the module docstring); prints progress to stderr."""
    compiled = compile_sidecar() if compile_first else None
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(_as_the_image_runs())
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="echelon-footprint.")))
        report: dict[str, Any] = {
            "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "python": sys.version.split()[0],
                     "runs": runs, "settle_s": settle, "cpus": os.cpu_count(),
                     "loadavg": os.getloadavg(),
                     "bytecode": "as found" if compiled is None else
                     f"compiled first ({compiled} files written)", "env": env},
            "interpreter": measure_interpreter(runs),
            "floor": measure_floor(runs, settle, deadline),
            "floor_steps": measure_floor_steps(min(runs, 3), settle, deadline),
            "configs": {},
        }
        floor = report["floor"]
        sys.stderr.write(f"[footprint] floor (the dependencies alone): ready "
                         f"{floor['ready_s']['median']} s, idle RSS "
                         f"{floor['idle_rss_mb']['median']} MB\n")
        for config in configs or default_configs():
            path = _document_config(config, workdir) if config.suffix in (".txt", ".md") \
                else config
            label = _label(config)
            result = report["configs"][label] = measure_start(path, runs, settle, workdir,
                                                              deadline)
            sys.stderr.write(f"[footprint] {label}: ready {result['ready_s']['median']} s "
                             f"(cpu {result['cpu_s']['median']} s), idle RSS "
                             f"{result['idle_rss_mb']['median']} MB\n")
        report["in_image"] = measure_in_image(configs or default_configs(), runs, settle,
                                              workdir, deadline)
        if streams > 0:
            result = report["streams"] = measure_streams(streams, stream_chunks, chunk_delay_ms,
                                                         settle, workdir, deadline)
            sys.stderr.write(f"[footprint] {result['opened']}/{streams} streams open: RSS "
                             f"{result['rss_mb']} MB (idle {result['idle_rss_mb']} MB, "
                             f"{result['per_stream_kb']} kB per stream)\n")
        report["targets"] = _targets({**report["configs"], **{
            f"in the image: {label}": r
            for label, r in report["in_image"].get("configs", {}).items()}})
        report["meta"]["loadavg_after"] = os.getloadavg()
    return report


def image_size(images: Path | None = None) -> dict[str, Any] | None:
    """The sidecar image scripts/build-images wrote (``dist/images/echelon-sidecar-*.json``):
    name, size and compressed size in MB; None when there is none."""
    folder = images or Path(__file__).resolve().parents[1] / "dist" / "images"
    found = sorted(folder.glob("echelon-sidecar-*.json"))
    if not found:
        return None
    meta = json.loads(found[-1].read_text())
    return {"name": meta["name"], "size_mb": round(meta["size"] / 1e6, 1),
            "compressed_mb": round(meta["compressed"] / 1e6, 1)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.footprint",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--config", action="append", type=Path, metavar="PATH",
                   help="a config file or directory, or a source document with fenced YAML "
                   "(repeatable; default: the example configs and the seed document)")
    p.add_argument("--runs", type=int, default=7, help="starts per config (default 7)")
    p.add_argument("--settle", type=float, default=1.0,
                   help="idle seconds before RSS is read (default 1)")
    p.add_argument("--streams", type=int, default=1000,
                   help="concurrent open streams (default 1000; 0 skips them)")
    p.add_argument("--stream-chunks", type=int, default=400,
                   help="chunks per stream (default 400: with --chunk-delay-ms, longer than "
                   "opening them all takes; they are closed once measured)")
    p.add_argument("--chunk-delay-ms", type=float, default=250.0)
    p.add_argument("--deadline", type=float, default=60.0,
                   help="the longest any one wait may take, in seconds (default 60)")
    p.add_argument("--no-compile", action="store_true",
                   help="do not compile the sidecar's bytecode first (measure the tree as is)")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the report as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = run_footprint(args.config, runs=args.runs, settle=args.settle,
                           streams=args.streams, stream_chunks=args.stream_chunks,
                           chunk_delay_ms=args.chunk_delay_ms, deadline=args.deadline,
                           compile_first=not args.no_compile)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    sys.stdout.write(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
