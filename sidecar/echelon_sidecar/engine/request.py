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
    """Which turn of its conversation the request is: 1 + the assistant replies in its
    history (each followed by the caller's next message: a user message or a tool result).
    More than one means multi-turn."""
    conversation_key: str | None = None
    """Session key when there is no session id but the request is multi-turn. The server
    passes a hash of the conversation's opening (system prompt(s), first user message) and
    its first assistant reply; it pins a first turn under the same key once the reply is
    known (``Serving.pin_as``), so that two conversations that opened alike but got
    different replies keep apart."""
    deadline: float | None = None
    """Absolute clock time by which the request must end (None: no deadline)."""
    stream: bool = False
    input_tokens: int = 0
    """The server's estimate of the request's input tokens (token budgets: ``tpm_limit``)."""
    max_output_tokens: int | None = None
    """The request's own ``max_tokens`` (else each model's ``default_max_tokens``)."""

    def session_key(self) -> str | None:
        """The key its session is pinned under, or None for a single-turn request."""
        if self.session_id:
            return self.session_id
        if self.user_turns > 1 and self.conversation_key:
            return self.conversation_key
        return None
