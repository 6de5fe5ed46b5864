"""The side-by-side benchmark harness behind `python -m bench` (see cli.py)."""

from __future__ import annotations

__all__: list[str] = []
