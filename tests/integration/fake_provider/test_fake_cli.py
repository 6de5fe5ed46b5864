"""`python -m echelon_tools.fake_provider`: listens, writes --port-file, obeys --fault, stops on
signals."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import openai
import pytest

MODULE = ["-m", "echelon_tools.fake_provider"]


async def run_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *MODULE, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_serves_with_faults_writes_port_file_and_stops_on_signal(
    tmp_path: Path, sig: signal.Signals
) -> None:
    port_file = tmp_path / "run" / "port"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *MODULE, "--port", "0", "--port-file", str(port_file),
        "--api-key", "k", "--fault", "gpt-4=503", "--fault", "slow=latency:10", "--seed", "1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))
        assert port > 0
        assert port_file.read_text().strip() == str(port)
        assert "gpt-4=503" in line
        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k",
                                    max_retries=0, timeout=10)
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(
                model="gpt-4", messages=[{"role": "user", "content": "hi"}])
        ok = await client.chat.completions.create(
            model="slow", messages=[{"role": "user", "content": "hi"}])
        assert ok.choices[0].message.content == "[fake:slow] hi"
        await client.close()
        proc.send_signal(sig)
        async with asyncio.timeout(15):
            code = await proc.wait()
        assert code == 0
        assert not port_file.exists()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_bad_fault_spec_exits_2_and_says_what_is_wrong() -> None:
    code, _, err = await run_cli("--fault", "gpt-4=teapot")
    assert code == 2
    assert "--fault" in err
    assert "unknown fault 'teapot'" in err
    assert "Traceback" not in err


async def test_help_documents_the_fault_grammar() -> None:
    code, out, _ = await run_cli("--help")
    assert code == 0
    assert "SPEC := [rate:P:][first:K:]FAULT[:OPTION...]" in out
    for word in ("--port-file", "--fault MODEL=SPEC", "hang:headers", "cut:N", "retry-after="):
        assert word in out
