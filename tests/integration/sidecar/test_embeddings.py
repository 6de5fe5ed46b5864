"""``POST /v1/embeddings`` through the real sidecar, with the ``openai`` SDK as the client and
the fake OpenAI and Gemini upstreams behind it: float and base64, one input and a batch,
routing by group, tier, pool and node, fallback only within one embedding space.

The fake's vectors depend on the text only (see ``fake_provider.embeddings_api``), so an
answer can be checked against ``embedding_vector`` whichever upstream served it.
"""

from __future__ import annotations

import base64
from array import array
from typing import Any

import openai
import pytest

from echelon_tools.fake_provider import FakeProvider
from echelon_tools.fake_provider.embeddings_api import embedding_vector

from ..conftest import (
    FAKE_API_KEY,
    HI,
    MakeSidecar,
    RunningSidecar,
    anthropic_model,
    gemini_model,
    openai_model,
)

DIMS = 256  # the fake's length for models it does not know
SPACE = {"embedding_space": "fake-space", "embedding_dimensions": DIMS}
OTHER = {"embedding_space": "other-space", "embedding_dimensions": DIMS}
TEXTS = ["the cat sat on the mat", "a dog barked twice", "echelon routes embeddings"]


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {
            # an OpenAI embedding model, then a Gemini one of the same declared space
            "embed": {"echelon1": {"models": ["oa-emb"], "priority": 1},
                      "echelon2": {"models": ["gem-emb"], "priority": 2}},
            # the same OpenAI model, then a model of ANOTHER space
            "mixed": {"echelon1": {"models": ["oa-emb"], "priority": 1},
                      "echelon2": {"models": ["other-emb"], "priority": 2}},
            "gem": {"echelon1": {"models": ["gem-emb"]}},
            "chat": {"echelon1": {"models": ["gpt", "claude"]}},
        },
        "polling_pools": {"emb_pool": {"task_groups": ["embed"]}},
        "workflow_nodes": {"indexer": {"llm_group": "embed.echelon2"}},
        "models": {
            "oa-emb": openai_model(fake, "up-oa-emb", **SPACE),
            "gem-emb": gemini_model(fake, "up-gem-emb", **SPACE),
            "other-emb": openai_model(fake, "up-other-emb", **OTHER),
            "gpt": openai_model(fake, "up-gpt"),
            "claude": anthropic_model(fake, "up-claude"),
        },
    }


@pytest.fixture
async def sc(fake: FakeProvider, make_sidecar: MakeSidecar) -> RunningSidecar:
    return await make_sidecar(_config(fake))


def _close(got: list[float], text: str, dims: int = DIMS, tol: float = 1e-6) -> bool:
    want = embedding_vector(text, dims)
    return len(got) == dims and all(abs(a - b) <= tol for a, b in zip(got, want, strict=True))


def _floats(b64: str) -> list[float]:
    return array("f", base64.b64decode(b64)).tolist()


# -- float and base64, one input and a batch -----------------------------------------------------

