"""`FakeProvider`: run the fake upstreams in-process, for tests.

    async with FakeProvider(FakeSettings(api_key="sk-test")) as fp:
        client = openai.AsyncOpenAI(base_url=fp.openai_base_url, api_key="sk-test")
        fp.set_fault("gpt-4", "429:retry-after=2")
        ...
        assert fp.stats()["by_status"]["429"] == 1
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from .app import count_connections, create_app
from .faults import Fault
from .settings import FakeSettings
from .state import STATE, FakeState
from .stats import RecordedRequest, Stats

__all__ = ["FakeProvider"]


class FakeProvider:
    """The fake upstreams on `settings.host` (default 127.0.0.1), port 0 = OS-chosen.

    Runtime control mirrors the `/_fake/*` HTTP endpoints: `set_fault`, `clear_faults`,
    `stats`, `requests`, `reset`, `configure`.
    """

    def __init__(
        self, settings: FakeSettings | None = None, *, shutdown_timeout: float = 5.0
    ) -> None:
        self.settings = settings if settings is not None else FakeSettings()
        self.app = create_app(self.settings)
        self._runner: web.AppRunner | None = None
        self._shutdown_timeout = shutdown_timeout
        self.port = 0

    # lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeProvider:
        if self._runner is not None:
            raise RuntimeError("FakeProvider is already running")
        runner = web.AppRunner(
            self.app,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=self._shutdown_timeout,
        )
        await runner.setup()
        count_connections(runner)
        try:
            site = web.TCPSite(runner, self.settings.host, self.settings.port, reuse_address=True,
                               ssl_context=self.settings.ssl_context())
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = _bound_port(runner)
        self.settings.port = self.port
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeProvider:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # addresses ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host = self.settings.host
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.settings.tls_cert else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """OpenAI SDK convention: the base URL includes `/v1`."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Anthropic SDK convention: no `/v1` (the SDK adds it)."""
        return self.base_url

    @property
    def gemini_base_url(self) -> str:
        """google-genai convention: no version (the SDK adds `v1beta/`)."""
        return self.base_url

    # runtime control ---------------------------------------------------------------------

    @property
    def state(self) -> FakeState:
        return self.app[STATE]

    def set_fault(self, model: str, fault: str | Fault | dict[str, Any]) -> Fault:
        """Set the rule for `model` (or `*`) from a SPEC string, a `Fault` or its JSON."""
        rule = fault if isinstance(fault, Fault) else Fault.from_json(fault)
        self.state.faults.set(model, rule)
        return rule

    def clear_faults(self, model: str | None = None) -> None:
        """Remove every rule, or only `model`'s."""
        if model is None:
            self.state.faults.clear()
        else:
            self.state.faults.remove(model)

    def faults(self) -> dict[str, Fault]:
        return self.state.faults.rules()

    def reseed(self, seed: int | None = None) -> None:
        """Restart the `rate:P` RNG (with `seed`) and the `first:K` counters."""
        self.state.faults.reseed(seed)

    def stats(self) -> dict[str, Any]:
        """The same JSON as `GET /_fake/stats`."""
        return self.state.stats.snapshot()

    async def wait_for(self, predicate: Callable[[Stats], bool]) -> None:
        """Wait until `predicate(stats)` holds, e.g. `lambda s: s.in_flight == 8`.

        Re-checked whenever a request begins or ends; wrap in `asyncio.timeout(...)`.
        """
        await self.state.stats.wait_for(predicate)

    def requests(self, model: str | None = None) -> list[RecordedRequest]:
        """Recorded requests (oldest first), for `model` or across models."""
        return self.state.log.get(model)

    def last_request(self, model: str | None = None) -> RecordedRequest | None:
        records = self.state.log.get(model)
        return records[-1] if records else None

    def reset(self, *, clear_faults: bool = False, seed: int | None = None) -> None:
        """Zero counters and records; restart fault counters and the RNG."""
        self.state.reset(clear_faults=clear_faults, seed=seed)

    def configure(self, **changes: Any) -> None:
        """Change runtime settings (latency_ms, stream_chunks, chunk_delay_ms, reply, ...)."""
        self.settings.update(changes)
        self.state.log.keep = self.settings.record_requests


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError(f"could not find the bound port among {runner.addresses!r}")
