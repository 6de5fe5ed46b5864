"""Token budgets through the real sidecar: what the upstream serves per minute stays within
the tier's ``tpm_limit``; the rest spills to the next tier.

The sidecar reserves its estimate before each call and settles it with the usage the
upstream reports, so sequential calls overshoot by at most the underestimate of the call
admitted last (docs/routing.md, *Token budgets*).
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import MakeSidecar, openai_model

PROMPT = [{"role": "user", "content": "please summarise the quarterly report for the team"}]
BUDGET = 120


def _config(fake: FakeProvider, **limits: Any) -> dict[str, Any]:
    return {
        "task_groups": {"g": {
            "echelon1": {"models": ["a"], "priority": 1, **limits},
            "echelon2": {"models": ["b"], "priority": 2},
        }},
        "models": {name: openai_model(fake, f"up-{name}") for name in ("a", "b")},
    }


async def test_tokens_served_per_minute_by_a_tier_stay_within_its_tpm_limit(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake, tpm_limit=BUDGET))
    served_by: dict[str, int] = {"a": 0, "b": 0}
    tokens_a = 0
    for _ in range(20):  # well past the budget, all within the same minute
        raw = await sc.openai.chat.completions.with_raw_response.create(
            model="g", messages=PROMPT, max_tokens=40)  # type: ignore[arg-type]
        completion = raw.parse()
        who = raw.headers["x-echelon-served-by"]
        served_by[who] += 1
        if who == "a":
            assert completion.usage is not None
            tokens_a += completion.usage.total_tokens
    assert served_by["a"] >= 2 and served_by["b"] >= 1  # the budget was reached, then spilled
    # tolerance: one call's underestimate (input estimate + max_tokens vs reported usage)
    assert tokens_a <= BUDGET + 40
    requests_a = fake.stats()["by_model"]["up-a"]
    assert requests_a == served_by["a"]  # spilled requests never reached `a`
    status = await sc.status()
    (limit,) = [item for item in status["limits"] if item["kind"] == "tokens"]
    assert limit["used"] == tokens_a  # settled with the reported usage


async def test_a_request_larger_than_every_budget_is_refused_with_a_429(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    config = _config(fake, tpm_limit=50)
    config["task_groups"]["g"]["echelon2"]["tpm_limit"] = 50
    sc = await make_sidecar(config)
    with pytest.raises(openai.RateLimitError) as info:
        await sc.openai.chat.completions.create(model="g", messages=PROMPT, max_tokens=500)  # type: ignore[arg-type]
    body = info.value.response.json()["error"]
    assert body["code"] == "echelon_limit"
    assert [a["reason"] for a in body["attempts"]] == ["rate_limited", "rate_limited"]
    assert fake.stats()["total"] == 0
