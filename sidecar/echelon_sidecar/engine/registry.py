"""The engine's stateful objects by stable key, carried over reloads when unchanged.

Keys name what an object is about (``("breaker", group, model)``, ``("slots", "echelon",
group, tier)``, ``("rate", "pool", name)``, ``("rotation", pool)``, ...); ``params`` are what
it was built from. When a new config is loaded, an object whose key and parameters are
unchanged is kept (circuit state, counters, in-flight slots, rate logs, pool rotation and
health, session pins); one whose parameters changed is replaced by a fresh object, and the old
one drains: requests in flight keep releasing into the object they acquired from.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

__all__ = ["StateRegistry"]

T = TypeVar("T")
Key = tuple[str, ...]


class StateRegistry:
    """Objects of one config generation; built against the previous generation's."""

    __slots__ = ("_objects", "_previous")

    def __init__(self, previous: StateRegistry | None = None) -> None:
        self._objects: dict[Key, tuple[Hashable, Any]] = {}
        self._previous: dict[Key, tuple[Hashable, Any]] = (
            previous._objects if previous is not None else {}
        )

    def get(self, key: Key, params: Hashable, factory: Callable[[], T]) -> T:
        """The object for ``key``: this generation's, else the previous one's if ``params``
        are equal, else a new one from ``factory``."""
        found = self._objects.get(key)
        if found is not None:
            return found[1]  # type: ignore[no-any-return]
        old = self._previous.get(key)
        obj: T = old[1] if old is not None and old[0] == params else factory()
        self._objects[key] = (params, obj)
        return obj

    def seal(self) -> None:
        """Drop the previous generation (objects not carried over are left to drain)."""
        self._previous = {}

    def items(self, kind: str) -> Iterator[tuple[Key, Any]]:
        for key, (_, obj) in self._objects.items():
            if key[0] == kind:
                yield key, obj
