"""Hot reload: valid configs take effect under load without losing a request; invalid ones are
refused while the old config keeps serving; the ConfigMap ``..data`` symlink swap is seen."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import (
    HI,
    MakeSidecar,
    RunningSidecar,
    eventually,
    metric,
    openai_model,
    write_config,
)


def _config(fake: FakeProvider, second: str = "b", rpm: int = 1000) -> dict[str, Any]:
    return {
        "task_groups": {
            "g": {
                "echelon1": {"models": ["a"], "priority": 1, "rpm_limit": rpm},
                "echelon2": {"models": [second], "priority": 2},
                "fallback_config": {"circuit_breaker": {"failure_threshold": 1,
                                                        "recovery_time": 600}},
            },
            "other": {"echelon1": {"models": ["broken"]},
                      "fallback_config": {"circuit_breaker": {"failure_threshold": 1,
                                                              "recovery_time": 600}}},
        },
        "models": {name: openai_model(fake, f"up-{name}") for name in ("a", "b", "c", "broken")},
    }


async def _version_changes(sc: RunningSidecar, old: str) -> None:
    async def changed() -> bool:
        return (await sc.status())["config_version"] != old

    await eventually(changed, within=10, what="the new config to be loaded")


async def test_valid_reloads_under_load_lose_no_request_and_keep_breaker_state(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake), reload_interval=0.05)
    fake.set_fault("up-broken", "503")
    with pytest.raises(openai.APIStatusError):
        await sc.openai.chat.completions.create(model="other", messages=HI)
    fake.clear_faults()
    fake.configure(latency_ms=30)
    stop = asyncio.Event()
    served: list[str] = []
    errors: list[BaseException] = []

    async def worker() -> None:
        while not stop.is_set():
            try:
                raw = await sc.openai.chat.completions.with_raw_response.create(
                    model="g", messages=HI)
                served.append(raw.headers["x-echelon-served-by"])
            except Exception as exc:
                errors.append(exc)

    workers = [asyncio.create_task(worker()) for _ in range(6)]
    try:
        version = (await sc.status())["config_version"]
        for rpm in (900, 800, 700, 600, 500):
            sc.rewrite(_config(fake, rpm=rpm))
            await _version_changes(sc, version)
            version = (await sc.status())["config_version"]
            count = len(served)
            await eventually(lambda c=count: len(served) >= c + 6, what="requests to go on")
    finally:
        stop.set()
        await asyncio.gather(*workers)
    assert errors == []
    assert len(served) >= 30 and set(served) == {"a"}
    status = await sc.status()
    assert status["reload"]["reloads"] == 5 and status["reload"]["failures"] == 0
    (broken,) = [i for i in status["instances"] if i["model"] == "broken"]
    assert broken["state"] == "open", "breaker state of an unchanged instance survives reloads"
    text = await sc.metrics()
    assert metric(text, "echelon_config_reloads_total", result="success") == 6  # start + 5
    assert metric(text, "echelon_config_info", version=status["config_version"]) == 1
    assert fake.stats()["by_model"].get("up-broken") == 1


async def test_an_invalid_config_is_refused_and_the_old_one_keeps_serving(
    fake: FakeProvider, make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="echelon.sidecar")
    sc = await make_sidecar(_config(fake), reload_interval=0.05)
    version = (await sc.status())["config_version"]
    broken = _config(fake)
    broken["task_groups"]["g"]["echelon1"]["rpm_limit"] = -5
    sc.rewrite(broken)

    async def refused() -> bool:
        return (await sc.status())["reload"]["failures"] == 1

    await eventually(refused, within=10, what="the invalid config to be refused")
    status = await sc.status()
    assert status["config_version"] == version
    assert status["ready"] is True
    error = status["reload"]["last_error"]
    assert "rpm_limit" in error and str(sc.config_path) in error
    text = await sc.metrics()
    assert metric(text, "echelon_config_reloads_total", result="failure") == 1
    assert metric(text, "echelon_config_last_reload_ok") == 0
    refusals = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("previous config keeps serving" in r.getMessage() and "rpm_limit" in
               r.getMessage() for r in refusals)
    raw = await sc.openai.chat.completions.with_raw_response.create(model="g", messages=HI)
    assert raw.headers["x-echelon-served-by"] == "a"
    async with sc.http.get(f"{sc.admin_url}/readyz") as resp:
        assert resp.status == 200
    sc.rewrite("task_groups: [this is: not yaml")
    await eventually(lambda: _failures(sc, 2), within=10, what="the broken YAML to be refused")
    sc.rewrite(_config(fake, second="c"))
    await _version_changes(sc, version)
    status = await sc.status()
    assert status["reload"]["last_error"] is None
    assert status["reload"]["failures"] == 2
    assert metric(await sc.metrics(), "echelon_config_last_reload_ok") == 1


async def _failures(sc: RunningSidecar, count: int) -> bool:
    return int((await sc.status())["reload"]["failures"]) == count


def _configmap_volume(root: Path, generation: str, config: dict[str, Any]) -> None:
    """Write ``config`` as a ConfigMap volume does: a new timestamped folder, then an atomic
    swap of the ``..data`` symlink; ``echelon.yaml`` is a symlink through ``..data``."""
    folder = root / f"..{generation}"
    folder.mkdir()
    write_config(folder / "echelon.yaml", config)
    tmp = root / "..data_tmp"
    os.symlink(folder.name, tmp)
    os.replace(tmp, root / "..data")
    link = root / "echelon.yaml"
    if not link.is_symlink():
        os.symlink("..data/echelon.yaml", link)


async def test_a_configmap_style_symlink_swap_is_picked_up(
    fake: FakeProvider, make_sidecar: MakeSidecar, tmp_path: Path
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    _configmap_volume(volume, "2026_01_01_00_00_00.1", _config(fake, second="b"))
    sc = await make_sidecar({}, config_path=volume, reload_interval=0.05)
    fake.set_fault("up-a", "503")
    raw = await sc.openai.chat.completions.with_raw_response.create(model="g.echelon2",
                                                                   messages=HI)
    assert raw.headers["x-echelon-served-by"] == "b"
    version = (await sc.status())["config_version"]
    _configmap_volume(volume, "2026_01_01_00_01_00.2", _config(fake, second="c"))
    await _version_changes(sc, version)
    raw = await sc.openai.chat.completions.with_raw_response.create(model="g.echelon2",
                                                                   messages=HI)
    assert raw.headers["x-echelon-served-by"] == "c"
    assert (await sc.status())["reload"]["reloads"] == 1
