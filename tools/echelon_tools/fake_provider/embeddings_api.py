"""Embeddings in both upstream formats: OpenAI ``POST /v1/embeddings`` and Gemini
``models/{model}:embedContent`` / ``:batchEmbedContents``.

Vectors are deterministic: component ``i`` of a text's vector comes from a hash of the text
and ``i`` only, and the vector is scaled to unit length, so the same text gives the same
vector on every model and wire format (one embedding space, as far as the fake knows), and a
shorter vector (``dimensions`` / ``outputDimensionality``) is the longer one's prefix,
renormalised (as OpenAI's text-embedding-3 and Gemini's Matryoshka embeddings are). A model's
length is ``FakeSettings.embedding_dimensions[model]``, else the known default of its name,
else ``default_embedding_dimensions``. Usage counts words (OpenAI's ``usage``; Gemini reports
none). The request pipeline is the chat one: faults, latency, the API key and request
records apply alike.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from array import array
from typing import Any

import orjson
from aiohttp import web

from .content import Prompt, Reply
from .gemini_api import ACTIONS, GeminiWire
from .openai_api import OpenAIWire
from .pipeline import serve
from .state import STATE
from .wire import Exchange, InvalidRequest, body_as_json

__all__ = ["KNOWN_DIMENSIONS", "add_routes", "embedding_vector", "gemini_embed"]

#: Default lengths of real embedding models' vectors.
KNOWN_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "gemini-embedding-001": 3072,
    "text-embedding-004": 768,
}
_PADDING_FIELD = "fake_padding"


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """The fake's unit vector of ``text`` (see the module docstring)."""
    out: list[float] = []
    seed = text.encode("utf-8")
    block = 0
    while len(out) < dimensions:
        digest = hashlib.blake2b(seed, digest_size=64, person=struct.pack("<Q", block)).digest()
        out.extend((v / 2147483648.0) - 1.0 for v in struct.unpack("<16I", digest))
        block += 1
    del out[dimensions:]
    norm = math.sqrt(sum(v * v for v in out)) or 1.0
    return [v / norm for v in out]


def _b64(vector: list[float]) -> str:
    return base64.b64encode(array("f", vector).tobytes()).decode("ascii")


def _model_dimensions(exchange: Exchange, model: str) -> int:
    settings = exchange.request.app[STATE].settings
    return settings.embedding_dimensions.get(
        model, KNOWN_DIMENSIONS.get(model.removeprefix("models/"),
                                    settings.default_embedding_dimensions))


def _asked_dimensions(exchange: Exchange, value: Any, field: str, model: str) -> int:
    full = _model_dimensions(exchange, model)
    if value is None:
        return full
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequest(f"Invalid '{field}': expected a positive integer.", field)
    if value > full:
        raise InvalidRequest(f"Invalid '{field}': {value} is larger than the {full} dimensions "
                             f"of {model}.", field)
    return value


def _padded(body: dict[str, Any], reply: Reply) -> bytes:
    """The answer, with the oversize fault's filler when it is in force."""
    if len(reply.text) > 65536:
        body[_PADDING_FIELD] = reply.text
    return orjson.dumps(body)


# -- OpenAI ------------------------------------------------------------------------------------

def _openai_inputs(value: Any) -> tuple[list[str] | None, list[list[int]] | None]:
    if isinstance(value, str) and value:
        return [value], None
    if isinstance(value, list) and value:
        if all(isinstance(v, str) and v for v in value):
            return list(value), None
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return None, [list(value)]
        if all(isinstance(v, list) and v and all(isinstance(t, int) for t in v) for v in value):
            return None, [list(v) for v in value]
    raise InvalidRequest("'$.input' is invalid. Please check the API reference: "
                         "https://platform.openai.com/docs/api-reference.", "input")


class OpenAIEmbeddingsWire(OpenAIWire):
    """OpenAI's embeddings: errors and auth as for chat, its own request and answer."""

    def prompt(self, exchange: Exchange) -> Prompt:
        body = exchange.body
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest("you must provide a model parameter", "model")
        if "input" not in body:
            raise InvalidRequest("Missing required parameter: 'input'.", "input")
        texts, tokens = _openai_inputs(body["input"])
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise InvalidRequest(f"Invalid value for 'encoding_format': {fmt!r}.",
                                 "encoding_format")
        dims = _asked_dimensions(exchange, body.get("dimensions"), "dimensions", model)
        keys = [t for t in texts] if texts is not None else [
            " ".join(map(str, t)) for t in tokens or ()]
        used = sum(len(t.split()) for t in texts) if texts is not None else sum(
            len(t) for t in tokens or ())
        exchange.extra.update(keys=keys, dims=dims, base64=fmt == "base64", tokens=max(1, used))
        return Prompt(model=model)

    def body(self, reply: Reply, exchange: Exchange) -> bytes:
        extra = exchange.extra
        data = []
        for index, key in enumerate(extra["keys"]):
            vector = embedding_vector(key, extra["dims"])
            data.append({"object": "embedding", "index": index,
                         "embedding": _b64(vector) if extra["base64"] else vector})
        return _padded({"object": "list", "data": data, "model": exchange.model,
                        "usage": {"prompt_tokens": extra["tokens"],
                                  "total_tokens": extra["tokens"]}}, reply)

    def frames(self, reply: Reply, exchange: Exchange, chunks: int) -> list[bytes]:
        return [self.body(reply, exchange)]  # embeddings never stream


