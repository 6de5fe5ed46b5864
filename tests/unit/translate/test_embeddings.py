"""The embeddings translators (``translate.embeddings``): reading an OpenAI embeddings body,
the Gemini ``embedContent`` / ``batchEmbedContents`` call it becomes, and both upstreams'
answers in the OpenAI shape (float or base64, with usage)."""

from __future__ import annotations

import base64
from array import array
from typing import Any

import pytest

from echelon_sidecar.translate import (
    InvalidRequest,
    MalformedUpstreamResponse,
    UnsupportedFeature,
    conform_openai_embeddings,
    decode_embedding,
    encode_embedding,
    estimate_text_tokens,
    gemini_to_openai_embeddings,
    openai_to_gemini_embeddings,
    read_embeddings_request,
)

VEC = [0.25, -0.5, 0.125, 1.0]


def test_base64_is_little_endian_float32_as_the_openai_sdk_decodes_it() -> None:
    encoded = encode_embedding(VEC)
    assert array("f", base64.b64decode(encoded)).tolist() == VEC
    assert decode_embedding(encoded) == VEC
    with pytest.raises(ValueError):
        decode_embedding("not base64!")


@pytest.mark.parametrize(("value", "texts", "tokens", "single"), [
    ("hello", ("hello",), None, True),
    (["a", "b"], ("a", "b"), None, False),
    ([1, 2, 3], None, ((1, 2, 3),), True),
    ([[1, 2], [3]], None, ((1, 2), (3,)), False),
])
def test_every_openai_input_form_is_read(value: Any, texts: Any, tokens: Any,
                                         single: bool) -> None:
    read = read_embeddings_request({"input": value})
    assert (read.texts, read.tokens, read.single) == (texts, tokens, single)
    assert read.encoding_format == "float" and read.dimensions is None


@pytest.mark.parametrize(("body", "field"), [
    ({}, "input"),
    ({"input": ""}, "input"),
    ({"input": []}, "input"),
    ({"input": ["a", ""]}, "input[1]"),
    ({"input": ["a", 1]}, "input[1]"),
    ({"input": [[1], []]}, "input[1]"),
    ({"input": [1, -2]}, "input[1]"),
    ({"input": [True]}, "input[0]"),
    ({"input": ["a"] * 2049}, "input"),
    ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
    ({"input": "a", "dimensions": 0}, "dimensions"),
    ({"input": "a", "dimensions": True}, "dimensions"),
    ({"input": "a", "user": 3}, "user"),
])
def test_a_wrong_body_names_its_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        read_embeddings_request(body)
    assert caught.value.field_path == field


def test_one_input_becomes_embed_content_and_several_batch_embed_contents() -> None:
    one = read_embeddings_request({"input": "hi", "dimensions": 8})
    assert openai_to_gemini_embeddings(one, "gemini-embedding-001") == (
        "embedContent", {"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 8})
    many = read_embeddings_request({"input": ["a", "b"]})
    assert openai_to_gemini_embeddings(many, "gemini-embedding-001") == (
        "batchEmbedContents", {"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}}]})


def test_gemini_cannot_take_token_ids_or_more_than_a_hundred_inputs() -> None:
    with pytest.raises(UnsupportedFeature) as caught:
        openai_to_gemini_embeddings(read_embeddings_request({"input": [1, 2]}), "m")
    assert caught.value.feature == "token_input"
    with pytest.raises(UnsupportedFeature) as caught:
        openai_to_gemini_embeddings(read_embeddings_request({"input": ["x"] * 101}), "m")
    assert caught.value.feature == "input"


def test_a_gemini_batch_answer_becomes_the_openai_shape_with_an_estimated_usage() -> None:
    request = read_embeddings_request({"input": ["hello world", "bye"]})
    answer = gemini_to_openai_embeddings({"embeddings": [{"values": VEC}, {"values": VEC}]},
                                         request, 4, "gemini-embedding-001")
    assert answer["object"] == "list" and answer["model"] == "gemini-embedding-001"
    assert answer["data"] == [{"object": "embedding", "index": 0, "embedding": VEC},
                              {"object": "embedding", "index": 1, "embedding": VEC}]
    tokens = estimate_text_tokens("hello world") + estimate_text_tokens("bye")
    assert answer["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens,
                               "estimated": True}


def test_a_gemini_single_answer_in_base64() -> None:
    request = read_embeddings_request({"input": "hi", "encoding_format": "base64"})
    answer = gemini_to_openai_embeddings({"embedding": {"values": VEC}}, request, None, "m")
    assert decode_embedding(answer["data"][0]["embedding"]) == VEC


@pytest.mark.parametrize(("body", "expected"), [
    ({"embeddings": [{"values": VEC}]}, 4),  # one for two inputs
    ({"embeddings": [{"values": VEC}, {"values": []}]}, 4),
    ({"embeddings": [{"values": VEC}, {"values": VEC}]}, 8),  # wrong length
    ({"nothing": True}, None),
])
def test_a_gemini_answer_that_does_not_fit_the_request_is_malformed(
    body: dict[str, Any], expected: int | None
) -> None:
    request = read_embeddings_request({"input": ["a", "b"]})
    with pytest.raises(MalformedUpstreamResponse):
        gemini_to_openai_embeddings(body, request, expected, "m")


def _openai(vectors: list[Any], usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"object": "list", "model": "text-embedding-3-small", "data": [
        {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]}
    if usage:
        body["usage"] = {"prompt_tokens": 3, "total_tokens": 3}
    return body


def test_an_openai_answer_in_the_asked_encoding_passes_as_it_is() -> None:
    floats = read_embeddings_request({"input": ["a", "b"]})
    assert conform_openai_embeddings(_openai([VEC, VEC]), floats, 4, "m") is None
    b64 = read_embeddings_request({"input": "a", "encoding_format": "base64"})
    assert conform_openai_embeddings(_openai([encode_embedding(VEC)]), b64, 4, "m") is None


def test_an_openai_compatible_answer_in_the_other_encoding_is_converted() -> None:
    b64 = read_embeddings_request({"input": "a", "encoding_format": "base64"})
    out = conform_openai_embeddings(_openai([VEC]), b64, None, "m")
    assert out is not None and decode_embedding(out["data"][0]["embedding"]) == VEC
    floats = read_embeddings_request({"input": "a"})
    out = conform_openai_embeddings(_openai([encode_embedding(VEC)]), floats, None, "m")
    assert out is not None and out["data"][0]["embedding"] == VEC


def test_an_openai_compatible_answer_without_usage_gets_an_estimated_one() -> None:
    request = read_embeddings_request({"input": "hello there"})
    out = conform_openai_embeddings(_openai([VEC], usage=False), request, 4, "m")
    assert out is not None and out["usage"]["estimated"] is True
    assert out["usage"]["prompt_tokens"] == estimate_text_tokens("hello there")


def test_an_openai_answer_of_the_wrong_count_or_length_is_malformed() -> None:
    request = read_embeddings_request({"input": ["a", "b"]})
    with pytest.raises(MalformedUpstreamResponse):
        conform_openai_embeddings(_openai([VEC]), request, 4, "m")
    with pytest.raises(MalformedUpstreamResponse):
        conform_openai_embeddings(_openai([VEC, VEC]), request, 1536, "m")
    with pytest.raises(MalformedUpstreamResponse):
        conform_openai_embeddings(_openai([VEC, None]), request, None, "m")
