"""The fake upstreams' embeddings, read by the official SDKs: ``openai``'s
``embeddings.create`` (``/v1/embeddings``) and ``google-genai``'s ``models.embed_content``
(``batchEmbedContents``); deterministic vectors of each model's length, faults as for chat."""

from __future__ import annotations

import math

import openai
import pytest
from google import genai
from google.genai import errors as gerrors
from google.genai import types as gtypes

from echelon_tools.fake_provider import FakeProvider
from echelon_tools.fake_provider.embeddings_api import embedding_vector

pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


def test_vectors_are_unit_length_deterministic_and_shorter_ones_are_prefixes() -> None:
    full = embedding_vector("hello", 64)
    assert full == embedding_vector("hello", 64) != embedding_vector("hellp", 64)
    assert math.isclose(sum(v * v for v in full), 1.0)
    short = embedding_vector("hello", 16)
    scale = full[0] / short[0]
    assert all(math.isclose(a, b * scale) for a, b in zip(full[:16], short, strict=True))


async def test_openai_sdk_reads_the_fakes_embeddings_of_the_models_own_length(
    oai: openai.AsyncOpenAI,
) -> None:
    answer = await oai.embeddings.create(model="text-embedding-3-small",
                                         input=["one two", "three"])
    assert [len(d.embedding) for d in answer.data] == [1536, 1536]
    assert answer.usage.prompt_tokens == 3
    assert answer.data[0].embedding == pytest.approx(embedding_vector("one two", 1536),
                                                      abs=1e-6)
    small = await oai.embeddings.create(model="other-model", input="x", dimensions=8,
                                        encoding_format="float")
    assert small.data[0].embedding == embedding_vector("x", 8)


async def test_asking_more_dimensions_than_the_model_has_is_a_400(
    oai: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError):
        await oai.embeddings.create(model="text-embedding-3-small", input="x", dimensions=4096)


async def test_faults_apply_to_embeddings_as_to_chat(oai: openai.AsyncOpenAI,
                                                     fp: FakeProvider) -> None:
    fp.set_fault("text-embedding-3-small", "first:1:503")
    with pytest.raises(openai.InternalServerError):
        await oai.embeddings.create(model="text-embedding-3-small", input="x")
    await oai.embeddings.create(model="text-embedding-3-small", input="x")
    assert fp.stats()["by_endpoint"]["openai.embeddings"] == 2


async def test_google_genai_sdk_reads_the_fakes_batch_embeddings(
    gemini: genai.Client, fp: FakeProvider,
) -> None:
    answer = await gemini.aio.models.embed_content(
        model="gemini-embedding-001", contents=["hello there", "general kenobi"],
        config=gtypes.EmbedContentConfig(output_dimensionality=32))
    assert answer.embeddings is not None
    assert [e.values for e in answer.embeddings] == [embedding_vector("hello there", 32),
                                                      embedding_vector("general kenobi", 32)]
    sent = fp.last_request("gemini-embedding-001")
    assert sent is not None and sent.path.endswith(":batchEmbedContents")


async def test_a_gemini_embedding_fault_is_a_gemini_error(gemini: genai.Client,
                                                          fp: FakeProvider) -> None:
    fp.set_fault("gemini-embedding-001", "429")
    with pytest.raises(gerrors.ClientError) as caught:
        await gemini.aio.models.embed_content(model="gemini-embedding-001", contents="x")
    assert caught.value.code == 429
