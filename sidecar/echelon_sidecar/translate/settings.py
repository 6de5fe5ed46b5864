"""A tier's request settings applied to a canonical (OpenAI-format) request.

A task group's tier may carry ``temperature``, ``function_calling``, ``response_format`` and
``thinking_config``. They are defaults and policy, applied before the request is translated
for any upstream:

======================  =====================================================================
setting                 effect on the canonical request
======================  =====================================================================
temperature             used when the caller gave none
function_calling        ``required``: ``tool_choice: "required"`` (a caller's named or
                        allowed-tools choice already requires a call and is kept). A request
                        without tools, or with ``tool_choice: "none"``, cannot meet the tier:
                        UnsupportedFeature (``tools`` / ``tool_choice``), so the engine skips
                        the tier's instances for that request instead of failing it.
                        ``auto``: ``tool_choice: "auto"`` only if the caller gave none.
response_format         ``json``: ``{"type": "json_object"}`` when the caller gave none
thinking_enabled/budget canonical ``thinking`` key (Anthropic's shape), unless the caller asked
                        for thinking itself (``thinking`` or ``reasoning_effort``): the caller
                        wins, as for temperature. Enabled without a budget → DEFAULT budget.
max_tokens              ``max_completion_tokens`` when the caller set neither it nor
                        ``max_tokens``
======================  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ._common import obj
from .errors import UnsupportedFeature

__all__ = ["DEFAULT_THINKING_BUDGET", "RequestSettings", "apply_settings"]

#: Budget used when a tier enables thinking without giving ``budget_tokens``.
DEFAULT_THINKING_BUDGET = 4096


@dataclass(frozen=True, slots=True)
class RequestSettings:
    """The request settings of one tier (all optional)."""

    temperature: float | None = None
    function_calling: Literal["required", "auto"] | None = None
    response_format: Literal["json"] | None = None
    thinking_enabled: bool | None = None
    thinking_budget: int | None = None
    max_tokens: int | None = None


def apply_settings(body: dict[str, Any], s: RequestSettings) -> dict[str, Any]:
    """Return a new request with the tier's settings applied; `body` is never mutated.

    The copy is shallow: nested values (messages, tools) are shared with `body`.
    """
    out = dict(body)
    if s.temperature is not None and out.get("temperature") is None:
        out["temperature"] = s.temperature

    if s.function_calling is not None:
        _apply_function_calling(out, s.function_calling)

    if s.response_format == "json" and out.get("response_format") is None:
        out["response_format"] = {"type": "json_object"}

    if s.thinking_enabled is not None and (
        out.get("thinking") is None and out.get("reasoning_effort") is None
    ):
        if s.thinking_enabled:
            budget = s.thinking_budget if s.thinking_budget is not None else DEFAULT_THINKING_BUDGET
            out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        else:
            out["thinking"] = {"type": "disabled"}

    if (
        s.max_tokens is not None
        and out.get("max_tokens") is None
        and out.get("max_completion_tokens") is None
    ):
        out["max_completion_tokens"] = s.max_tokens
    return out


def _apply_function_calling(out: dict[str, Any], mode: str) -> None:
    has_tools = bool(out.get("tools"))
    choice = out.get("tool_choice")
    if mode == "auto":
        if has_tools and choice is None:
            out["tool_choice"] = "auto"
        return
    if not has_tools:
        raise UnsupportedFeature(
            "tools", "a function_calling: required tier",
            "it requires a tool call but the request has no tools",
        )
    if choice is None or choice == "auto":
        out["tool_choice"] = "required"
    elif choice == "none":
        raise UnsupportedFeature(
            "tool_choice", "a function_calling: required tier",
            "it requires a tool call but the request set tool_choice 'none'",
        )
    # "required", a named function or allowed_tools in mode required already force a call;
    # allowed_tools in mode auto is tightened to required.
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = dict(obj(choice.get("allowed_tools"), "tool_choice.allowed_tools"))
        if allowed.get("mode") != "required":
            allowed["mode"] = "required"
            out["tool_choice"] = {**choice, "allowed_tools": allowed}
