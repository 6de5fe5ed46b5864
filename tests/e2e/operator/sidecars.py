"""Stand-ins and real processes for the sidecar side of the e2e tests."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


class StatusServer:
    """A fake sidecar admin port on loopback: ``/v1/status`` per docs/status-api.md, with
    circuit states the test sets (``set_state``)."""

    def __init__(self, instances: list[tuple[str, str]]) -> None:
        self.states = {key: "closed" for key in instances}
        self.requests = 0
        lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/v1/status":
                    self.send_error(404)
                    return
                with lock:
                    owner.requests += 1
                    body = json.dumps(owner.document()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.lock = lock
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def document(self) -> dict[str, Any]:
        return {
            "config_version": "test", "ready": True, "pool": "p", "sidecars": 1,
            "reload": {"reloads": 0, "failures": 0, "last_error": None, "last_attempt": None},
            "instances": [
                {"group": g, "model": m, "provider": "openai", "state": s,
                 "consecutive_failures": 0 if s == "closed" else 5,
                 "last_error": None if s == "closed" else "http_503",
                 "open_since": None, "open_until": None}
                for (g, m), s in sorted(self.states.items())
            ],
            "pools": {}, "limits": {},
        }

    def set_state(self, group: str, model: str, state: str) -> None:
        with self.lock:
            self.states[(group, model)] = state

    def __enter__(self) -> StatusServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def fake_provider(tmp_path: Path) -> Iterator[int]:
    """``echelon fake-provider`` on a free loopback port; yields the port."""
    port_file = tmp_path / "fake-provider.port"
    proc = subprocess.Popen([str(BIN / "echelon"), "fake-provider", "--host", "127.0.0.1",
                             "--port", "0", "--port-file", str(port_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("echelon fake-provider did not start")
            time.sleep(0.05)
        yield int(port_file.read_text().strip())
    finally:
        _stop(proc)


@contextmanager
def real_sidecar(config_dir: Path, pool: str, port: int, admin_port: int,
                 env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``echelon-sidecar`` on loopback, serving ``config_dir``; stopped at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "echelon-sidecar"), "--config", str(config_dir), "--pool", pool,
             "--host", "127.0.0.1", "--port", str(port), "--admin-host", "127.0.0.1",
             "--admin-port", str(admin_port), "--reload-interval", "0.2"],
            stdout=out, stderr=subprocess.STDOUT, env={**env, "PATH": str(BIN)})
    try:
        yield proc
    finally:
        _stop(proc)


def http_json(url: str, body: Any = None, method: str | None = None,
              timeout: float = 10) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
