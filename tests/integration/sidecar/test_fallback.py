"""Fallback tier by tier, across fallback groups, node targets and pool rotation."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import HI, MakeSidecar, RunningSidecar, openai_model


def _config(fake: FakeProvider) -> dict[str, Any]:
    upstreams = ["p1", "p2", "b1", "o1", "r1", "r2", "r3"]
    return {
        "task_groups": {
            "plan_group": {
                "echelon1": {"models": ["p1"], "priority": 1},
                "echelon2": {"models": ["p2"], "priority": 2},
                "fallback_config": {"fallback_groups": ["backup_group"], "max_attempts": 4},
            },
            "backup_group": {"echelon1": {"models": ["b1"]}},
            "other_group": {"echelon1": {"models": ["o1"]}},
            "pool_group": {"echelon1": {"models": ["r1", "r2", "r3"]}},
        },
        "polling_pools": {
            "rot_pool": {"task_groups": ["pool_group"], "rotation_strategy": "round_robin",
                         "max_instance_attempts": 2},
        },
        "workflow_nodes": {
            "planner": {"llm_group": "plan_group.echelon1", "fallback_groups": ["other_group"]},
        },
        "models": {name: openai_model(fake, f"up-{name}") for name in upstreams},
    }


async def _served(sc: RunningSidecar, model: str, headers: dict[str, str] | None = None
                  ) -> tuple[str, dict[str, str]]:
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model=model, messages=HI, extra_headers=headers or {})
    completion = raw.parse()
    return completion.choices[0].message.content or "", dict(raw.headers)


async def test_a_failing_first_tier_falls_back_to_the_second(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-p1", "503")
    text, headers = await _served(sc, "plan_group")
    assert text.startswith("[fake:up-p2]")
    assert headers["x-echelon-served-by"] == "p2"
    assert headers["x-echelon-tier"] == "plan_group.echelon2"
    assert headers["x-echelon-attempts"] == "2"
    assert headers["x-echelon-fallbacks"] == "1"
    stats = fake.stats()
    assert stats["by_model_status"]["up-p1"] == {"503": 1}
    assert stats["by_model_status"]["up-p2"] == {"200": 1}


async def test_a_failing_group_falls_back_to_its_own_fallback_groups(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-p1", "500")
    fake.set_fault("up-p2", "529")
    text, headers = await _served(sc, "plan_group")
    assert text.startswith("[fake:up-b1]")
    assert headers["x-echelon-tier"] == "backup_group.echelon1"
    assert headers["x-echelon-attempts"] == "3"
    assert fake.stats()["by_model"].get("up-o1", 0) == 0


async def test_the_fallback_groups_header_replaces_the_groups_own(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-p1", "503")
    fake.set_fault("up-p2", "503")
    text, headers = await _served(sc, "plan_group",
                                  {"X-Echelon-Fallback-Groups": "other_group"})
    assert text.startswith("[fake:up-o1]")
    assert headers["x-echelon-tier"] == "other_group.echelon1"
    assert fake.stats()["by_model"].get("up-b1", 0) == 0


async def test_the_fallback_groups_header_none_asks_for_no_fallback_group(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-p1", "503")
    fake.set_fault("up-p2", "503")
    with pytest.raises(openai.InternalServerError):
        await _served(sc, "plan_group", {"X-Echelon-Fallback-Groups": "none"})
    by_model = fake.stats()["by_model"]
    assert by_model.get("up-b1", 0) == 0 and by_model.get("up-o1", 0) == 0
    text, _ = await _served(sc, "plan_group")
    assert text.startswith("[fake:up-b1]"), "without the header: the group's own fallback"


async def test_a_node_target_applies_the_nodes_fallback_groups(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    text, _ = await _served(sc, "planner")
    assert text.startswith("[fake:up-p1]")
    fake.set_fault("up-p1", "503")
    fake.set_fault("up-p2", "503")
    text, _ = await _served(sc, "planner")
    assert text.startswith("[fake:up-o1]"), "the node's fallback group, not the group's own"
    assert fake.stats()["by_model"].get("up-b1", 0) == 0


async def test_the_node_header_applies_the_node_to_a_group_reference(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-p1", "503")
    fake.set_fault("up-p2", "503")
    text, _ = await _served(sc, "plan_group", {"X-Echelon-Node": "planner"})
    assert text.startswith("[fake:up-o1]")
    text, _ = await _served(sc, "plan_group")
    assert text.startswith("[fake:up-b1]"), "without the header: the group's own fallback"


async def test_a_pool_rotates_over_its_instances(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    served = [(await _served(sc, "rot_pool"))[1]["x-echelon-served-by"] for _ in range(6)]
    assert sorted(served) == ["r1", "r1", "r2", "r2", "r3", "r3"]
    assert served[:3] == served[3:], "round robin repeats the same order"
    assert fake.stats()["by_model"] == {"up-r1": 2, "up-r2": 2, "up-r3": 2}


async def test_a_pool_takes_the_next_instance_when_one_fails(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-r2", "503")
    for _ in range(6):
        _, headers = await _served(sc, "rot_pool")
        assert headers["x-echelon-served-by"] in ("r1", "r3")
    by_model = fake.stats()["by_model"]
    assert by_model["up-r1"] + by_model["up-r3"] == 6
    assert by_model["up-r2"] >= 1
