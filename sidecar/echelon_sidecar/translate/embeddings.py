"""Embeddings: the OpenAI ``POST /v1/embeddings`` body, and Gemini's ``embedContent`` /
``batchEmbedContents`` translated to and from it.

The canonical form is OpenAI's: ``{model, input, encoding_format?, dimensions?, user?}`` where
``input`` is a string, a list of strings, a list of token ids, or a list of token-id lists;
the answer is ``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
"model", "usage": {"prompt_tokens", "total_tokens"}}``, each ``embedding`` a list of floats or,
with ``encoding_format: base64``, the base64 of its little-endian float32 bytes (what the
``openai`` SDK asks for by default and decodes).

Gemini (``models/{model}:embedContent`` for one input, ``:batchEmbedContents`` for several):
``{content: {parts: [{text}]}, outputDimensionality?}`` / ``{requests: [{model: "models/M",
content, outputDimensionality?}]}``, answered ``{embedding: {values}}`` / ``{embeddings:
[{values}]}``. It takes text only (no token ids), at most 100 inputs per batch, and reports
no token usage: the usage of a Gemini answer is **estimated** (``estimate_text_tokens`` per
input) and marked ``"estimated": true``.
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from dataclasses import dataclass
from typing import Any, Literal

from .errors import InvalidRequest, MalformedUpstreamResponse, UnsupportedFeature
from .tokens import estimate_text_tokens

__all__ = [
    "GEMINI_MAX_BATCH",
    "MAX_EMBEDDING_INPUTS",
    "EmbeddingsInput",
    "conform_openai_embeddings",
    "decode_embedding",
    "encode_embedding",
    "gemini_to_openai_embeddings",
    "openai_to_gemini_embeddings",
    "read_embeddings_request",
]

EncodingFormat = Literal["float", "base64"]

#: OpenAI's documented cap on the inputs of one request.
MAX_EMBEDDING_INPUTS = 2048
#: ``batchEmbedContents`` takes at most this many requests.
GEMINI_MAX_BATCH = 100
_LITTLE = sys.byteorder == "little"


@dataclass(frozen=True, slots=True)
class EmbeddingsInput:
    """A caller's embeddings request, checked: what every upstream translation starts from."""

    texts: tuple[str, ...] | None
    """The inputs as text (None when they are token ids)."""
    tokens: tuple[tuple[int, ...], ...] | None
    """The inputs as token ids (None when they are text)."""
    encoding_format: EncodingFormat
    dimensions: int | None
    user: str | None
    single: bool
    """``input`` was one string (or one token array), not a list of them."""

    @property
    def count(self) -> int:
        return len(self.texts if self.texts is not None else self.tokens or ())

    def estimated_tokens(self) -> int:
        """The inputs' tokens: counted for token ids, estimated for text."""
        if self.tokens is not None:
            return sum(len(t) for t in self.tokens)
        return sum(estimate_text_tokens(t) for t in self.texts or ())


def _token_ids(value: list[Any], path: str) -> tuple[int, ...]:
    if not value:
        raise InvalidRequest(path, "a token array must not be empty")
    for index, item in enumerate(value):
        if not isinstance(item, int) or isinstance(item, bool) or item < 0:
            raise InvalidRequest(f"{path}[{index}]", "token ids are non-negative integers")
    return tuple(value)


def _inputs(value: Any) -> tuple[tuple[str, ...] | None, tuple[tuple[int, ...], ...] | None,
                                 bool]:
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("input", "must not be an empty string")
        return (value,), None, True
    if not isinstance(value, list) or not value:
        raise InvalidRequest("input", "must be a non-empty string, a non-empty list of "
                             "strings, a list of token ids or a list of token-id lists")
    if len(value) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequest("input", f"holds {len(value)} inputs; at most "
                             f"{MAX_EMBEDDING_INPUTS} per request")
    first = value[0]
    if isinstance(first, str):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise InvalidRequest(f"input[{index}]", "must be a string, like input[0]")
            if not item:
                raise InvalidRequest(f"input[{index}]", "must not be an empty string")
        return tuple(value), None, False
    if isinstance(first, int) and not isinstance(first, bool):
        return None, (_token_ids(value, "input"),), True
    if isinstance(first, list):
        tokens = []
        for index, item in enumerate(value):
            if not isinstance(item, list):
                raise InvalidRequest(f"input[{index}]", "must be a token-id list, like input[0]")
            tokens.append(_token_ids(item, f"input[{index}]"))
        return None, tuple(tokens), False
    raise InvalidRequest("input[0]", "must be a string, a token id or a token-id list")


def read_embeddings_request(body: dict[str, Any]) -> EmbeddingsInput:
    """Check an OpenAI embeddings body (InvalidRequest naming the field when it is wrong)."""
    if "input" not in body:
        raise InvalidRequest("input", "is required: the text (or texts) to embed")
    texts, tokens, single = _inputs(body["input"])
    given = body.get("encoding_format")
    fmt: EncodingFormat = "base64" if given == "base64" else "float"
    if given is not None and given not in ("float", "base64"):
        raise InvalidRequest("encoding_format", f"must be 'float' or 'base64', not {given!r}")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int)
                                   or isinstance(dimensions, bool) or dimensions < 1):
        raise InvalidRequest("dimensions", "must be a positive integer")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("user", "must be a string")
    return EmbeddingsInput(texts, tokens, fmt, dimensions, user, single)


# -- vectors -----------------------------------------------------------------------------------