async def test_one_string_as_floats_is_embedded_by_the_groups_first_model(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    raw = await sc.openai.embeddings.with_raw_response.create(
        model="embed", input=TEXTS[0], encoding_format="float", user="user-42")
    answer = raw.parse()
    assert raw.headers["x-echelon-served-by"] == "oa-emb"
    assert answer.object == "list" and len(answer.data) == 1
    assert answer.data[0].index == 0 and answer.data[0].object == "embedding"
    assert _close(answer.data[0].embedding, TEXTS[0], tol=0.0)
    assert answer.usage.prompt_tokens == 6 and answer.usage.total_tokens == 6  # the fake's words
    sent = fake.last_request("up-oa-emb")
    assert sent is not None and sent.path == "/v1/embeddings"
    assert sent.headers["Authorization"] == f"Bearer {FAKE_API_KEY}"
    assert sent.body == {"model": "up-oa-emb", "input": TEXTS[0], "encoding_format": "float",
                         "user": "user-42"}


async def test_a_batch_in_the_sdks_default_base64_comes_back_as_the_right_vectors(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    answer = await sc.openai.embeddings.create(model="embed", input=TEXTS)
    assert [d.index for d in answer.data] == [0, 1, 2]
    for item, text in zip(answer.data, TEXTS, strict=True):
        assert _close(item.embedding, text)  # float32 precision
    sent = fake.last_request("up-oa-emb")
    assert sent is not None and sent.body["encoding_format"] == "base64"


async def test_explicit_base64_is_returned_as_base64_little_endian_float32(
    sc: RunningSidecar,
) -> None:
    answer = await sc.openai.embeddings.create(model="embed", input=TEXTS[:2],
                                               encoding_format="base64")
    for item, text in zip(answer.data, TEXTS[:2], strict=True):
        assert isinstance(item.embedding, str)
        assert _close(_floats(item.embedding), text)


async def test_dimensions_shorten_the_vectors(sc: RunningSidecar, fake: FakeProvider) -> None:
    answer = await sc.openai.embeddings.create(model="embed", input=TEXTS[0], dimensions=64,
                                               encoding_format="float")
    assert _close(answer.data[0].embedding, TEXTS[0], dims=64, tol=0.0)
    sent = fake.last_request("up-oa-emb")
    assert sent is not None and sent.body["dimensions"] == 64


async def test_token_arrays_go_to_an_openai_upstream_as_they_are(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    answer = await sc.openai.embeddings.create(model="embed", input=[[1, 2, 3], [4, 5]],
                                               encoding_format="float")
    assert len(answer.data) == 2
    assert answer.usage.prompt_tokens == 5
    sent = fake.last_request("up-oa-emb")
    assert sent is not None and sent.body["input"] == [[1, 2, 3], [4, 5]]


# -- Gemini ------------------------------------------------------------------------------------

async def test_gemini_embeds_one_input_with_embed_content_and_usage_is_marked_estimated(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    raw = await sc.openai.embeddings.with_raw_response.create(
        model="gem", input=TEXTS[0], encoding_format="float")
    answer = raw.parse()
    assert raw.headers["x-echelon-served-by"] == "gem-emb"
    assert raw.headers["x-echelon-usage"] == "estimated"
    assert _close(answer.data[0].embedding, TEXTS[0], tol=0.0)
    assert answer.model == "up-gem-emb"
    assert answer.usage.prompt_tokens > 0
    assert answer.usage.model_extra == {"estimated": True}
    sent = fake.last_request("up-gem-emb")
    assert sent is not None and sent.path == "/v1beta/models/up-gem-emb:embedContent"
    assert sent.headers["x-goog-api-key"] == FAKE_API_KEY
    assert sent.body == {"content": {"parts": [{"text": TEXTS[0]}]}}


async def test_gemini_embeds_a_batch_with_batch_embed_contents_in_base64(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    answer = await sc.openai.embeddings.create(model="gem", input=TEXTS, dimensions=32)
    for item, text in zip(answer.data, TEXTS, strict=True):
        assert _close(item.embedding, text, dims=32)
    sent = fake.last_request("up-gem-emb")
    assert sent is not None and sent.path == "/v1beta/models/up-gem-emb:batchEmbedContents"
    assert sent.body == {"requests": [
        {"model": "models/up-gem-emb", "content": {"parts": [{"text": t}]},
         "outputDimensionality": 32} for t in TEXTS]}


async def test_token_arrays_cannot_go_to_gemini(sc: RunningSidecar, fake: FakeProvider) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sc.openai.embeddings.create(model="gem", input=[1, 2, 3])
    assert caught.value.code == "unsupported_token_input"
    assert fake.requests("up-gem-emb") == []


# -- fallback within one space, never across spaces --------------------------------------------

async def test_a_failing_openai_embedding_model_falls_back_to_gemini_of_the_same_space(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-oa-emb", "503")
    raw = await sc.openai.embeddings.with_raw_response.create(model="embed", input=TEXTS)
    answer = raw.parse()
    assert raw.headers["x-echelon-served-by"] == "gem-emb"
    assert raw.headers["x-echelon-tier"] == "embed.echelon2"
    assert raw.headers["x-echelon-attempts"] == "2"
    assert raw.headers["x-echelon-fallbacks"] == "1"
    for item, text in zip(answer.data, TEXTS, strict=True):
        assert _close(item.embedding, text)
    assert len(fake.requests("up-oa-emb")) == 1


async def test_no_fallback_into_another_embedding_space(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-oa-emb", "503")
    with pytest.raises(openai.APIStatusError) as caught:
        await sc.openai.embeddings.create(model="mixed", input=TEXTS[0])
    assert caught.value.status_code == 502
    attempts = caught.value.body["attempts"]  # type: ignore[index]
    assert [(a["model"], a["reason"]) for a in attempts] == [
        ("oa-emb", "fallback"), ("other-emb", "cannot_serve")]
    assert "other-space" in attempts[1]["message"] and "fake-space" in attempts[1]["message"]
    assert fake.requests("up-other-emb") == []  # never called


async def test_a_tier_of_another_space_is_served_in_its_own_space(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    raw = await sc.openai.embeddings.with_raw_response.create(model="mixed.echelon2",
                                                              input=TEXTS[0])
    assert raw.headers["x-echelon-served-by"] == "other-emb"  # its own route: its own space


# -- routing by pool, node, and what cannot serve -----------------------------------------------

async def test_a_pool_and_a_node_serve_embeddings(sc: RunningSidecar) -> None:
    pooled = await sc.openai.embeddings.with_raw_response.create(
        model="emb_pool", input=TEXTS[0], encoding_format="float")
    assert pooled.headers["x-echelon-served-by"] in ("oa-emb", "gem-emb")
    assert _close(pooled.parse().data[0].embedding, TEXTS[0], tol=0.0)
    node = await sc.openai.embeddings.with_raw_response.create(model="indexer", input=TEXTS[1])
    assert node.headers["x-echelon-served-by"] == "gem-emb"


async def test_chat_models_and_anthropic_cannot_serve_embeddings(sc: RunningSidecar) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sc.openai.embeddings.create(model="chat", input="hello")
    assert caught.value.code == "unsupported_embeddings"
    attempts = caught.value.body["attempts"]  # type: ignore[index]
    assert [a["reason"] for a in attempts] == ["cannot_serve", "cannot_serve"]
    assert "anthropic has no embeddings API" in attempts[1]["message"]


async def test_embedding_models_cannot_serve_chat(sc: RunningSidecar) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sc.openai.chat.completions.create(model="embed", messages=HI)  # type: ignore[arg-type]
    assert caught.value.code == "unsupported_chat"


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "embed"}, "input"),
    ({"model": "embed", "input": ""}, "input"),
    ({"model": "embed", "input": ["a", 3]}, "input[1]"),
    ({"model": "embed", "input": "a", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "embed", "input": "a", "dimensions": 0}, "dimensions"),
])
async def test_a_wrong_embeddings_request_is_answered_400_naming_the_field(
    sc: RunningSidecar, body: dict[str, Any], param: str
) -> None:
    status, _, answer = await sc.post("/v1/embeddings", body)
    assert status == 400
    assert answer["error"]["param"] == param


async def test_an_unknown_model_is_404(sc: RunningSidecar) -> None:
    with pytest.raises(openai.NotFoundError):
        await sc.openai.embeddings.create(model="nope", input="hello")


# -- GET /v1/models ----------------------------------------------------------------------------

async def test_the_model_list_says_which_names_serve_chat_and_which_embeddings(
    sc: RunningSidecar,
) -> None:
    listed = {m.id: m for m in (await sc.openai.models.list()).data}
    chat = ["/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/messages/count_tokens"]
    embed = ["/v1/embeddings", "/v1/messages/count_tokens"]
    assert listed["chat"].model_extra == {"kind": "group", "endpoints": chat}
    assert listed["embed"].model_extra == {"kind": "group", "endpoints": embed,
                                           "embedding_space": "fake-space",
                                           "embedding_dimensions": DIMS}
    assert listed["embed.echelon2"].model_extra["kind"] == "tier"  # type: ignore[index]
    assert listed["emb_pool"].model_extra["kind"] == "pool"  # type: ignore[index]
    assert listed["indexer"].model_extra["kind"] == "node"  # type: ignore[index]
    assert listed["mixed.echelon2"].model_extra["embedding_space"] == "other-space"  # type: ignore[index]
    one = await sc.openai.models.retrieve("gem")
    assert one.model_extra["endpoints"] == embed  # type: ignore[index]
