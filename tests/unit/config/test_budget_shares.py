"""Cluster-wide budgets shared by the pods of a pool: largest remainder, by pod name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echelon_sidecar.config import SidecarSettings, share


def test_five_over_three_sidecars_is_two_two_one() -> None:
    assert [share(5, 3, slot) for slot in range(3)] == [2, 2, 1]
    assert share(5, 3) == 1  # no slot: the floor


@given(budget=st.integers(1, 10_000), sidecars=st.integers(1, 300))
def test_the_slots_shares_sum_to_the_budget(budget: int, sidecars: int) -> None:
    shares = [share(budget, sidecars, slot) for slot in range(sidecars)]
    assert min(shares) >= 1
    assert max(shares) - min(shares) <= 1
    # every slot serves at least one request: below one per sidecar the sum is the count
    assert sum(shares) == max(budget, sidecars)
    assert share(budget, sidecars) <= min(shares)  # an unlisted sidecar never takes more


def test_the_slot_is_the_place_in_name_order(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = SidecarSettings(sidecars=3, pods=["web-7c9-x", "web-7c9-a", "web-7c9-m"])
    assert [settings.slot(p) for p in ("web-7c9-a", "web-7c9-m", "web-7c9-x")] == [0, 1, 2]
    assert settings.slot("web-other") is None
    monkeypatch.setenv("ECHELON_POD_NAME", "web-7c9-m")
    assert settings.slot() == 1
    monkeypatch.delenv("ECHELON_POD_NAME")
    assert settings.slot() is None
    assert SidecarSettings().slot("web-7c9-a") is None  # run alone
