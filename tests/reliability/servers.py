"""A fake upstream and a sidecar on it, run in a background thread with their own event loop,
for tests whose client is synchronous (schemathesis uses ``requests``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echelon_sidecar.server import ServerSettings, Sidecar
from echelon_tools.fake_provider import FakeProvider, FakeSettings

from ..integration.conftest import write_config


@dataclass
class ThreadedSidecar:
    data_url: str
    admin_url: str
    sidecar: Sidecar
    fake: FakeProvider
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Any, timeout: float = 30) -> Any:
        """Run ``coro`` on the servers' loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextmanager
def threaded_sidecar(folder: Path, config: Any, api_key: str, **settings: Any
                     ) -> Iterator[ThreadedSidecar]:
    """``config(fake) -> dict``: started in a thread, stopped (and the thread joined) on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sidecar-loop", daemon=True)
    thread.start()

    async def start() -> tuple[FakeProvider, Sidecar]:
        fake = await FakeProvider(FakeSettings(api_key=api_key, seed=7),
                                  shutdown_timeout=1.0).start()
        path = folder / "echelon.yaml"
        write_config(path, config(fake))
        options: dict[str, Any] = {"port": 0, "admin_port": 0, "admin_host": "127.0.0.1",
                                   "reload_interval": 0, "drain_timeout": 2.0, **settings}
        sidecar = Sidecar(ServerSettings(config=path, **options))
        await sidecar.start()
        return fake, sidecar

    async def stop(fake: FakeProvider, sidecar: Sidecar) -> None:
        await sidecar.stop()
        await fake.stop()

    try:
        fake, sidecar = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
        try:
            yield ThreadedSidecar(sidecar.data_url, sidecar.admin_url, sidecar, fake, loop)
        finally:
            asyncio.run_coroutine_threadsafe(stop(fake, sidecar), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
