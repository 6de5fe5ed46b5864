"""Logging: JSON lines in containers (``ECHELON_LOG_FORMAT=json``), plain text on a terminal.

Records carry the request id and the target when there is one, never a credential: messages
pass through the same redaction as upstream error messages.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson

from .engine.classify import short_message

__all__ = ["setup_logging"]

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": short_message(record.getMessage(), limit=2000),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["error"] = short_message(self.formatException(record.exc_info), limit=4000)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {k: v for k, v in vars(record).items()
                  if k not in _STANDARD and not k.startswith("_")}
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return "\n".join(short_message(line, limit=2000) for line in text.splitlines())


def setup_logging(level: str = "info", fmt: str | None = None) -> None:
    fmt = fmt or os.environ.get("ECHELON_LOG_FORMAT") or (
        "text" if sys.stderr.isatty() else "json")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
