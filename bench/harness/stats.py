"""Percentiles and summaries of latency samples (seconds in, milliseconds out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["percentile", "summarize"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted samples, by linear interpolation."""
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(samples: Sequence[float], elapsed: float) -> dict[str, Any]:
    """Count, throughput and latency percentiles (ms) of samples in seconds."""
    ordered = sorted(samples)
    ms = 1000.0
    return {
        "requests": len(ordered),
        "seconds": round(elapsed, 3),
        "rps": round(len(ordered) / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(percentile(ordered, 50) * ms, 3) if ordered else None,
        "p90_ms": round(percentile(ordered, 90) * ms, 3) if ordered else None,
        "p99_ms": round(percentile(ordered, 99) * ms, 3) if ordered else None,
        "max_ms": round(ordered[-1] * ms, 3) if ordered else None,
        "mean_ms": round(sum(ordered) / len(ordered) * ms, 3) if ordered else None,
    }
