"""Flags that cannot mean anything are refused by name, before anything starts."""

from __future__ import annotations

import pytest

from echelon_operator.cli import main as echelon_main
from echelon_sidecar.cli import main as sidecar_main


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "99999"], "argument --port: '99999' is not a TCP port"),
    (["--admin-port", "-1"], "argument --admin-port: '-1' is not a TCP port"),
    (["--port", "http"], "argument --port: 'http' is not a TCP port"),
    (["--drain-timeout", "-1"], "argument --drain-timeout: '-1': expected a number >= 0"),
    (["--request-timeout", "0"], "argument --request-timeout: '0': expected a number > 0"),
    (["--request-timeout", "nan"], "argument --request-timeout: 'nan': expected a finite"),
    (["--max-body-bytes", "0"], "argument --max-body-bytes: '0': expected an integer > 0"),
])
def test_the_sidecar_refuses_impossible_flags(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        sidecar_main(["--config", "configs/llms", *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "70000"], "argument --port: '70000' is not a TCP port"),
    (["--latency-ms", "-5"], "argument --latency-ms: '-5': expected a number >= 0"),
    (["--stream-chunks", "0"], "argument --stream-chunks: '0': expected an integer > 0"),
    (["--record-requests", "-1"], "argument --record-requests: '-1': expected an integer >= 0"),
])
def test_the_fake_provider_refuses_impossible_flags(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        echelon_main(["fake-provider", *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
