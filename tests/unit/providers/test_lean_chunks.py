"""The lean client's chunked stream parser, against any framing and any split of the bytes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echelon_sidecar.providers.lean_conn import Conn, _chunk_size
from echelon_sidecar.providers.lean_response import Body


class _Transport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _streaming_conn() -> tuple[Conn, Body]:
    conn = Conn()
    conn.transport = _Transport()  # type: ignore[assignment]
    body = conn._body = Body()
    conn._mode = "chunked"
    return conn, body


def _framed(payloads: list[bytes], extensions: list[bool]) -> bytes:
    out = bytearray()
    for data, ext in zip(payloads, extensions, strict=True):
        out += b"%x%s\r\n" % (len(data), b";name=value" if ext else b"") + data + b"\r\n"
    return bytes(out + b"0\r\n\r\n")


def _received(body: Body) -> list[bytes]:
    return list(body._chunks)


@settings(max_examples=300, deadline=None)
@given(payloads=st.lists(st.binary(min_size=1, max_size=40), min_size=0, max_size=8),
       data=st.data())
def test_any_framing_and_any_split_gives_back_the_payload_then_the_end(
        payloads: list[bytes], data: Any) -> None:
    extensions = data.draw(st.lists(st.booleans(), min_size=len(payloads),
                                    max_size=len(payloads)))
    wire = _framed(payloads, extensions)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(wire) - 1)), max_size=12)))
    conn, body = _streaming_conn()
    last = 0
    for cut in [*cuts, len(wire)]:
        conn.data_received(wire[last:cut])
        last = cut
    assert b"".join(_received(body)) == b"".join(payloads)
    assert conn.stream_done and body._eof and body._error is None


def test_what_one_read_brings_is_fed_as_one_piece() -> None:
    conn, body = _streaming_conn()
    conn.data_received(_framed([b"data: 1\n\n", b"data: 2\n\n"], [False, False])[:-5])
    assert _received(body) == [b"data: 1\n\ndata: 2\n\n"]
    assert not conn.stream_done


@pytest.mark.parametrize("wire", [
    b"5\r\nhelloXX",            # no CRLF after the chunk's data
    b"-5\r\nhello\r\n",         # a negative size
    b"zz\r\nhello\r\n",         # not hexadecimal
])
def test_malformed_framing_fails_the_body(wire: bytes) -> None:
    conn, body = _streaming_conn()
    conn.data_received(wire)
    assert body._error is not None and body._error.error_class == "malformed_response"
    assert conn.closed


def test_chunk_sizes_with_and_without_extensions() -> None:
    line = bytearray(b"1f;ext=1")
    assert _chunk_size(line, 0, len(line)) == 31
    assert _chunk_size(bytearray(b"A0"), 0, 2) == 160
