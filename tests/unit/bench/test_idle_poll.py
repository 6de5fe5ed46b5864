"""The harness's hold on idle CPUs: a 0 µs PM QoS request written once, dropped on release."""

from __future__ import annotations

import struct
from pathlib import Path

from bench.harness.machine import IdlePoll, cpu_idle


def test_holds_a_zero_request_and_pauses_and_releases_it(tmp_path: Path) -> None:
    qos = tmp_path / "cpu_dma_latency"
    qos.write_bytes(b"")
    idle = IdlePoll(qos)
    with idle:
        assert idle.held and idle.error is None
        assert qos.read_bytes() == struct.pack("i", 0)
        with idle.paused():
            assert not idle.held
        assert idle.held  # held again after the pause
    assert not idle.held


def test_a_pause_does_not_take_a_hold_that_was_never_there(tmp_path: Path) -> None:
    idle = IdlePoll(tmp_path / "cpu_dma_latency")
    (tmp_path / "cpu_dma_latency").write_bytes(b"")
    with idle.paused():
        pass
    assert not idle.held


def test_without_the_device_it_says_why_and_holds_nothing(tmp_path: Path) -> None:
    idle = IdlePoll(tmp_path / "missing" / "cpu_dma_latency")
    assert idle.hold() is False
    assert not idle.held
    assert idle.error is not None and "cpu_dma_latency" in idle.error
    idle.release()  # harmless


def test_cpu_idle_describes_what_the_machine_exposes() -> None:
    info = cpu_idle()
    assert set(info) >= {"driver", "governor", "states"}
    assert isinstance(info["states"], list)
