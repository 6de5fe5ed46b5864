"""Server processes of a benchmark: started pinned to a core, watched for peak RSS, stopped."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import psutil

__all__ = ["Proc", "free_port", "pinned", "wait_http"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: Sequence[str], core: int | None) -> list[str]:
    """``cmd`` run on one CPU core (``taskset -c``), when there is a core and taskset."""
    if core is None or shutil.which("taskset") is None:
        return list(cmd)
    return ["taskset", "-c", str(core), *cmd]


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None,
              headers: dict[str, str] | None = None) -> None:
    """Until ``url`` answers (any HTTP status): the server is up."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:g}s") from None
            time.sleep(0.1)


class Proc:
    """A server process: its log file, its peak RSS (process and children) while it ran."""

    def __init__(self, name: str, cmd: Sequence[str], *, core: int | None, log_dir: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.cmd = pinned(cmd, core)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                      env={**os.environ, **(env or {})},
                                      start_new_session=True)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name=f"rss-{name}", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _rss(self) -> int:
        try:
            root = psutil.Process(self.popen.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            try:
                if p.name() != "taskset":
                    total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process and its children so far."""
        try:
            root = psutil.Process(self.popen.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self._rss())
            self._stop.wait(0.2)

    def peak_rss_mb(self) -> float:
        self.peak_rss = max(self.peak_rss, self._rss())
        return round(self.peak_rss / 2**20, 1)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=5)
        self._thread.join(timeout=2)
        self._log.close()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
