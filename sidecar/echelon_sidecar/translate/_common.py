"""Helpers shared by the translators: data URLs, text extraction, thinking, ids, JSON.

Canonical form
--------------
The sidecar's internal request/response form is the OpenAI Chat Completions format plus a
few documented extension keys (module constants below):

- request ``thinking``: ``{"type": "enabled", "budget_tokens": N}`` | ``{"type": "disabled"}``
  | ``{"type": "adaptive"}`` (Anthropic's shape); each upstream adapter maps or strips it.
- request ``top_k``: carried from Anthropic callers; mapped to Anthropic ``top_k`` and Gemini
  ``topK``, passed through untouched to OpenAI-compatible upstreams (vLLM & co accept it).
- assistant message ``reasoning_content``: the model's visible reasoning text (the extension
  DeepSeek, vLLM and LiteLLM use); ``thinking_blocks``: the original Anthropic ``thinking`` /
  ``redacted_thinking`` blocks with their signatures, so a tool-use loop with extended
  thinking can be sent back to Anthropic verbatim (LiteLLM's convention).
- tool call ``extra_content.google.thought_signature``: Gemini's thought signature of a
  function call (the convention of Google's own OpenAI-compatible endpoint).
- tool message ``is_error: true``: an Anthropic ``tool_result`` with ``is_error``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import time
import uuid
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import orjson

from .errors import InvalidRequest, MalformedUpstreamResponse, TranslationError, UnsupportedFeature

_P = ParamSpec("_P")
_R = TypeVar("_R")

REASONING_CONTENT = "reasoning_content"
THINKING_BLOCKS = "thinking_blocks"
EXTRA_CONTENT = "extra_content"
TOOL_IS_ERROR = "is_error"

#: OpenAI ``reasoning_effort`` → thinking budget (tokens). ``none`` disables thinking.
EFFORT_BUDGETS: dict[str, int] = {
    "minimal": 1024,
    "low": 1024,
    "medium": 4096,
    "high": 16384,
    "xhigh": 32768,
    "max": 65536,
}

_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^;,]*)*),(?P<data>.*)$", re.S
)
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def upstream(provider: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate a response/stream translator: an upstream body of the wrong shape becomes
    MalformedUpstreamResponse (the instance misbehaved) instead of a TypeError or KeyError."""

    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return fn(*args, **kwargs)
            except TranslationError:
                raise
            except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
                raise MalformedUpstreamResponse(provider, f"{type(exc).__name__}: {exc}") from exc

        return guarded

    return decorate


def obj(value: Any, path: str) -> dict[str, Any]:
    """`value` as a JSON object (None → empty); anything else is an InvalidRequest at `path`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(path, "must be an object")
    return value


def items(value: Any, path: str) -> list[Any]:
    """`value` as a JSON array (None → empty); anything else is an InvalidRequest at `path`."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(path, "must be a list")
    return value


def str_at(value: Any, path: str) -> str:
    """A string field (None → empty string)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(path, "must be a string")
    return value


def name_at(value: Any, path: str) -> str:
    """A required, non-empty name (function, tool)."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest(path, "must be a non-empty string")
    return value


def function_def(tool: Any, i: int, provider: str) -> dict[str, Any]:
    """``tools[i]`` → its validated ``function`` object (name; description and parameters
    when present have the right types). Non-function tools are UnsupportedFeature."""
    tool = obj(tool, f"tools[{i}]")
    if tool.get("type") != "function":
        raise UnsupportedFeature(
            f"{tool.get('type')} tools", provider, "only function tools are translated")
    fn = obj(tool.get("function"), f"tools[{i}].function")
    name_at(fn.get("name"), f"tools[{i}].function.name")
    if fn.get("description") is not None and not isinstance(fn["description"], str):
        raise InvalidRequest(f"tools[{i}].function.description", "must be a string")
    obj(fn.get("parameters"), f"tools[{i}].function.parameters")
    return fn


def dumps(value: Any) -> str:
    """Compact JSON text (orjson)."""
    return orjson.dumps(value).decode()


def now() -> int:
    return int(time.time())


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def safe_id(text: str) -> str:
    """`text` with characters some providers refuse in a tool call id replaced by ``_``.

    Anthropic requires ``^[a-zA-Z0-9_-]+$``; some OpenAI-compatible servers emit ids such as
    ``functions.get_weather:0``.
    """
    return _ID_UNSAFE.sub("_", text)


