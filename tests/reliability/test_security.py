"""Security properties of the sidecar that the rest of the suite does not already prove.

Covered elsewhere (see docs/reliability.md): the data port binds 127.0.0.1 by default
(tests/integration/sidecar/test_admin.py, test_process.py), no credential in admin answers,
error bodies or logs (test_admin.py), the request body limit and header validation
(test_bad_requests.py, and test_schemathesis.py's invalid requests), non-root images and the
injected container's securityContext (tests/unit/chart/test_dockerfiles.py,
tests/unit/operator/test_sidecar.py), least-privilege RBAC (tests/e2e/operator/test_rbac.py),
credentials in cluster objects (tests/e2e/reliability/test_secrets.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..integration.conftest import (
    API_KEY_ENV,
    FAKE_API_KEY,
    MakeSidecar,
    RunningSidecar,
    eventually,
    openai_model,
    write_config,
)
from .exchange import exchange

SIDECAR = Path(sys.executable).with_name("echelon-sidecar")
PROMPT = "the secret recipe is 7b1e9f-prompt-marker"
ADMIN_PATHS = ("/healthz", "/readyz", "/metrics", "/v1/status", "/openapi.json")


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {"g": {"echelon1": {"models": ["a"], "priority": 1},
                              "echelon2": {"models": ["b"], "priority": 2}}},
        "polling_pools": {"p": {"task_groups": ["g"]}},
        "models": {"a": openai_model(fake, "up-a"), "b": openai_model(fake, "up-b")},
    }


async def _admin_texts(sc: RunningSidecar) -> dict[str, str]:
    texts = {}
    for path in ADMIN_PATHS:
        async with sc.http.get(f"{sc.admin_url}{path}") as resp:
            texts[path] = await resp.text()
    return texts


async def test_admin_endpoints_expose_no_prompt_and_no_response_text(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    messages = [{"role": "user", "content": PROMPT}]
    served = await sc.openai.chat.completions.create(model="g", messages=messages)  # type: ignore[arg-type]
    answer = served.choices[0].message.content or ""
    assert "7b1e9f-prompt-marker" in answer, "the fake echoes the prompt: a known response text"
    # an upstream whose error message repeats the prompt (some do)
    fake.set_fault("up-a", f"500:message=could not handle {PROMPT}")
    chunks: list[Any] = []
    await sc.openai_stream(chunks, model="p", messages=messages)
    assert chunks
    await sc.anthropic.messages.create(model="g", max_tokens=20, messages=messages)  # type: ignore[arg-type]
    for path, text in (await _admin_texts(sc)).items():
        assert "7b1e9f-prompt-marker" not in text, f"{path} shows prompt or response text"
        assert "secret recipe" not in text, path
        assert FAKE_API_KEY[8:] not in text, path


async def test_response_headers_carry_no_credential_and_no_upstream_url(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-a", "503")
    async with aiohttp.ClientSession() as http:
        for stream in (False, True):
            seen = await exchange(http, sc.data_url, "g", stream=stream)
            assert seen.served_by == "b"
            text = json.dumps(seen.headers)
            assert FAKE_API_KEY[8:] not in text
            assert str(fake.port) not in text, "the upstream's address stays inside the pod"


# -- read-only root filesystem, no capabilities --------------------------------------------------

def _read_only_root_works() -> str | None:
    """None when this machine can run a process with / remounted read-only in a private mount
    namespace (needs unshare and mount rights), else why not."""
    if not (shutil.which("unshare") and shutil.which("setpriv")):
        return "unshare/setpriv not found"
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -o remount,bind,ro / && ! touch /.echelon-ro"],
        capture_output=True, text=True, timeout=20, check=False)
    if probe.returncode != 0:
        return f"cannot make a read-only root here: {(probe.stderr or probe.stdout).strip()}"
    return None


@pytest.fixture
def readable_config_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="echelon-ro-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def test_the_sidecar_serves_and_reloads_on_a_read_only_root_without_capabilities(
    fake: FakeProvider, readable_config_dir: Path
) -> None:
    """What the injected securityContext asks (readOnlyRootFilesystem, drop ALL, no privilege
    escalation) actually works: / is remounted read-only (/tmp included) in a private mount
    namespace and the sidecar runs with no capabilities and no_new_privs. It serves, picks up
    a new config, and drains on SIGTERM, logging no error."""
    why_not = _read_only_root_works()
    if why_not:
        pytest.skip(why_not)
    config = readable_config_dir / "echelon.yaml"
    write_config(config, _config(fake))
    config.chmod(0o644)
    inner = " ".join([
        "mount -o remount,bind,ro / &&",
        "exec setpriv --no-new-privs --inh-caps=-all --bounding-set=-all",
        str(SIDECAR), "--config", str(readable_config_dir), "--port", "0", "--admin-port", "0",
        "--admin-host", "127.0.0.1", "--log-format", "json", "--reload-interval", "0.2",
        "--drain-timeout", "5",
    ])
    env = {**os.environ, API_KEY_ENV: FAKE_API_KEY, "PYTHONDONTWRITEBYTECODE": "1",
           "TMPDIR": "/tmp"}
    proc = await asyncio.create_subprocess_exec(
        "unshare", "-m", "sh", "-c", inner, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    lines: list[dict[str, Any]] = []
    try:
        data_url = admin_url = ""
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            while not data_url:
                raw = await proc.stderr.readline()
                assert raw, f"the sidecar exited early: {lines}"
                record = json.loads(raw)
                lines.append(record)
                message = str(record["message"])
                if message.startswith("sidecar serving on "):
                    parts = message.split()
                    data_url, admin_url = parts[3], parts[5].rstrip(")")
        async with aiohttp.ClientSession() as http:
            for stream in (False, True):
                seen = await exchange(http, data_url, "g", stream=stream)
                assert (seen.kind, seen.served_by) == ("served", "a")

            async def version() -> str:
                async with http.get(f"{admin_url}/v1/status") as resp:
                    return str((await resp.json())["config_version"])

            before = await version()
            changed = _config(fake)
            changed["task_groups"]["g"]["description"] = "reloaded on a read-only root"
            write_config(config, changed)
            config.chmod(0o644)

            async def reloaded() -> bool:
                return await version() != before

            await eventually(reloaded, within=10, what="the new config to be loaded")
            seen = await exchange(http, data_url, "p", stream=False)
            assert seen.kind == "served"
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            async for raw in proc.stderr:
                lines.append(json.loads(raw))
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, lines[-5:]
    problems = [r for r in lines if r.get("level") in ("error", "critical")
                or "Read-only file system" in json.dumps(r)]
    assert not problems, problems
