"""Canonical request → OpenAI / OpenAI-compatible upstream request (the hot path).

The canonical form *is* the OpenAI format, so this only:

- sets ``model`` to the upstream model name;
- maps or strips the canonical ``thinking`` key: with ``reasoning=True`` an enabled budget
  becomes ``reasoning_effort`` (< 2048 → low, < 8192 → medium, else high) unless the caller
  already set ``reasoning_effort``; ``disabled`` → ``reasoning_effort: "none"``; ``adaptive``
  leaves the model's default. With ``reasoning=False`` an enabled budget raises
  UnsupportedFeature (the model cannot think); disabled/adaptive are simply stripped;
- strips the extension keys only the sidecar understands from messages: assistant
  ``thinking_blocks`` and tool ``is_error``. ``reasoning_content`` and tool calls'
  ``extra_content`` stay: OpenAI-compatible servers (DeepSeek, vLLM, Gemini's OpenAI
  endpoint) read them. ``top_k`` also stays (OpenAI-compatible servers accept it).

Copying: when nothing needs to change the input dict itself is returned. Otherwise the result
is a shallow copy of the top level (a few dozen keys at most); ``messages`` is copied only
when an extension key must be stripped, and then only the affected messages. The input is
never mutated, so the same canonical body can be prepared again for the next fallback.
"""

from __future__ import annotations

from typing import Any

from ._common import THINKING_BLOCKS, TOOL_IS_ERROR
from .errors import UnsupportedFeature

__all__ = ["effort_for_budget", "prepare_openai_request"]


def effort_for_budget(budget: int) -> str:
    """A thinking budget (tokens) → OpenAI ``reasoning_effort``."""
    if budget < 2048:
        return "low"
    if budget < 8192:
        return "medium"
    return "high"


def prepare_openai_request(body: dict[str, Any], *, model: str, reasoning: bool) -> dict[str, Any]:
    """Prepare a canonical request for an OpenAI-format upstream serving `model`.

    `reasoning` says whether the upstream model accepts ``reasoning_effort``.
    """
    thinking = body.get("thinking")
    messages = body.get("messages")
    cleaned = _clean_messages(messages) if isinstance(messages, list) else None
    if thinking is None and cleaned is None and body.get("model") == model:
        return body
    out = dict(body)
    out["model"] = model
    if cleaned is not None:
        out["messages"] = cleaned
    if "thinking" in out:
        del out["thinking"]
        _map_thinking(out, thinking, reasoning)
    return out


def _map_thinking(out: dict[str, Any], thinking: Any, reasoning: bool) -> None:
    if not isinstance(thinking, dict):
        return
    kind = thinking.get("type")
    budget = thinking.get("budget_tokens")
    if kind == "enabled" and budget == 0:
        kind = "disabled"
    if kind == "enabled":
        if not reasoning:
            raise UnsupportedFeature(
                "thinking", "openai", "this model has no reasoning; use a reasoning model"
            )
        if out.get("reasoning_effort") is None:
            out["reasoning_effort"] = effort_for_budget(budget if isinstance(budget, int) else 0)
    elif kind == "disabled" and reasoning and out.get("reasoning_effort") is None:
        out["reasoning_effort"] = "none"


def _clean_messages(messages: list[Any]) -> list[Any] | None:
    """``messages`` without sidecar-only keys, or None when none carries one (no copy)."""
    out: list[Any] | None = None
    for i, msg in enumerate(messages):
        if isinstance(msg, dict) and (THINKING_BLOCKS in msg or TOOL_IS_ERROR in msg):
            if out is None:
                out = list(messages)
            out[i] = {k: v for k, v in msg.items() if k not in (THINKING_BLOCKS, TOOL_IS_ERROR)}
    return out
