"""What the engine is asked to serve: an :class:`EngineRequest` on a resolved ``Target``.

``engine.resolve(model, node=None)`` gives the target (see ``targets``); the request adds what
varies per call: the payload for the provider, the caller's fallback groups, the session, the
deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .targets import Target

__all__ = ["EngineRequest"]


@dataclass(slots=True)
class EngineRequest:
    """One request to serve. ``payload`` is opaque to the engine and given to the provider."""

    target: Target
    payload: object = None
    fallback_groups: list[str] | None = None
    """The caller's fallback groups: replace the entry group's (and the node's) own list."""
    session_id: str | None = None
    user_turns: int = 1
    """How many user messages the conversation holds; more than one means multi-turn."""
    conversation_key: str | None = None
    """Session key when there is no session id but the conversation is multi-turn (the
    server passes a hash of the system prompt and the first user message)."""
    deadline: float | None = None
    """Absolute clock time by which the request must end (None: no deadline)."""
    stream: bool = False

    def session_key(self) -> str | None:
        """The key its session is pinned under, or None for a single-turn request."""
        if self.session_id:
            return self.session_id
        if self.user_turns > 1 and self.conversation_key:
            return self.conversation_key
        return None
