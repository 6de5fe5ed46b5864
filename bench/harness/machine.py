"""What the numbers were measured on: CPU, cores, kernel, Python, library versions, load."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["describe", "git_state", "loadavg"]

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
        "loadavg_start": loadavg(),
        "git": git_state(),
    }
