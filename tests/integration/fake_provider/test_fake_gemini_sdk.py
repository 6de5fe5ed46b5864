"""The Gemini wire format parses with the official `google-genai` SDK, offline, via base_url."""

from __future__ import annotations

import json

import aiohttp
import pytest
from google import genai
from google.genai import errors as gerrors
from google.genai import types as gtypes

from echelon_tools.fake_provider import FakeProvider

# the SDK's own aiohttp session subclass warns on import; not ours to fix
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

MODEL = "gemini-2.5-flash"
TOOL = gtypes.Tool(function_declarations=[gtypes.FunctionDeclaration(
    name="lookup",
    parameters_json_schema={"type": "object", "properties": {
        "query": {"type": "string"}, "exact": {"type": "boolean"}},
        "required": ["query", "exact"]},
)])


async def test_generate_content(gemini: genai.Client) -> None:
    resp = await gemini.aio.models.generate_content(
        model=MODEL, contents="hello there brave new world",
        config=gtypes.GenerateContentConfig(system_instruction="be brief"))
    assert resp.text == f"[fake:{MODEL}] hello there brave new world"
    candidate = resp.candidates[0]
    assert candidate.content.role == "model"
    assert candidate.finish_reason == gtypes.FinishReason.STOP
    usage = resp.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (
        7, 6, 13)
    assert resp.model_version == MODEL
    assert resp.response_id


async def test_generate_content_stream(gemini: genai.Client, fp: FakeProvider) -> None:
    chunks = [c async for c in await gemini.aio.models.generate_content_stream(
        model=MODEL, contents="hello there brave new world")]
    assert len(chunks) == fp.settings.stream_chunks
    assert "".join(c.text for c in chunks) == f"[fake:{MODEL}] hello there brave new world"
    assert chunks[-1].candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].usage_metadata.candidates_token_count == 6
    assert fp.last_request(MODEL).query == {"alt": "sse"}


async def test_function_calling_mode_any_returns_a_function_call(
    gemini: genai.Client, fp: FakeProvider
) -> None:
    resp = await gemini.aio.models.generate_content(
        model=MODEL, contents="look it up",
        config=gtypes.GenerateContentConfig(
            tools=[TOOL],
            automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
            tool_config=gtypes.ToolConfig(function_calling_config=gtypes.FunctionCallingConfig(
                mode=gtypes.FunctionCallingConfigMode.ANY))))
    (call,) = resp.function_calls
    assert call.name == "lookup"
    assert call.args == {"query": "fake-query", "exact": True}
    record = fp.last_request(MODEL)
    assert record is not None
    assert record.body["toolConfig"]["functionCallingConfig"]["mode"] == "ANY"


async def test_json_mime_type_yields_json_text(gemini: genai.Client) -> None:
    resp = await gemini.aio.models.generate_content(
        model=MODEL, contents="give json",
        config=gtypes.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema={"type": "object", "properties": {"n": {"type": "integer"}},
                                  "required": ["n"]}))
    assert json.loads(resp.text) == {"n": 1}


async def test_thinking_config_reports_thought_tokens_and_thought_parts(
    gemini: genai.Client,
) -> None:
    resp = await gemini.aio.models.generate_content(
        model=MODEL, contents="think hard",
        config=gtypes.GenerateContentConfig(
            thinking_config=gtypes.ThinkingConfig(thinking_budget=1024, include_thoughts=True)))
    usage = resp.usage_metadata
    assert usage.thoughts_token_count and usage.thoughts_token_count > 0
    assert usage.total_token_count == (usage.prompt_token_count + usage.candidates_token_count
                                       + usage.thoughts_token_count)
    thought, answer = resp.candidates[0].content.parts
    assert thought.thought is True
    assert answer.text == f"[fake:{MODEL}] think hard"


async def test_stream_without_alt_sse_is_a_json_array(fp: FakeProvider) -> None:
    url = f"{fp.gemini_base_url}/v1beta/models/{MODEL}:streamGenerateContent"
    async with aiohttp.ClientSession() as session, session.post(
        url, params={"key": "sk-fake-test-key"},
        json={"contents": [{"role": "user", "parts": [{"text": "a b c d e f"}]}]},
    ) as resp:
        raw = await resp.read()
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    items = json.loads(raw)
    assert len(items) == fp.settings.stream_chunks
    parsed = [gtypes.GenerateContentResponse.model_validate(item) for item in items]
    assert "".join(p.text for p in parsed) == f"[fake:{MODEL}] a b c d e f"


async def test_wrong_key_is_the_real_api_key_invalid_error(fp: FakeProvider) -> None:
    client = genai.Client(api_key="wrong",
                          http_options=gtypes.HttpOptions(base_url=fp.gemini_base_url))
    with pytest.raises(gerrors.ClientError) as info:
        await client.aio.models.generate_content(model=MODEL, contents="hi")
    await client.aio.aclose()
    assert info.value.code == 400
    assert info.value.status == "INVALID_ARGUMENT"
    assert info.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


@pytest.mark.parametrize(
    ("spec", "exc_type", "status"),
    [("503", gerrors.ServerError, "UNAVAILABLE"), ("500", gerrors.ServerError, "INTERNAL"),
     ("429:retry-after=3", gerrors.ClientError, "RESOURCE_EXHAUSTED")],
)
async def test_status_faults_surface_as_genai_errors(
    gemini: genai.Client, fp: FakeProvider, spec: str, exc_type: type, status: str
) -> None:
    fp.set_fault(MODEL, spec)
    with pytest.raises(exc_type) as info:
        await gemini.aio.models.generate_content(model=MODEL, contents="hi")
    assert info.value.code == int(spec[:3])
    assert info.value.status == status
    assert fp.stats()["by_status"] == {spec[:3]: 1}


async def test_fault_is_scoped_by_the_path_model(gemini: genai.Client, fp: FakeProvider) -> None:
    fp.set_fault("gemini-pro", "503")
    ok = await gemini.aio.models.generate_content(model=MODEL, contents="hi")
    assert ok.text
    with pytest.raises(gerrors.ServerError):
        await gemini.aio.models.generate_content(model="gemini-pro", contents="hi")
