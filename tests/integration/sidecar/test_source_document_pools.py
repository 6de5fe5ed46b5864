"""The source documents' own configs (configs/_task_groups.yaml), served over real HTTP.

Every model of the catalog is pointed at the fake upstream of its provider kind; nothing else
of the file changes. Tool-less requests to the pools that mix a ``function_calling: required``
tier are served, never answered 400, and a workflow node's tier choice holds in its pool.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from echelon_sidecar.config import load_config
from echelon_tools.fake_provider import FakeProvider

from ..conftest import API_KEY_ENV, HI, MakeSidecar, RunningSidecar

SOURCE = Path(__file__).resolve().parents[3] / "configs" / "_task_groups.yaml"


def _on_the_fakes(fake: FakeProvider) -> dict[str, Any]:
    urls = {"openai": fake.openai_base_url, "openai_compatible": fake.openai_base_url,
            "anthropic": fake.anthropic_base_url, "gemini": fake.gemini_base_url}
    data = load_config(SOURCE, log_deprecations=False).config.model_dump(
        mode="json", exclude_none=True, exclude_unset=True)
    for entry in data["models"].values():
        entry["base_url"] = urls[entry["provider"]]
        entry.pop("api_key_file", None)
        entry.pop("api_key_secret", None)
        entry["api_key_env"] = API_KEY_ENV
    return data


async def _served_by(sc: RunningSidecar, model: str, count: int) -> Counter[str]:
    served: Counter[str] = Counter()
    for _ in range(count):
        raw = await sc.openai.chat.completions.with_raw_response.create(model=model, messages=HI)
        raw.parse()
        served[raw.headers["x-echelon-tier"]] += 1
    return served


async def test_the_source_documents_mixed_pools_serve_every_tool_less_request(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_on_the_fakes(fake))
    single = await _served_by(sc, "single_turn_pool", 24)  # was: ~1 in 8 answered 400
    assert sum(single.values()) == 24
    assert "fast_small_group.execute" not in single  # function_calling: required
    execute = await _served_by(sc, "execute_pool", 12)  # was: 2 in 6 answered 400
    assert sum(execute.values()) == 12
    assert "execute_group.echelon1" not in execute


async def test_the_source_documents_fast_response_node_is_served_by_its_own_tier(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_on_the_fakes(fake))
    served = await _served_by(sc, "fast_response_node", 8)  # was: served by echelon1 too
    assert set(served) == {"fast_group.echelon3"}