_OPENAI = OpenAIEmbeddingsWire()


async def openai_embeddings(request: web.Request) -> web.StreamResponse:
    body, problem = body_as_json(await request.read())
    model = body.get("model") if body is not None else None
    exchange = Exchange(request=request, endpoint="openai.embeddings",
                        model=model if isinstance(model, str) else "", body=body,
                        stream=False, body_error=problem)
    return await serve(exchange, _OPENAI)


# -- Gemini ------------------------------------------------------------------------------------

def _gemini_text(content: Any, path: str) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    texts = [p["text"] for p in parts or () if isinstance(p, dict) and isinstance(p.get("text"),
                                                                                    str)]
    if not texts or not "".join(texts):
        raise InvalidRequest(f"* {path}.content: contents is not specified")
    return " ".join(texts)


def _dimensionality(item: dict[str, Any]) -> Any:
    value = item.get("outputDimensionality")
    return item.get("output_dimensionality") if value is None else value


class GeminiEmbeddingsWire(GeminiWire):
    """Gemini's ``embedContent`` and ``batchEmbedContents``."""

    def prompt(self, exchange: Exchange) -> Prompt:
        body, model = exchange.body, exchange.model
        if exchange.extra["action"] == "embedContent":
            items = [body]
            path = "EmbedContentRequest"
        else:
            items = body.get("requests")
            if not isinstance(items, list) or not items:
                raise InvalidRequest("* BatchEmbedContentsRequest.requests: requests is not "
                                     "specified")
            if len(items) > 100:
                raise InvalidRequest("* BatchEmbedContentsRequest.requests: at most 100 "
                                     "requests can be in one batch")
            path = "BatchEmbedContentsRequest.requests"
        keys, dims = [], []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidRequest(f"* {path}[{index}]: must be an object")
            named = item.get("model")
            if path != "EmbedContentRequest" and named not in (f"models/{model}", model):
                raise InvalidRequest(f"* {path}[{index}].model: model {named!r} differs from "
                                     f"the model of the call, models/{model}")
            keys.append(_gemini_text(item.get("content"), path))
            dims.append(_asked_dimensions(exchange, _dimensionality(item),
                                          "outputDimensionality", model))
        exchange.extra.update(keys=keys, dims=dims)
        return Prompt(model=model)

    def body(self, reply: Reply, exchange: Exchange) -> bytes:
        extra = exchange.extra
        vectors = [{"values": embedding_vector(key, dims)}
                   for key, dims in zip(extra["keys"], extra["dims"], strict=True)]
        if extra["action"] == "embedContent":
            return _padded({"embedding": vectors[0]}, reply)
        return _padded({"embeddings": vectors}, reply)

    def frames(self, reply: Reply, exchange: Exchange, chunks: int) -> list[bytes]:
        return [self.body(reply, exchange)]


_GEMINI = GeminiEmbeddingsWire()
GEMINI_ACTIONS = ("embedContent", "batchEmbedContents")


async def gemini_embed(request: web.Request, model: str, action: str) -> web.StreamResponse:
    """``models/{model}:embedContent`` or ``:batchEmbedContents`` (dispatched by the Gemini
    route, which serves every ``models/{model}:{action}``)."""
    body, problem = body_as_json(await request.read())
    exchange = Exchange(request=request, endpoint=f"gemini.{action}", model=model, body=body,
                        stream=False, body_error=problem, extra={"action": action})
    return await serve(exchange, _GEMINI)


def add_routes(app: web.Application) -> None:
    """OpenAI's ``/v1/embeddings``; Gemini's actions join its ``models/{model}:{action}``
    route (``gemini_api.ACTIONS``)."""
    app.router.add_post("/v1/embeddings", openai_embeddings)
    for action in GEMINI_ACTIONS:
        ACTIONS[action] = gemini_embed
