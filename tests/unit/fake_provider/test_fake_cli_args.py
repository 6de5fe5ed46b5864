"""`add_arguments` / `settings_from_args`: the options the `echelon` CLI mounts."""

from __future__ import annotations

import argparse

import pytest

from echelon_tools.fake_provider import Fault, FaultKind
from echelon_tools.fake_provider.cli import add_arguments, settings_from_args


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="echelon fake-provider")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_bind_loopback_on_an_os_chosen_port() -> None:
    settings = settings_from_args(parse())
    assert (settings.host, settings.port) == ("127.0.0.1", 0)
    assert settings.api_key is None and settings.faults == {}
    assert settings.stream_chunks == 5


def test_options_map_onto_settings() -> None:
    settings = settings_from_args(parse(
        "--api-key", "k", "--latency-ms", "25", "--stream-chunks", "3", "--chunk-delay-ms", "2",
        "--reply", "hi", "--seed", "9", "--models", "a, b",
        "--fault", "gpt-4=429:retry-after=2", "--fault", "*=rate:0.2:500"))
    assert settings.api_key == "k"
    assert (settings.latency_ms, settings.stream_chunks, settings.chunk_delay_ms) == (25, 3, 2)
    assert settings.reply == "hi" and settings.seed == 9
    assert settings.models == ("a", "b")
    assert settings.faults == {
        "gpt-4": Fault(FaultKind.STATUS, status=429, retry_after=2.0),
        "*": Fault(FaultKind.STATUS, status=500, rate=0.2),
    }


@pytest.mark.parametrize(
    "argv",
    [("--fault", "nomodel"), ("--fault", "m=cut:x"), ("--stream-chunks", "0"),
     ("--latency-ms", "-1")],
)
def test_bad_options_are_argparse_errors(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse(*argv)
    assert info.value.code == 2
    assert argv[0] in capsys.readouterr().err
