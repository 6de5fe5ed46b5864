"""The sidecar image's TLS trust: OpenSSL pointed at a hashed CA directory, not at a bundle.

sidecar/Dockerfile sets ``SSL_CERT_FILE=/dev/null`` and ``SSL_CERT_DIR=/etc/ssl/certs`` (each
CA read when a handshake needs it, instead of the whole bundle parsed into every TLS context).
Here ``echelon-sidecar`` runs as a process with that environment, its directory holding a test
CA (``openssl rehash``, as update-ca-certificates does for the system's): an HTTPS upstream
whose certificate that CA signed is served through both upstream clients, and one whose CA is
not in the directory is refused (``connect_error``), so the directory is really what decides.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest
from bench.harness.tls import make_ca
from bench.image_env import image_env

from echelon_tools.fake_provider import FakeProvider, FakeSettings

from ..conftest import HI, openai_model, write_config
from .test_process import Process

SIDECAR = Path(sys.executable).with_name("echelon-sidecar")


def hashed_directory(folder: Path, *certs: Path) -> Path:
    """A CA directory as OpenSSL looks certificates up in: ``<subject hash>.0`` links."""
    folder.mkdir()
    for cert in certs:
        shutil.copy(cert, folder / cert.name)
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    assert any(p.suffix == ".0" for p in folder.iterdir()), "openssl rehash made no link"
    return folder


@pytest.fixture
async def tls_fake(tmp_path: Path, upstream_key: str) -> AsyncIterator[tuple[FakeProvider, Path]]:
    ca = make_ca(tmp_path / "ca")
    settings = FakeSettings(api_key=upstream_key, tls_cert=str(ca.cert), tls_key=str(ca.key))
    async with FakeProvider(settings, shutdown_timeout=1.0) as fake:
        yield fake, ca.ca_cert


async def start_sidecar(fake: FakeProvider, folder: Path, env: dict[str, str]) -> Process:
    config = folder / "echelon.yaml"
    write_config(config, {"task_groups": {"g": {"echelon1": {"models": ["tls"]}}},
                          "models": {"tls": openai_model(fake, "up-tls")}})
    proc = await asyncio.create_subprocess_exec(
        str(SIDECAR), "--config", str(config), "--port", "0", "--admin-port", "0",
        "--admin-host", "127.0.0.1", "--log-format", "json",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **env})
    process = Process(proc)
    try:
        async with asyncio.timeout(20):
            await process.serving()
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return process


async def stop(process: Process) -> None:
    if process.proc.returncode is None:
        process.proc.terminate()
        async with asyncio.timeout(15):
            await process.proc.wait()


def the_images_trust(directory: Path, client: str) -> dict[str, str]:
    """The image's TLS environment, its directory replaced by ``directory``."""
    env = image_env()
    assert (env["SSL_CERT_FILE"], env["SSL_CERT_DIR"]) == ("/dev/null", "/etc/ssl/certs")
    proxies = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
    return {"SSL_CERT_FILE": env["SSL_CERT_FILE"], "SSL_CERT_DIR": str(directory),
            "ECHELON_UPSTREAM_CLIENT": client, **dict.fromkeys(proxies, "")}


@pytest.mark.parametrize("client", ["lean", "aiohttp"])
async def test_an_https_upstream_signed_by_a_ca_of_the_directory_is_served(
        tls_fake: tuple[FakeProvider, Path], tmp_path: Path, client: str) -> None:
    fake, ca_cert = tls_fake
    directory = hashed_directory(tmp_path / "certs", ca_cert)
    process = await start_sidecar(fake, tmp_path, the_images_trust(directory, client))
    sdk = openai.AsyncOpenAI(base_url=process.data_url + "/v1", api_key="x", max_retries=0,
                             timeout=20)
    try:
        reply = await sdk.chat.completions.create(model="g", messages=HI)
        assert reply.choices[0].message.content == "[fake:up-tls] hello there sidecar"
        stream = await sdk.chat.completions.create(model="g", messages=HI, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "[fake:up-tls] hello there sidecar"
    finally:
        await sdk.close()
        await stop(process)
    assert fake.stats()["by_model"] == {"up-tls": 2}


@pytest.mark.parametrize("client", ["lean", "aiohttp"])
async def test_an_upstream_whose_ca_is_not_in_the_directory_is_refused(
        tls_fake: tuple[FakeProvider, Path], tmp_path: Path, client: str) -> None:
    fake, _ = tls_fake
    other = make_ca(tmp_path / "other")  # a CA the upstream's certificate does not come from
    directory = hashed_directory(tmp_path / "certs", other.ca_cert)
    process = await start_sidecar(fake, tmp_path, the_images_trust(directory, client))
    sdk = openai.AsyncOpenAI(base_url=process.data_url + "/v1", api_key="x", max_retries=0,
                             timeout=20)
    try:
        with pytest.raises(openai.APIStatusError) as info:
            await sdk.chat.completions.create(model="g", messages=HI)
        assert info.value.status_code in (502, 503), info.value
        async with aiohttp.ClientSession() as http, \
                http.get(f"{process.admin_url}/v1/status") as resp:
            status = json.loads(await resp.text())
    finally:
        await sdk.close()
        await stop(process)
    (instance,) = status["instances"]
    assert instance["last_error"] == "connect_error"
    assert fake.stats()["total"] == 0, "no request reached the untrusted upstream"
