"""A sidecar logs the global_fallback deprecation at WARNING once per config load: at start
and at each reload, never per request."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import HI, MakeSidecar, openai_model


def _config(fake: FakeProvider, attempts: int) -> dict[str, Any]:
    return {
        "task_groups": {"g": {"echelon1": {"models": ["a"]}}},
        "global_fallback": {"max_attempts": attempts},
        "models": {"a": openai_model(fake, "up-a")},
    }


def _deprecations(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "echelon.config"
            and r.levelno == logging.WARNING and "global_fallback is deprecated" in r.getMessage()]


async def test_sidecar_logs_the_global_fallback_deprecation_once_per_load_not_per_request(
        fake: FakeProvider, make_sidecar: MakeSidecar, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="echelon.config")
    sc = await make_sidecar(_config(fake, 3))
    assert len(_deprecations(caplog)) == 1
    for _ in range(3):
        await sc.openai.chat.completions.create(model="g", messages=HI)
    assert len(_deprecations(caplog)) == 1
    sc.rewrite(_config(fake, 2))
    assert await sc.sidecar.reload_now()
    assert len(_deprecations(caplog)) == 2
    assert str(sc.config_path) in _deprecations(caplog)[-1].getMessage()
