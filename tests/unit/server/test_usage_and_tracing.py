"""Reading usage from upstream replies, pricing it, and reading W3C trace context."""

from __future__ import annotations

import pytest

from echelon_sidecar.config import ModelPrice
from echelon_sidecar.server.tracing import _parse, forwarded, tracing_enabled
from echelon_sidecar.server.usage import body_model, cost_of, usage_of_body, usage_of_openai


def test_usage_is_read_from_each_upstreams_own_format() -> None:
    assert usage_of_body("openai", {"usage": {"prompt_tokens": 12, "completion_tokens": 7}}) \
        == (12, 7)
    # Anthropic's input excludes cached tokens: input counts them all
    assert usage_of_body("anthropic", {"usage": {
        "input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5,
        "output_tokens": 3}}) == (115, 3)
    # Gemini's output includes its thought tokens
    assert usage_of_body("gemini", {"usageMetadata": {
        "promptTokenCount": 9, "candidatesTokenCount": 4, "thoughtsTokenCount": 6}}) == (9, 10)


@pytest.mark.parametrize("body", [None, [], {}, {"usage": None}, {"usage": "x"}])
def test_a_reply_without_usage_has_none(body: object) -> None:
    assert usage_of_body("openai", body) is None


def test_odd_token_counts_count_as_zero() -> None:
    assert usage_of_openai({"prompt_tokens": -3, "completion_tokens": True}) == (0, 0)
    assert usage_of_openai({"prompt_tokens": "12"}) == (0, 0)


def test_cost_is_tokens_at_the_price_per_million() -> None:
    price = ModelPrice(input_per_million=3, output_per_million=15)
    assert cost_of((1_000_000, 0), price) == 3
    assert cost_of((2000, 1000), price) == pytest.approx(0.006 + 0.015)
    assert cost_of((2000, 1000), None) == 0


def test_the_catalog_price_accepts_camel_case_and_refuses_negative_prices() -> None:
    assert ModelPrice.model_validate({"inputPerMillion": 1, "outputPerMillion": 2}) \
        == ModelPrice(input_per_million=1, output_per_million=2)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        ModelPrice(input_per_million=-1, output_per_million=2)


def test_the_response_model_is_the_upstreams_own_name() -> None:
    assert body_model({"model": "gpt-4o-2024-08-06"}) == "gpt-4o-2024-08-06"
    assert body_model({"modelVersion": "gemini-2.0-flash-001"}) == "gemini-2.0-flash-001"
    assert body_model({"model": ""}) is None and body_model([]) is None


VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_traceparent_is_read() -> None:
    assert _parse(VALID) == (0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 1)
    assert _parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future") is not None


@pytest.mark.parametrize("value", [
    "", "garbage", VALID.upper(), VALID + "-extra",              # version 00 has no more
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff is invalid
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent id
])
def test_an_invalid_traceparent_is_ignored(value: str) -> None:
    assert _parse(value) is None
    assert forwarded({"traceparent": value}) is None


def test_tracing_follows_the_standard_variables() -> None:
    assert not tracing_enabled({})
    assert tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert tracing_enabled({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert not tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                                "OTEL_SDK_DISABLED": "true"})
    assert not tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                                "OTEL_TRACES_EXPORTER": "none"})
