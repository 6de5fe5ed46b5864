"""The application client library over a real sidecar and fake upstreams."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from echelon_sidecar.client import EchelonClient, LLMError, load_node_config
from echelon_sidecar.server import ServerSettings, Sidecar
from echelon_tools.fake_provider import FakeProvider, FakeSettings


@pytest.fixture
async def sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ECHELON_TEST_KEY", "k")
    async with FakeProvider(FakeSettings()) as fake:
        (tmp_path / "config.yaml").write_text(textwrap.dedent(f"""
            task_groups:
              plan_group:
                echelon1: {{models: [broken], priority: 1}}
                echelon2: {{models: [good], priority: 2}}
              fast_group:
                echelon1: {{models: [other], priority: 1}}
            workflow_nodes:
              planning_node:
                llm_group: plan_group.echelon1
                fallback_groups: [fast_group.echelon1]
            models:
              broken: {{provider: openai, model: broken-model, base_url: {fake.openai_base_url},
                        api_key_env: ECHELON_TEST_KEY}}
              good: {{provider: openai, model: good-model, base_url: {fake.openai_base_url},
                      api_key_env: ECHELON_TEST_KEY}}
              other: {{provider: anthropic, model: other-model,
                       base_url: {fake.anthropic_base_url}, api_key_env: ECHELON_TEST_KEY}}
        """))
        fake.set_fault("broken-model", "503")
        settings = ServerSettings(config=tmp_path, port=0, admin_port=0,
                                  admin_host="127.0.0.1", reload_interval=0)
        async with Sidecar(settings) as sc:
            yield sc, fake


async def test_call_with_group_falls_back_inside_the_sidecar(sidecar) -> None:
    sc, _ = sidecar
    async with EchelonClient(sc.data_url) as llm:
        assert await llm.call_with_group("plan_group", "hello") == "[fake:good-model] hello"


async def test_call_with_fallback_groups_replaces_the_groups_own_chain(sidecar) -> None:
    sc, _ = sidecar
    async with EchelonClient(sc.data_url) as llm:
        text = await llm.call_with_fallback_groups(["plan_group.echelon1", "fast_group"], "hi")
    assert text == "[fake:other-model] hi"


async def test_exhausted_chain_raises_llm_error_with_the_attempts(sidecar) -> None:
    sc, _ = sidecar
    async with EchelonClient(sc.data_url) as llm:
        with pytest.raises(LLMError) as info:
            await llm.call_with_fallback_groups(["plan_group.echelon1"], "x")
    assert info.value.status in (502, 503)
    assert info.value.attempts and info.value.attempts[0]["model"] == "broken"


async def test_node_config_from_the_source_documents_usage(sidecar) -> None:
    sc, _ = sidecar
    node = load_node_config({"type": "llm", "llm_group": "plan_group.echelon1",
                             "fallback_groups": ["plan_group.echelon2"]})
    async with EchelonClient(sc.data_url) as llm:
        result = await llm.call_node(node, "plan it")
        named = await llm.call_node("planning_node", "by name")
    assert result.served_by == "good" and result.tier == "plan_group.echelon2"
    assert named.served_by == "other"


async def test_node_config_with_a_per_attempt_timeout_is_called_by_its_name(sidecar) -> None:
    """The sidecar's declaration of the node applies (its fallback group, fast_group)."""
    sc, _ = sidecar
    node = load_node_config({"type": "llm", "llm_group": "plan_group.echelon1",
                             "fallback_groups": ["fast_group.echelon1"],
                             "task_config": {"timeout": 30}}, name="planning_node")
    async with EchelonClient(sc.data_url) as llm:
        result = await llm.call_node(node, "plan it")
        with pytest.raises(ValueError, match=r"task_config\.timeout"):
            await llm.call_node(node.model_copy(update={"name": None}), "plan it")
        with pytest.raises(LLMError) as unknown:
            await llm.call_node(node.model_copy(update={"name": "no_such_node"}), "plan it")
    assert result.served_by == "other"
    assert unknown.value.status == 404 and "no_such_node" in unknown.value.message
