"""Watching the config path and reloading it without dropping in-flight requests.

The watcher compares a signature of every config file (its resolved path, size and mtime), so
the ConfigMap volume pattern -- a ``..data`` symlink swapped atomically -- is seen like any
edit. A valid new config is handed to the engine (in-flight requests finish on the plans they
hold; breaker state of unchanged instances is kept). An invalid one is refused: the old config
keeps serving and the refusal shows in ``/v1/status``, in ``echelon_config_reloads{result=
"failure"}`` and in the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from ..config import LoadedConfig, config_files, load_config
from ..errors import ConfigError

__all__ = ["ConfigWatcher", "config_signature"]

_log = logging.getLogger("echelon.sidecar.reload")

Signature = tuple[tuple[str, int, int], ...]


def config_signature(path: Path) -> Signature:
    try:
        files = config_files(path)
    except ConfigError:
        return ()
    out = []
    for file in files:
        try:
            real = os.path.realpath(file)
            stat = os.stat(real)
        except OSError:
            continue
        out.append((real, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


class ConfigWatcher:
    """Polls ``path`` every ``interval`` seconds and calls back with each valid new config."""

    def __init__(self, path: Path, interval: float) -> None:
        self.path = path
        self.interval = interval
        self.signature: Signature = ()

    def load(self) -> LoadedConfig:
        """Load now, in this thread (raises ConfigError). What was read is remembered either
        way: a refused file is not retried until it changes again."""
        signature = config_signature(self.path)
        try:
            return load_config(self.path)
        finally:
            self.signature = signature

    def changed(self) -> bool:
        return config_signature(self.path) != self.signature

    async def load_async(self) -> LoadedConfig:
        """``load()`` in the default executor: the event loop keeps serving meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(None, self.load)
