"""Session affinity: multi-turn conversations stay on the instance that served them.

A request is multi-turn when it carries a session id, or is past its first turn and has a
conversation key (the server hashes the conversation's opening -- system prompt(s), first
user message -- and its first assistant reply). Its session's pinned instance is tried first
(pool rotation is not applied to it); if that fails, the request falls back as usual and the
session is re-pinned to whichever instance served it. Single-turn requests rotate; a first
turn without a session id is never routed by a pin, but once its reply is known the server
pins the instance that served it under the key its second turn will have
(``Serving.pin_as``), so every such first turn takes one entry here, within ``max_sessions``.

Pins live per target. A pin expires after ``idle_ttl`` seconds without use; at most
``max_sessions`` are kept, the least recently used going first. Pools take these settings
from their ``session_affinity``; groups (and nodes without a pool) use the defaults
(1800 s, 10,000 sessions).
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["DEFAULT_IDLE_TTL", "DEFAULT_MAX_SESSIONS", "InstanceKey", "SessionPins"]

DEFAULT_IDLE_TTL = 1800.0
DEFAULT_MAX_SESSIONS = 10_000

InstanceKey = tuple[str, str, str]
"""(group, tier, model id)."""


class SessionPins:
    """Session key -> pinned instance, with an idle TTL and an LRU bound."""

    __slots__ = ("_pins", "idle_ttl", "max_sessions", "params")

    def __init__(
        self, idle_ttl: float = DEFAULT_IDLE_TTL, max_sessions: int = DEFAULT_MAX_SESSIONS
    ) -> None:
        self.idle_ttl = idle_ttl
        self.max_sessions = max_sessions
        self.params = (idle_ttl, max_sessions)
        self._pins: OrderedDict[str, tuple[InstanceKey, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pins)

    def get(self, key: str, now: float) -> InstanceKey | None:
        """The pinned instance (None if there is none or it expired); marks the session used."""
        pins = self._pins
        found = pins.get(key)
        if found is None:
            return None
        pin, used = found
        if now - used >= self.idle_ttl:
            del pins[key]
            return None
        pins[key] = (pin, now)
        pins.move_to_end(key)
        return pin

    def put(self, key: str, pin: InstanceKey, now: float) -> None:
        pins = self._pins
        pins[key] = (pin, now)
        pins.move_to_end(key)
        horizon = now - self.idle_ttl
        while pins:
            oldest = next(iter(pins.values()))
            if len(pins) > self.max_sessions or oldest[1] <= horizon:
                pins.popitem(last=False)
            else:
                break

    def forget(self, key: str) -> None:
        self._pins.pop(key, None)

    def snapshot(self, now: float) -> dict[str, object]:
        return {"sessions": len(self._pins), "idle_ttl": self.idle_ttl,
                "max_sessions": self.max_sessions}