def encode_embedding(vector: list[float]) -> str:
    """A vector as OpenAI's base64: its little-endian float32 bytes."""
    packed = array("f", vector)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def decode_embedding(data: str) -> list[float]:
    """OpenAI's base64 vector as floats (ValueError when it is not one)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) % 4:
        raise ValueError("not a whole number of float32 values")
    packed = array("f")
    packed.frombytes(raw)
    if not _LITTLE:  # pragma: no cover
        packed.byteswap()
    return packed.tolist()


def _b64_length(data: str) -> int:
    """The number of float32 values in a base64 vector, without decoding it."""
    pad = len(data) - len(data.rstrip("="))
    return (len(data) * 3 // 4 - pad) // 4


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def _usage(estimated: int) -> dict[str, Any]:
    return {"prompt_tokens": estimated, "total_tokens": estimated, "estimated": True}


def _check_length(length: int, expected: int | None, provider: str, index: int) -> None:
    if expected is not None and length != expected:
        raise MalformedUpstreamResponse(
            provider, f"embedding {index} has {length} dimensions where {expected} are expected "
            "(the request's dimensions, or the catalog's embedding_dimensions)")


# -- OpenAI upstreams --------------------------------------------------------------------------

def conform_openai_embeddings(body: Any, request: EmbeddingsInput, expected: int | None,
                              model: str) -> dict[str, Any] | None:
    """Check an OpenAI(-compatible) embeddings answer; None when it can go to the caller as it
    is, else the answer rewritten in the encoding the caller asked for (a compatible server
    may ignore ``encoding_format``) and with usage (estimated when it gave none).
    ``expected``: the vectors' length, when it is known."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or len(data) != request.count:
        got = len(data) if isinstance(data, list) else "no"
        raise MalformedUpstreamResponse(
            "openai", f"{got} embeddings for {request.count} inputs")
    rewrite = False
    for index, item in enumerate(data):
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, str):
            length = _b64_length(vector)
            rewrite |= request.encoding_format != "base64"
        elif _is_vector(vector):
            length = len(vector)  # type: ignore[arg-type]
            rewrite |= request.encoding_format != "float"
        else:
            raise MalformedUpstreamResponse("openai", f"data[{index}] holds no embedding")
        _check_length(length, expected, "openai", index)
    usage = body.get("usage")
    if not isinstance(usage, dict) or not isinstance(usage.get("prompt_tokens"), int):
        rewrite = True
        usage = _usage(request.estimated_tokens())
    if not rewrite:
        return None
    out = []
    for index, item in enumerate(sorted(data, key=lambda d: d.get("index", 0))):
        vector = item["embedding"]
        if request.encoding_format == "base64" and not isinstance(vector, str):
            vector = encode_embedding(vector)
        elif request.encoding_format == "float" and isinstance(vector, str):
            try:
                vector = decode_embedding(vector)
            except ValueError as exc:
                raise MalformedUpstreamResponse("openai", f"data[{index}]: {exc}") from None
        out.append({"object": "embedding", "index": index, "embedding": vector})
    return {"object": "list", "data": out, "model": body.get("model") or model, "usage": usage}


# -- Gemini ------------------------------------------------------------------------------------

def openai_to_gemini_embeddings(request: EmbeddingsInput, model: str) -> tuple[str, dict[str, Any]]:
    """``(action, body)`` of the Gemini call: ``embedContent`` for one input,
    ``batchEmbedContents`` for several. UnsupportedFeature for token ids or too many inputs."""
    if request.texts is None:
        raise UnsupportedFeature("token_input", "gemini", "Gemini embeds text only, not token "
                                 "ids")
    if request.count > GEMINI_MAX_BATCH:
        raise UnsupportedFeature("input", "gemini", f"batchEmbedContents takes at most "
                                 f"{GEMINI_MAX_BATCH} inputs; this request has {request.count}")
    extra: dict[str, Any] = {}
    if request.dimensions is not None:
        extra["outputDimensionality"] = request.dimensions
    if request.count == 1:
        return "embedContent", {"content": {"parts": [{"text": request.texts[0]}]}, **extra}
    name = model if model.startswith("models/") else f"models/{model}"
    return "batchEmbedContents", {"requests": [
        {"model": name, "content": {"parts": [{"text": text}]}, **extra}
        for text in request.texts]}


def gemini_to_openai_embeddings(body: Any, request: EmbeddingsInput, expected: int | None,
                                model: str) -> dict[str, Any]:
    """A Gemini ``embedContent`` / ``batchEmbedContents`` answer in the OpenAI shape, with an
    estimated usage (Gemini reports none for embeddings)."""
    if not isinstance(body, dict):
        raise MalformedUpstreamResponse("gemini", "the answer is not a JSON object")
    items = body.get("embeddings")
    if items is None and "embedding" in body:
        items = [body["embedding"]]
    if not isinstance(items, list) or len(items) != request.count:
        got = len(items) if isinstance(items, list) else "no"
        raise MalformedUpstreamResponse("gemini", f"{got} embeddings for {request.count} inputs")
    data = []
    for index, item in enumerate(items):
        values = item.get("values") if isinstance(item, dict) else None
        if not _is_vector(values):
            raise MalformedUpstreamResponse("gemini", f"embedding {index} has no values")
        assert isinstance(values, list)
        _check_length(len(values), expected, "gemini", index)
        vector: list[float] | str = (encode_embedding(values)
                                     if request.encoding_format == "base64" else values)
        data.append({"object": "embedding", "index": index, "embedding": vector})
    return {"object": "list", "data": data, "model": model,
            "usage": _usage(request.estimated_tokens())}
