"""Which errors fall back, which count, which mark broken, which return at once."""

from __future__ import annotations

import pytest

from echelon_sidecar.engine import Disposition, UpstreamError, class_of_status, disposition_of
from echelon_sidecar.engine.classify import short_message


@pytest.mark.parametrize(
    ("status", "error_class", "disposition"),
    [
        (None, "connect_error", Disposition.FALLBACK),
        (None, "timeout", Disposition.FALLBACK),
        (408, "request_timeout", Disposition.FALLBACK),
        (409, "conflict", Disposition.FALLBACK),
        (429, "rate_limited", Disposition.FALLBACK),
        (500, "server_error", Disposition.FALLBACK),
        (503, "server_error", Disposition.FALLBACK),
        (529, "overloaded", Disposition.FALLBACK),
        (401, "unauthorized", Disposition.BROKEN),
        (403, "forbidden", Disposition.BROKEN),
        (400, "bad_request", Disposition.REJECT),
        (404, "not_found", Disposition.REJECT),
        (422, "unprocessable", Disposition.REJECT),
        (413, "client_error", Disposition.FALLBACK_FREE),
    ],
)
def test_each_error_class_has_its_disposition(
    status: int | None, error_class: str, disposition: Disposition
) -> None:
    err = UpstreamError(status, None if status is not None else error_class)
    assert err.error_class == error_class
    assert disposition_of(err.status, err.error_class) is disposition


def test_status_decides_over_a_given_class() -> None:
    assert disposition_of(400, "server_error") is Disposition.REJECT
    assert class_of_status(302) == "unexpected_status"


def test_messages_are_short_and_carry_no_credentials() -> None:
    text = short_message("auth failed for Bearer sk-abcdef1234567890 api_key=hunter2 " + "x" * 500)
    assert "sk-abcdef" not in text and "hunter2" not in text
    assert len(text) <= 200
    assert "\n" not in short_message("a\nb")
