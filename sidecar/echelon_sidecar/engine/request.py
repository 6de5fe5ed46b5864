"""What the engine is asked to serve: a resolved :class:`Target` and an :class:`EngineRequest`.

``engine.resolve(model, node=None)`` turns a request's ``model`` into a target: a workflow
node, a polling pool, or a group reference (``group`` / ``group.tier``; ``_`` == ``-``),
checked in that order. A ``node`` (the ``X-Echelon-Node`` header) applies that node's routing
and limits to a request whose model is a group reference.

A target holds the plan that was current when it was resolved; a request started on it
finishes on those objects even if the config is reloaded meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .plans import Route

__all__ = ["EngineRequest", "Target", "TargetKind"]

TargetKind = Literal["group", "pool", "node"]


@dataclass(frozen=True, slots=True, eq=False)
class Target:
    """A resolved request target and its precomputed route."""

    kind: TargetKind
    name: str
    """The group reference, pool or node name as declared."""
    node: str | None
    """The workflow node whose routing and limits apply (None for plain groups and pools)."""
    route: Route

    def __str__(self) -> str:
        return self.name if self.node is None or self.node == self.name else (
            f"{self.name} (node {self.node})"
        )


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

    def session_key(self) -> str | None:
        """The key its session is pinned under, or None for a single-turn request."""
        if self.session_id:
            return self.session_id
        if self.user_turns > 1 and self.conversation_key:
            return self.conversation_key
        return None
