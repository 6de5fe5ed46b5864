"""Every kind of upstream failure falls back (before the first byte), in every wire format."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import HI, MakeSidecar, anthropic_model, gemini_model, openai_model

FAULTS = ["500", "503", "529", "408", "409", "429", "401", "403", "hang", "hang:headers",
          "reset", "html", "malformed", "cut:0", "oversize:2"]


def _config(fake: FakeProvider, provider: str) -> dict[str, Any]:
    make = {"openai": openai_model, "anthropic": anthropic_model, "gemini": gemini_model}
    return {
        "task_groups": {"g": {
            "echelon1": {"models": ["first"], "priority": 1, "timeout": 0.5},
            "echelon2": {"models": ["second"], "priority": 2},
        }},
        "models": {"first": make[provider](fake, "up-first"),
                   "second": openai_model(fake, "up-second")},
    }


# an oversized first event: Gemini's first stream event holds the whole (huge) text; OpenAI and
# Anthropic streams start with a small event (see the mid-stream oversize test below)
CASES = [
    pytest.param(provider, stream, fault,
                 id=f"{provider}-{'stream' if stream else 'whole'}-{fault}")
    for provider in ("openai", "anthropic", "gemini")
    for stream in (False, True)
    for fault in FAULTS
    if not (stream and fault.startswith("oversize") and provider != "gemini")
]


@pytest.mark.parametrize(("provider", "stream", "fault"), CASES)
async def test_each_upstream_failure_falls_back_to_the_next_tier(
    fake: FakeProvider, make_sidecar: MakeSidecar, provider: str, stream: bool, fault: str
) -> None:
    sc = await make_sidecar(_config(fake, provider))
    sc.sidecar.engine.provider.max_response_bytes = 1024 * 1024  # type: ignore[union-attr]
    fake.set_fault("up-first", fault)
    if fault.startswith("oversize"):
        fake.configure(stream_chunks=1)
    if stream:
        s = await sc.openai.chat.completions.create(model="g", messages=HI, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in s if c.choices])
    else:
        done = await sc.openai.chat.completions.create(model="g", messages=HI)
        text = done.choices[0].message.content or ""
    assert text == "[fake:up-second] hello there sidecar"
    stats = fake.stats()
    assert stats["by_model"]["up-first"] == 1
    assert stats["faults_injected"]["up-first"]
    status = await sc.status()
    (first,) = [i for i in status["instances"] if i["model"] == "first"]
    assert first["consecutive_failures"] == 1
    assert first["state"] == ("open" if fault in ("401", "403") else "closed")


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_an_oversized_event_after_the_first_byte_ends_the_stream_with_an_error(
    fake: FakeProvider, make_sidecar: MakeSidecar, provider: str
) -> None:
    sc = await make_sidecar(_config(fake, provider))
    sc.sidecar.engine.provider.max_response_bytes = 256 * 1024  # type: ignore[union-attr]
    fake.configure(stream_chunks=1)
    fake.set_fault("up-first", "oversize:2")
    chunks: list[Any] = []
    with pytest.raises(openai.APIError, match="exceeds"):
        await sc.openai_stream(chunks, model="g", messages=HI)
    assert chunks, "the stream was committed (its first small event went out)"
    assert fake.stats()["by_model"].get("up-second", 0) == 0
