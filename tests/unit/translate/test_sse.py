from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from echelon_sidecar.translate import (
    OPENAI_DONE,
    SSEDecoder,
    SSEEvent,
    encode_anthropic_event,
    encode_openai_chunk,
    encode_sse,
)

from .helpers import PAYLOADS


def decode_all(data: bytes, cuts: list[int] | None = None) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    start = 0
    for cut in sorted(cuts or []):
        events += decoder.feed(data[start:cut])
        start = cut
    events += decoder.feed(data[start:])
    return events + decoder.flush()


def test_data_lines_of_one_event_are_joined_with_newlines() -> None:
    assert decode_all(b"data: a\ndata: b\n\n") == [SSEEvent(None, "a\nb")]


def test_event_name_applies_to_its_event_only() -> None:
    events = decode_all(b"event: ping\ndata: {}\n\ndata: x\n\n")
    assert events == [SSEEvent("ping", "{}"), SSEEvent(None, "x")]


def test_crlf_and_lone_cr_terminate_lines() -> None:
    assert decode_all(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n") == [
        SSEEvent(None, "a"), SSEEvent(None, "b"), SSEEvent(None, "c")]


def test_comments_id_retry_and_unknown_fields_are_ignored() -> None:
    stream = b": keep-alive\nid: 7\nretry: 100\nfoo: bar\ndata: x\n\n:only a comment\n\n"
    assert decode_all(stream) == [SSEEvent(None, "x")]


def test_only_one_space_after_the_colon_is_removed_and_a_bare_field_is_empty() -> None:
    assert decode_all(b"data:  two\ndata\ndata:none\n\n") == [SSEEvent(None, " two\n\nnone")]


def test_event_without_data_is_not_dispatched() -> None:
    assert decode_all(b"event: lonely\n\n") == []


def test_leading_byte_order_mark_is_skipped_even_when_split() -> None:
    assert decode_all(b"\xef\xbb\xbfdata: x\n\n", cuts=[1, 2]) == [SSEEvent(None, "x")]


def test_crlf_split_between_chunks_is_one_line_break() -> None:
    assert decode_all(b"data: a\r\n\r\ndata: b\r\n\r\n", cuts=[8, 9]) == [
        SSEEvent(None, "a"), SSEEvent(None, "b")]


def test_multibyte_character_split_between_chunks_survives() -> None:
    data = "data: 21 °C ✓\n\n".encode()
    assert decode_all(data, cuts=[10, 15]) == [SSEEvent(None, "21 °C ✓")]


def test_flush_dispatches_an_event_whose_blank_line_never_came() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    assert decoder.flush() == [SSEEvent(None, "tail")]
    assert decoder.flush() == []


def test_recorded_gemini_stream_with_crlf_decodes_to_json_chunks() -> None:
    events = decode_all((PAYLOADS / "gemini_stream_function_call.sse").read_bytes())
    assert len(events) == 4
    assert all(e.event is None for e in events)
    assert events[-1].json()["candidates"][0]["finishReason"] == "STOP"


def test_recorded_openai_stream_ends_with_done() -> None:
    events = decode_all((PAYLOADS / "openai_stream_tool_calls.sse").read_bytes())
    assert events[-1] == SSEEvent(None, "[DONE]")


def test_encoders_write_the_wire_format() -> None:
    assert encode_openai_chunk({"a": 1}) == b'data: {"a":1}\n\n'
    assert (
        encode_anthropic_event("ping", {"type": "ping"})
        == b'event: ping\ndata: {"type":"ping"}\n\n'
    )
    assert encode_sse(b"{}", "x") == b"event: x\ndata: {}\n\n"
    assert OPENAI_DONE == b"data: [DONE]\n\n"


_payload = st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3)
_event = st.tuples(st.one_of(st.none(), st.sampled_from(["message_start", "content_block_delta"])),
                   _payload)


@settings(max_examples=200, deadline=None)
@given(events=st.lists(_event, max_size=6), cuts=st.lists(st.integers(0, 2000), max_size=12),
       newline=st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_any_split_of_an_encoded_stream_gives_back_the_same_events(
    events: list[tuple[str | None, dict[str, str]]], cuts: list[int], newline: bytes
) -> None:
    wire = b"".join(
        encode_sse(orjson.dumps(data), name).replace(b"\n", newline) for name, data in events)
    decoded = decode_all(wire, [c for c in cuts if c <= len(wire)])
    assert [(e.event, e.json()) for e in decoded] == events


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, 6000), max_size=30))
def test_any_split_of_a_recorded_anthropic_stream_gives_the_same_events(cuts: list[int]) -> None:
    wire = (PAYLOADS / "anthropic_stream_tool_use.sse").read_bytes()
    assert decode_all(wire, [c for c in cuts if c <= len(wire)]) == decode_all(wire)
