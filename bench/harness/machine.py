"""What the numbers were measured on: CPU, cores, kernel, Python, library versions, load."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["IdlePoll", "cpu_idle", "describe", "git_state", "loadavg"]

CPU_DMA_LATENCY = Path("/dev/cpu_dma_latency")
_CPUIDLE = Path("/sys/devices/system/cpu/cpuidle")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_idle() -> dict[str, Any]:
    """How this machine's CPUs idle: the cpuidle driver and governor, the idle states of CPU 0,
    and (in a KVM guest with the haltpoll driver) how long a vCPU polls before it halts."""
    states = []
    for state in sorted(Path("/sys/devices/system/cpu/cpu0/cpuidle").glob("state*")):
        name = _read(state / "name")
        if name:
            states.append(f"{name} ({_read(state / 'latency')} µs)")
    out: dict[str, Any] = {"driver": _read(_CPUIDLE / "current_driver"),
                           "governor": _read(_CPUIDLE / "current_governor"),
                           "states": states}
    halt_poll = _read(Path("/sys/module/haltpoll/parameters/guest_halt_poll_ns"))
    if halt_poll is not None:
        out["guest_halt_poll_ns"] = int(halt_poll)
    return out


class IdlePoll:
    """Idle CPUs poll instead of halting while this is held: a PM QoS request of 0 µs on
    ``/dev/cpu_dma_latency`` makes the cpuidle governor pick only its polling state (what
    tuned's latency-performance profile and cyclictest do). On a VM an idle vCPU otherwise
    halts into the hypervisor, and every cross-core wake-up (four per proxied request here:
    client -> gateway -> upstream -> gateway -> client) waits for the host to run that vCPU
    again -- at one request at a time that wait, not the code, makes the p99. The request lasts
    while the file is open, so it ends with this process whatever happens."""

    def __init__(self, path: Path = CPU_DMA_LATENCY) -> None:
        self.path = path
        self._fd: int | None = None
        self.error: str | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def hold(self) -> bool:
        if self._fd is None:
            try:
                fd = os.open(self.path, os.O_WRONLY)
                try:
                    os.write(fd, struct.pack("i", 0))
                except OSError:
                    os.close(fd)
                    raise
            except OSError as exc:
                self.error = f"{self.path}: {exc.strerror or exc}"
                return False
            self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The machine's own idle behaviour for the block, then held again (if it was)."""
        was = self.held
        self.release()
        try:
            yield
        finally:
            if was:
                self.hold()

    def __enter__(self) -> IdlePoll:
        self.hold()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

REPO = Path(__file__).resolve().parents[2]


def git_state() -> dict[str, Any]:
    """The commit measured, and which code paths had uncommitted changes at the time."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              timeout=30, check=False)
        return proc.stdout.strip()
    dirty = [line[3:] for line in git("status", "--porcelain").splitlines()
             if line[3:].startswith(("sidecar/", "operator/"))]
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "uncommitted": dirty}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe(wrk: str | None, litellm_python: Path | None) -> dict[str, Any]:
    litellm = None
    if litellm_python is not None:
        proc = subprocess.run([str(litellm_python), "-c", "import importlib.metadata as m;"
                               "print(m.version('litellm'), m.version('uvicorn'))"],
                              capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode == 0:
            litellm = dict(zip(("litellm", "uvicorn"), proc.stdout.split(), strict=False))
    wrk_version = None
    if wrk:
        proc = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10,
                              check=False)
        wrk_version = (proc.stdout or proc.stderr).splitlines()[0].strip() if (
            proc.stdout or proc.stderr) else None
    mem = None
    try:
        import psutil
        mem = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # pragma: no cover - psutil is a bench dependency
        pass
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {
            "echelon": _version("echelon"),
            "aiohttp": _version("aiohttp"),
            "uvloop": _version("uvloop"),
            "orjson": _version("orjson"),
            **(litellm or {"litellm": None}),
        },
        "wrk": wrk_version,
        "cpu_idle": cpu_idle(),
        "loadavg_start": loadavg(),
        "git": git_state(),
    }
