"""Settings of one sidecar process (from the command line)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerSettings"]


@dataclass(frozen=True, slots=True)
class ServerSettings:
    config: Path
    pool: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    admin_host: str = "0.0.0.0"
    admin_port: int = 9090
    reload_interval: float = 2.0
    """Seconds between checks of the config path for changes (0 disables watching)."""
    drain_timeout: float = 20.0
    """Seconds SIGTERM waits for in-flight requests before closing them."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body accepted (413 beyond)."""
    request_timeout: float | None = None
    """Deadline of a whole request in seconds when the caller sets no X-Echelon-Timeout."""
