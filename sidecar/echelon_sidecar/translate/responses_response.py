"""Canonical OpenAI ``chat.completion`` → OpenAI Responses API ``response`` object.

===========================  ====================================================================
canonical chat               Response
===========================  ====================================================================
``message.content``          a ``message`` output item (role assistant) with one
                             ``output_text`` part (``annotations: []``)
``message.refusal``          a ``refusal`` part of that message
``message.tool_calls``       one ``function_call`` item each: ``call_id`` = the tool call's id,
                             ``name``, ``arguments`` (JSON text), ``id`` ``fc_...``
finish ``stop`` /            ``status: completed``
``tool_calls``
finish ``length``            ``status: incomplete``, ``incomplete_details.reason:
                             max_output_tokens``
finish ``content_filter``    ``status: incomplete``, ``incomplete_details.reason:
                             content_filter``
usage prompt / completion    ``input_tokens`` / ``output_tokens`` / ``total_tokens``;
                             cached tokens → ``input_tokens_details.cached_tokens``, reasoning
                             tokens → ``output_tokens_details.reasoning_tokens``
===========================  ====================================================================

Reasoning text (``reasoning_content``, thinking blocks) is not returned as ``reasoning`` items:
a caller could not send it back to another provider anyway; its tokens are in the usage. The
request's settings (instructions, tools, tool choice, text format, ...) are repeated from the
``echo`` that :func:`responses_echo` built, as the Responses API does.
"""

from __future__ import annotations

from typing import Any

from ._common import dumps, new_id, now, upstream
from .errors import MalformedUpstreamResponse

__all__ = [
    "call_item",
    "message_item",
    "new_response_id",
    "openai_to_responses_response",
    "refusal_part",
    "response_object",
    "status_of_finish",
    "text_part",
    "usage_to_responses",
]

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_response_id() -> str:
    """A fresh Response id (``resp_`` and 24 hex digits)."""
    return new_id("resp_")


def usage_to_responses(u: dict[str, Any] | None) -> dict[str, Any] | None:
    """Canonical (chat) ``usage`` → the Responses ``usage`` (None when there is none)."""
    if not u:
        return None
    prompt = u.get("prompt_tokens") or 0
    completion = u.get("completion_tokens") or 0
    prompt_details = u.get("prompt_tokens_details") or {}
    completion_details = u.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": prompt_details.get("cached_tokens") or 0,
            "cache_write_tokens": prompt_details.get("cache_write_tokens") or 0,
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": completion_details.get("reasoning_tokens") or 0},
        "total_tokens": u.get("total_tokens") or prompt + completion,
    }


def status_of_finish(finish: str | None) -> tuple[str, dict[str, Any] | None]:
    """A chat finish reason → the Response ``status`` and its ``incomplete_details``."""
    reason = _INCOMPLETE.get(finish or "stop")
    if reason is None:
        return "completed", None
    return "incomplete", {"reason": reason}


def response_object(echo: dict[str, Any], *, response_id: str, created_at: int, model: str,
                    status: str, output: list[dict[str, Any]],
                    usage: dict[str, Any] | None = None,
                    incomplete: dict[str, Any] | None = None,
                    error: dict[str, Any] | None = None) -> dict[str, Any]:
    """A whole ``response`` object (also the payload of the stream's lifecycle events)."""
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        "usage": usage,
        **echo,
    }
    if status in ("completed", "incomplete"):
        body["completed_at"] = now()
    return body


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return content if isinstance(content, str) else ""


def message_item(item_id: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": parts}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(refusal: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": refusal}


def call_item(item_id: str, call_id: str, name: str, arguments: str,
              status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id,
            "name": name, "arguments": arguments}


@upstream("openai")
def openai_to_responses_response(completion: dict[str, Any], echo: dict[str, Any], *,
                                 response_id: str | None = None,
                                 model: str | None = None) -> dict[str, Any]:
    """A whole canonical ``chat.completion`` (first choice) → a ``response`` object."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedUpstreamResponse("openai", "expected a chat.completion with choices")
    choice = choices[0]
    message = choice.get("message") or {}
    status, incomplete = status_of_finish(choice.get("finish_reason"))
    item_status = "incomplete" if status == "incomplete" else "completed"
    output: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    text = _text_of(message.get("content"))
    if text:
        parts.append(text_part(text))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append(refusal_part(message["refusal"]))
    if parts:
        output.append(message_item(new_id("msg_"), parts, item_status))
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        arguments = fn.get("arguments")
        output.append(call_item(new_id("fc_"), call.get("id") or new_id("call_"),
                                fn.get("name") or "",
                                arguments if isinstance(arguments, str) else dumps(arguments or {}),
                                item_status))
    return response_object(
        echo, response_id=response_id or new_response_id(),
        created_at=completion.get("created") or now(),
        model=model or completion.get("model") or "", status=status, output=output,
        usage=usage_to_responses(completion.get("usage")), incomplete=incomplete)
