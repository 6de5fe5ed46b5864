"""Gemini ``GenerateContentResponse`` → OpenAI ``chat.completion`` and chunks.

=============================  ===============================================================
Gemini                         OpenAI
=============================  ===============================================================
candidates[i]                  choices[i] (``candidateCount`` = ``n``)
text parts                     ``content`` (joined)
``thought: true`` text parts   ``reasoning_content``
functionCall parts             ``tool_calls``; the id is Gemini's own ``functionCall.id`` when
                               given, else ``call_<responseId>_<k>`` (the same in a stream and
                               in a full response), else random. ``thoughtSignature`` →
                               ``extra_content.google.thought_signature``.
                               With ``parallel_tool_calls=False`` (the caller's request said
                               so, and Gemini cannot be told): only the candidate's first
                               functionCall part; later ones are dropped, in a stream too
                               (the kept call is ``tool_calls[0]``, index 0)
finishReason STOP              ``stop`` (``tool_calls`` when the candidate called functions)
MAX_TOKENS                     ``length``
SAFETY, RECITATION, BLOCKLIST, ``content_filter``
PROHIBITED_CONTENT, SPII,
IMAGE_*, MODEL_ARMOR
anything else                  ``stop``
promptFeedback.blockReason     one choice, no content, ``content_filter``
usageMetadata                  prompt = promptTokenCount + toolUsePromptTokenCount;
                               completion = candidatesTokenCount + thoughtsTokenCount
                               (OpenAI counts reasoning in completion tokens);
                               ``reasoning_tokens`` = thoughts; ``cached_tokens`` =
                               cachedContentTokenCount
=============================  ===============================================================

Non-text output parts (inline images, executable code) are not translated: the request
translator never asks for them.
"""

from __future__ import annotations

from typing import Any

import orjson

from ._common import EXTRA_CONTENT, REASONING_CONTENT, dumps, new_id, now, safe_id, upstream
from .errors import MalformedUpstreamResponse
from .errors_map import upstream_error_to_openai

__all__ = [
    "FINISH_FROM_GEMINI",
    "GeminiStreamToOpenAI",
    "gemini_to_openai_response",
    "usage_from_gemini",
]

_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
             "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR")
FINISH_FROM_GEMINI: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(_FILTERED, "content_filter"),
}


def usage_from_gemini(u: dict[str, Any]) -> dict[str, Any]:
    prompt = (u.get("promptTokenCount") or 0) + (u.get("toolUsePromptTokenCount") or 0)
    thoughts = u.get("thoughtsTokenCount") or 0
    completion = (u.get("candidatesTokenCount") or 0) + thoughts
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if u.get("cachedContentTokenCount") is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": u["cachedContentTokenCount"]}
    if u.get("thoughtsTokenCount") is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return usage


def _finish(reason: str | None, called: bool) -> str:
    finish = FINISH_FROM_GEMINI.get(reason or "STOP", "stop")
    return "tool_calls" if finish == "stop" and called else finish


class _Ids:
    def __init__(self, response_id: str | None) -> None:
        self._base = f"call_{safe_id(response_id)}" if response_id else None

    def tool_call(self, call: dict[str, Any], candidate: int, k: int) -> dict[str, Any]:
        if call.get("id"):
            cid = str(call["id"])
        elif self._base is None:
            cid = new_id("call_")
        else:
            cid = f"{self._base}_{k}" if candidate == 0 else f"{self._base}_{candidate}_{k}"
        return {
            "id": cid,
            "type": "function",
            "function": {"name": call.get("name", ""), "arguments": dumps(call.get("args") or {})},
        }


