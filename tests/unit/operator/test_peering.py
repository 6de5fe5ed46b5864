"""Peering: kopf's active-peer rule, and the peering objects created at start-up."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

from echelon_operator.kube import KubeError
from echelon_operator.peering import PeeringError, PeeringIdentity, ensure_peering, is_active
from echelon_operator.settings import OperatorSettings

NOW = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.UTC)


def peer(priority: int, seen_ago: float = 1, lifetime: int = 60) -> dict[str, Any]:
    seen = NOW - datetime.timedelta(seconds=seen_ago)
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen.isoformat()}


@pytest.mark.parametrize(("others", "active"), [
    ({}, True),
    ({"b": peer(50)}, True),                       # a lower priority: we lead
    ({"b": peer(200)}, False),                     # a higher one: we stand by
    ({"b": peer(100)}, False),                     # a tie pauses both, as kopf does
    ({"b": peer(200, seen_ago=61)}, True),         # a dead peer does not count
    ({"b": peer(200, lifetime=0)}, True),          # a peer that left (lifetime 0)
    ({"b": {"priority": 200}}, True),              # no lastseen: not a live peer
])
def test_the_active_peer_is_the_live_one_with_the_highest_priority(
    others: dict[str, Any], active: bool
) -> None:
    status = {"me": peer(100), **others}
    assert is_active(status, "me", 100, now=NOW) is active


def test_a_random_priority_by_default_and_a_given_one_kept() -> None:
    assert PeeringIdentity(7).priority == 7
    assert 1 <= PeeringIdentity().priority <= 32767
    assert PeeringIdentity().id != PeeringIdentity().id


class FakeKube:
    def __init__(self, status: int | None) -> None:
        self.status = status
        self.created: list[tuple[str, str | None]] = []

    async def create_object(self, group: str, version: str, plural: str, body: Any,
                            namespace: str | None = None) -> dict[str, Any]:
        if self.status is not None:
            raise KubeError(self.status, f"HTTP {self.status}")
        self.created.append((plural, namespace))
        return dict(body)


def test_the_peering_objects_are_created_in_each_watched_namespace() -> None:
    kube = FakeKube(None)
    settings = OperatorSettings(namespaces=("a", "b"), peering="echelon")
    asyncio.run(ensure_peering(kube, settings))  # type: ignore[arg-type]
    assert kube.created == [("kopfpeerings", "a"), ("kopfpeerings", "b")]
    kube = FakeKube(None)
    asyncio.run(ensure_peering(kube, OperatorSettings(all_namespaces=True,  # type: ignore[arg-type]
                                                      peering="echelon")))
    assert kube.created == [("clusterkopfpeerings", None)]


def test_an_existing_peering_object_is_fine() -> None:
    asyncio.run(ensure_peering(FakeKube(409),  # type: ignore[arg-type]
                               OperatorSettings(namespaces=("a",), peering="echelon")))


@pytest.mark.parametrize(("status", "needles"), [
    (404, ["no KopfPeering resource", "kubectl apply -f crds/peering/", "--standalone"]),
    (403, ["not allowed to create KopfPeering echelon in namespace a", "RBAC"]),
    (500, ["could not create KopfPeering echelon"]),
])
def test_missing_crds_or_rights_stop_the_operator_with_what_to_do(
    status: int, needles: list[str]
) -> None:
    with pytest.raises(PeeringError) as info:
        asyncio.run(ensure_peering(FakeKube(status),  # type: ignore[arg-type]
                                   OperatorSettings(namespaces=("a",), peering="echelon")))
    for needle in needles:
        assert needle in str(info.value)
