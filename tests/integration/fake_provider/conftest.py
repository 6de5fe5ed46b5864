"""Fixtures: a fake provider on an OS-chosen loopback port, and SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from echelon_tools.fake_provider import FakeProvider, FakeSettings

API_KEY = "sk-fake-test-key"


@pytest.fixture
async def fp() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(FakeSettings(api_key=API_KEY, seed=7)) as provider:
        yield provider


@pytest.fixture
async def oai(fp: FakeProvider) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=fp.openai_base_url, api_key=API_KEY, max_retries=0,
                                timeout=10)
    yield client
    await client.close()


@pytest.fixture
async def claude(fp: FakeProvider) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=fp.anthropic_base_url, api_key=API_KEY,
                                      max_retries=0, timeout=10)
    yield client
    await client.close()


@pytest.fixture
async def gemini(fp: FakeProvider) -> AsyncIterator[genai.Client]:
    client = genai.Client(
        api_key=API_KEY,
        http_options=gtypes.HttpOptions(base_url=fp.gemini_base_url, timeout=10_000),
    )
    yield client
    await client.aio.aclose()