def _with_signature(tool_call: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    if part.get("thoughtSignature"):
        tool_call[EXTRA_CONTENT] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return tool_call


def _completion_id(resp: dict[str, Any]) -> str:
    rid = resp.get("responseId")
    return f"chatcmpl-{rid}" if rid else new_id("chatcmpl-")


@upstream("gemini")
def gemini_to_openai_response(
    resp: dict[str, Any], *, model: str, created: int | None = None,
    parallel_tool_calls: bool = True,
) -> dict[str, Any]:
    """A full ``GenerateContentResponse`` → a full OpenAI ``chat.completion``.

    ``parallel_tool_calls=False`` keeps only each candidate's first function call.
    """
    candidates = resp.get("candidates")
    ids = _Ids(resp.get("responseId"))
    choices: list[dict[str, Any]] = []
    if not candidates:
        if not (resp.get("promptFeedback") or {}).get("blockReason"):
            raise MalformedUpstreamResponse("gemini", "no candidates and no promptFeedback")
        choices.append({"index": 0, "message": {"role": "assistant", "content": None},
                        "finish_reason": "content_filter", "logprobs": None})
    for pos, cand in enumerate(candidates or ()):
        index = cand.get("index", pos)
        texts: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in (cand.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                if calls and not parallel_tool_calls:
                    continue
                call = ids.tool_call(part["functionCall"], index, len(calls))
                calls.append(_with_signature(call, part))
            elif "text" in part:
                (thoughts if part.get("thought") else texts).append(part["text"])
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(texts) if texts else None,
        }
        if calls:
            message["tool_calls"] = calls
        if thoughts:
            message[REASONING_CONTENT] = "".join(thoughts)
        choices.append({"index": index, "message": message,
                        "finish_reason": _finish(cand.get("finishReason"), bool(calls)),
                        "logprobs": None})
    return {
        "id": _completion_id(resp),
        "object": "chat.completion",
        "created": created if created is not None else now(),
        "model": model,
        "choices": choices,
        "usage": usage_from_gemini(resp.get("usageMetadata") or {}),
    }


class GeminiStreamToOpenAI:
    """``streamGenerateContent?alt=sse`` chunks → OpenAI chat.completion.chunk dicts.

    ``parallel_tool_calls=False`` keeps only each candidate's first function call: a later
    functionCall part, in the same chunk or a later one, is dropped.
    """

    def __init__(self, *, model: str, include_usage: bool = False, created: int | None = None,
                 parallel_tool_calls: bool = True) -> None:
        self._model = model
        self._parallel = parallel_tool_calls
        self._include_usage = include_usage
        self._created = created if created is not None else now()
        self._id: str | None = None
        self._ids = _Ids(None)
        self._seen: set[int] = set()
        self._calls: dict[int, int] = {}
        self._finished: set[int] = set()
        self._usage: dict[str, Any] | None = None
        self._usage_sent = False

    @property
    def complete(self) -> bool:
        """True once every candidate seen so far has a finish reason."""
        return bool(self._finished) and self._finished >= self._seen

    def _chunk(
        self, index: int, delta: dict[str, Any], finish: str | None = None
    ) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                "model": self._model,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish,
                             "logprobs": None}]}

    @upstream("gemini")
    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if "error" in chunk and "candidates" not in chunk:
            status = (chunk.get("error") or {}).get("code")
            return [upstream_error_to_openai(
                "gemini", status if isinstance(status, int) else 500, orjson.dumps(chunk))]
        if self._id is None:
            self._id = _completion_id(chunk)
            self._ids = _Ids(chunk.get("responseId"))
        if chunk.get("usageMetadata"):
            self._usage = chunk["usageMetadata"]
        out: list[dict[str, Any]] = []
        candidates = chunk.get("candidates") or ()
        if not candidates and (chunk.get("promptFeedback") or {}).get("blockReason"):
            self._seen.add(0)
            self._finished.add(0)
            return [self._chunk(0, {"role": "assistant", "content": None}, "content_filter")]
        for pos, cand in enumerate(candidates):
            index = cand.get("index", pos)
            if index not in self._seen:
                self._seen.add(index)
                out.append(self._chunk(index, {"role": "assistant", "content": ""}))
            for part in (cand.get("content") or {}).get("parts") or ():
                if "functionCall" in part:
                    k = self._calls.get(index, 0)
                    if k and not self._parallel:
                        continue
                    self._calls[index] = k + 1
                    call = _with_signature(
                        self._ids.tool_call(part["functionCall"], index, k), part
                    )
                    out.append(self._chunk(index, {"tool_calls": [{"index": k, **call}]}))
                elif part.get("text"):
                    key = REASONING_CONTENT if part.get("thought") else "content"
                    out.append(self._chunk(index, {key: part["text"]}))
            if cand.get("finishReason"):
                self._finished.add(index)
                finish = _finish(cand["finishReason"], index in self._calls)
                out.append(self._chunk(index, {}, finish))
        return out

    def usage(self) -> dict[str, Any] | None:
        """The usage the stream reported so far, as OpenAI ``usage`` (None before any),
        whether or not the caller asked for a usage chunk (token metrics)."""
        return usage_from_gemini(self._usage) if self._usage else None

    @upstream("gemini")
    def finish(self) -> list[dict[str, Any]]:
        """The usage chunk (when asked for) once the upstream stream has ended."""
        if not self._include_usage or self._usage_sent or not self._finished:
            return []
        self._usage_sent = True
        chunk = self._chunk(0, {})
        chunk["choices"] = []
        chunk["usage"] = usage_from_gemini(self._usage or {})
        return [chunk]
