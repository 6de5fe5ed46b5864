"""What every table of docs/benchmarks.md shares: the arms' names and number formats."""

from __future__ import annotations

from typing import Any

__all__ = ["ARM_LABELS", "fmt", "rps"]

ARM_LABELS = {
    "direct": "direct to the upstream",
    "bare": "bare aiohttp proxy (asyncio loop)",
    "stream": "bare streaming proxy (uvloop, chunk by chunk)",
    "echelon": "Echelon sidecar",
    "litellm": "LiteLLM proxy",
}


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def rps(value: Any) -> str:
    return "–" if value is None else f"{value:,.0f}"
