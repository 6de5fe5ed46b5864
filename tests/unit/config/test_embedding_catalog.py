"""The catalog's embedding models (``embedding_space`` / ``embedding_dimensions``): what is
refused, and the warning about routes whose embedding models are in different spaces."""

from __future__ import annotations

import pytest

from echelon_sidecar.config import ConfigError, load_config_text

MODELS = """
models:
  oa-small: {provider: openai, model: text-embedding-3-small, embedding_space: small,
             embedding_dimensions: 1536}
  gem-small: {provider: gemini, model: gemini-embedding-001, embedding_space: small,
              embedding_dimensions: 1536}
  gem-native: {provider: gemini, model: gemini-embedding-001, embedding_dimensions: 3072}
  gpt: {provider: openai, model: gpt-4o}
"""


def _warnings(text: str) -> list[str]:
    return [str(w) for w in load_config_text(text + MODELS).warnings]


def test_an_anthropic_model_cannot_be_an_embedding_model() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text("models:\n  c: {provider: anthropic, model: claude-sonnet-4-5, "
                         "embedding_space: s}\n")
    assert "provider anthropic has no embeddings API" in str(caught.value)


@pytest.mark.parametrize("field", ["embedding_dimensions: 0", "embedding_dimensions: 70000",
                                   "embedding_space: 'a b'", "embedding_space: ''"])
def test_out_of_range_embedding_fields_are_refused(field: str) -> None:
    with pytest.raises(ConfigError):
        load_config_text(f"models:\n  e: {{provider: openai, model: m, {field}}}\n")


def test_the_space_defaults_to_the_upstream_model_name() -> None:
    loaded = load_config_text(MODELS)
    native = loaded.config.models["gem-native"]
    assert native.is_embedding and native.space == "gemini-embedding-001"
    assert not loaded.config.models["gpt"].is_embedding


def test_a_chain_within_one_space_gets_no_warning() -> None:
    assert _warnings("task_groups:\n  e:\n    echelon1: {models: [oa-small]}\n"
                     "    echelon2: {models: [gem-small]}\n") == []


def test_a_group_chain_across_spaces_is_warned_about_naming_both_spaces() -> None:
    found = _warnings("task_groups:\n  e:\n    echelon1: {models: [oa-small]}\n"
                      "    echelon2: {models: [gem-native]}\n")
    assert len(found) == 1
    assert "task_groups.e" in found[0] and "different embedding spaces" in found[0]
    assert "space small at 1536 dimensions: oa-small" in found[0]
    assert "space gemini-embedding-001 at 3072 dimensions: gem-native" in found[0]


def test_a_fallback_group_in_another_space_is_warned_about_too() -> None:
    found = _warnings("task_groups:\n  e:\n    echelon1: {models: [oa-small]}\n"
                      "    fallback_config: {fallback_groups: [n]}\n"
                      "  n:\n    echelon1: {models: [gem-native]}\n")
    assert any("task_groups.e" in w for w in found)


def test_a_pool_and_a_node_across_spaces_are_warned_about() -> None:
    found = _warnings("task_groups:\n  a:\n    echelon1: {models: [oa-small]}\n"
                      "  b:\n    echelon1: {models: [gem-native]}\n"
                      "polling_pools:\n  p: {task_groups: [a, b]}\n"
                      "workflow_nodes:\n  n: {llm_group: a, fallback_groups: [b]}\n")
    assert any("polling_pools.p" in w and "different embedding spaces" in w for w in found)
    assert any("workflow_nodes.n" in w and "different embedding spaces" in w for w in found)


def test_a_tier_mixing_chat_and_embedding_models_is_warned_about_not_as_a_space() -> None:
    found = _warnings("task_groups:\n  e:\n    echelon1: {models: [oa-small, gpt]}\n")
    assert len(found) == 1
    assert "tier mixes embedding models (oa-small) and chat models (gpt)" in found[0]