def parse_data_url(url: str, path: str) -> tuple[str, str]:
    """``data:<mime>;base64,<data>`` → ``(mime, base64 data)``; InvalidRequest otherwise."""
    m = _DATA_URL.match(url)
    if m is None or not m.group("mime") or ";base64" not in m.group("params"):
        raise InvalidRequest(path, "expected a base64 data URL like 'data:image/png;base64,...'")
    data = m.group("data")
    try:
        base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(path, "the data URL's payload is not valid base64") from exc
    return m.group("mime").lower(), data


def text_of(content: Any, path: str, provider: str) -> str:
    """The text of a string or a list of ``text`` parts (system, developer, tool messages)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(path, "content must be a string or a list of content parts")
    out: list[str] = []
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            raise InvalidRequest(f"{path}[{i}]", "content part must be an object")
        kind = part.get("type")
        if kind == "text":
            out.append(_str(part.get("text"), f"{path}[{i}].text"))
        elif kind == "refusal":
            out.append(_str(part.get("refusal"), f"{path}[{i}].refusal"))
        else:
            raise UnsupportedFeature(
                f"{kind} content part here", provider, f"only text parts are allowed at {path}"
            )
    return "".join(out)


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(path, "must be a string")
    return value


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages", "must be a non-empty list of messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise InvalidRequest(f"messages[{i}]", "must be an object with a 'role'")
    return messages


def parse_arguments(arguments: Any, path: str) -> dict[str, Any]:
    """A tool call's ``arguments`` JSON string → object (empty string → ``{}``)."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or arguments == "":
        return {}
    if not isinstance(arguments, str):
        raise InvalidRequest(path, "must be a JSON string")
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(path, f"is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(path, "must encode a JSON object")
    return value


def resolve_thinking(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request's thinking setting in canonical form, or None when it has none.

    The canonical ``thinking`` key wins; otherwise an OpenAI caller's ``reasoning_effort`` is
    turned into a budget (``EFFORT_BUDGETS``; ``none`` → disabled).
    """
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict) or thinking.get("type") not in (
            "enabled",
            "disabled",
            "adaptive",
        ):
            raise InvalidRequest(
                "thinking", "must be {'type': 'enabled', 'budget_tokens': N}, "
                "{'type': 'disabled'} or {'type': 'adaptive'}"
            )
        if thinking["type"] == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
                raise InvalidRequest("thinking.budget_tokens", "must be a non-negative integer")
        return thinking
    effort = body.get("reasoning_effort")
    if effort is None:
        return None
    if effort == "none":
        return {"type": "disabled"}
    if effort not in EFFORT_BUDGETS:
        raise InvalidRequest(
            "reasoning_effort", f"must be one of none, {', '.join(EFFORT_BUDGETS)}"
        )
    return {"type": "enabled", "budget_tokens": EFFORT_BUDGETS[effort]}


def number(body: dict[str, Any], key: str) -> float | None:
    """A numeric request field (int or float, not bool), None when absent."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest(key, "must be a number")
    return value


def stop_list(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise InvalidRequest("stop", "must be a string or a list of strings")


def max_output_tokens(body: dict[str, Any]) -> int | None:
    """``max_completion_tokens`` (current OpenAI name) or the legacy ``max_tokens``."""
    value = body.get("max_completion_tokens")
    field = "max_completion_tokens"
    if value is None:
        value, field = body.get("max_tokens"), "max_tokens"
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequest(field, "must be a positive integer")
    return value


def reject_common(body: dict[str, Any], provider: str) -> None:
    """Raise UnsupportedFeature for OpenAI request fields neither Anthropic nor Gemini has."""
    if body.get("logit_bias"):
        raise UnsupportedFeature("logit_bias", provider, f"{provider} has no token biasing")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise UnsupportedFeature("logprobs", provider, "log probabilities are not translated")
    if body.get("audio") is not None or "audio" in items(body.get("modalities"), "modalities"):
        raise UnsupportedFeature("audio output", provider, f"{provider} cannot produce audio here")
    if body.get("functions") or body.get("function_call") is not None:
        raise UnsupportedFeature(
            "functions", provider, "legacy 'functions'/'function_call'; use 'tools'"
        )
    if body.get("web_search_options") is not None:
        raise UnsupportedFeature("web_search_options", provider, "built-in web search")
    if body.get("moderation") is not None:
        raise UnsupportedFeature("moderation", provider, "OpenAI moderated completions")
    verbosity = body.get("verbosity")
    if verbosity not in (None, "medium"):
        raise UnsupportedFeature("verbosity", provider, f"{provider} has no verbosity control")
