"""Where a passthrough stream's end marker event ends: the fast search agrees with the plain
regex definition on any bytes."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from echelon_sidecar.server.relay import _end_marker_boundary

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r|\r\n\n|\n\r\n")
_DEFINITION = {
    "openai": re.compile(rb"(?:^|[\r\n])data: ?\[DONE\]"),
    "anthropic": re.compile(rb"(?:^|[\r\n])event: ?message_stop"),
}


def by_definition(buf: bytes, upstream: str) -> int:
    found = _DEFINITION[upstream].search(buf)
    if found is None:
        return 0
    boundary = _BOUNDARY.search(buf, found.end())
    return boundary.end() if boundary is not None else len(buf)


PIECES = [b"data: ", b"data:", b"[DONE]", b"event: ", b"event:", b"message_stop", b"\n",
          b"\r", b"\r\n", b"\n\n", b'{"x":1}', b"x", b" ", b"[DON", b"E]", b"data"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30), st.sampled_from(["openai", "anthropic"]))
def test_agrees_with_the_regex_definition(pieces: list[bytes], upstream: str) -> None:
    buf = b"".join(pieces)
    assert _end_marker_boundary(buf, upstream) == by_definition(buf, upstream)


def test_the_usual_ends() -> None:
    stream = b'data: {"a":1}\n\ndata: [DONE]\n\ndata: {"late":1}\n\n'
    assert _end_marker_boundary(stream, "openai") == stream.index(b"data: {\"late")
    assert _end_marker_boundary(b"data: [DONE]", "openai") == len(b"data: [DONE]")
    assert _end_marker_boundary(b'data: {"text":"[DONE]"}\n\n', "openai") == 0
    events = b"event: message_delta\ndata: {}\n\nevent: message_stop\ndata: {}\n\n"
    assert _end_marker_boundary(events, "anthropic") == len(events)
    assert _end_marker_boundary(events, "gemini") == 0
