"""The sidecar poller under kopf peering: a standby neither polls nor writes, and a standby
that takes over forgets the statuses it remembered and waits one round before polling."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from echelon_operator import poller


def test_a_standby_that_takes_over_forgets_its_statuses_and_polls_a_round_later(
        monkeypatch: pytest.MonkeyPatch) -> None:
    leading = [True, False, False, True, True]  # active, standby twice, takes over, active
    events: list[tuple[str, Any]] = []
    rt = SimpleNamespace(kube=object(), settings=SimpleNamespace(poll_interval=0.0),
                         status={"uid-1": "written before the standby period"},
                         poll_errors=0)

    async def leads(kube: object, settings: object) -> bool:
        if not leading:
            raise asyncio.CancelledError
        value = leading.pop(0)
        events.append(("leads", value))
        return value

    async def poll_once(runtime: Any) -> None:
        events.append(("poll", dict(runtime.status)))

    monkeypatch.setattr(poller, "leads", leads)
    monkeypatch.setattr(poller, "poll_once", poll_once)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(poller.poll_forever(rt))  # type: ignore[arg-type]

    assert events == [
        ("leads", True), ("poll", {"uid-1": "written before the standby period"}),
        ("leads", False),  # standby: nothing polled, nothing written
        ("leads", False),
        ("leads", True),  # takeover: the remembered statuses go, no poll this round
        ("leads", True), ("poll", {}),  # polled from what the objects say now
    ]
    assert rt.poll_errors == 0


def test_a_failed_leadership_check_counts_as_an_error_and_the_loop_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[Any] = [RuntimeError("API server away"), True]
    polled: list[int] = []
    rt = SimpleNamespace(kube=object(), settings=SimpleNamespace(poll_interval=0.0),
                         status={}, poll_errors=0)

    async def leads(kube: object, settings: object) -> bool:
        if not answers:
            raise asyncio.CancelledError
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return bool(answer)

    async def poll_once(runtime: Any) -> None:
        polled.append(1)

    monkeypatch.setattr(poller, "leads", leads)
    monkeypatch.setattr(poller, "poll_once", poll_once)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(poller.poll_forever(rt))  # type: ignore[arg-type]
    assert rt.poll_errors == 1 and polled == [1]
