"""`echelon fake-provider --tls-cert/--tls-key`: HTTPS with a CA of the test's own, and the
connections it accepted (handshakes) counted in /_fake/stats."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest
from bench.harness.tls import make_ca

from echelon_tools.fake_provider import FakeProvider, FakeSettings


async def test_serves_https_trusted_through_its_ca_and_counts_connections(
        tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    settings = FakeSettings(tls_cert=str(ca.cert), tls_key=str(ca.key))
    async with FakeProvider(settings) as fp:
        assert fp.base_url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(ca.ca_cert))
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusted)) as s:
            for _ in range(3):  # one keep-alive connection: one handshake
                async with s.post(f"{fp.openai_base_url}/chat/completions", json=body) as r:
                    assert r.status == 200
                    assert (await r.json())["object"] == "chat.completion"
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=ssl.create_default_context())) as s:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await s.post(f"{fp.openai_base_url}/chat/completions", json=body)
        stats = fp.stats()
        assert stats["total"] == 3
        # the refused handshake never became a connection the server counts
        assert stats["connections"] == 1


def test_tls_cert_and_key_go_together() -> None:
    with pytest.raises(ValueError, match="tls_cert and tls_key"):
        FakeSettings(tls_cert="/x.pem")
