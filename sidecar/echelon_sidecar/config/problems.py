"""A single finding of validation: where it is, what is wrong, how bad it is."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

__all__ = ["Problem", "Severity", "format_path"]


def format_path(path: Sequence[str | int]) -> str:
    """``("task_groups", "fast", "models", 0)`` -> ``task_groups.fast.models[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or doubtful) in a configuration."""

    message: str
    path: tuple[str | int, ...] = ()
    source: str | None = None
    line: int | None = None
    severity: Severity = "error"
    hint: str | None = field(default=None)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    @property
    def where(self) -> str:
        loc = self.source or "<config>"
        if self.line is not None:
            loc += f":{self.line}"
        return loc

    def __str__(self) -> str:
        text = f"{self.where}: {self.severity}: {format_path(self.path)}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "source": self.source,
            "line": self.line,
            "path": format_path(self.path),
            "message": self.message,
            "hint": self.hint,
        }


def errors_of(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]
