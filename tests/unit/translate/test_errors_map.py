from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.types.shared import ErrorResponse
from openai.types.shared import ErrorObject

from echelon_sidecar.translate import (
    InvalidRequest,
    TranslationError,
    UnsupportedFeature,
    anthropic_error_to_openai,
    openai_error_to_anthropic,
    upstream_error_to_openai,
)

from .helpers import load_json

CASES = load_json("error_bodies.json")


def _message(body: Any) -> str:
    inner = body[0] if isinstance(body, list) else body
    return inner["error"]["message"] if isinstance(inner.get("error"), dict) else inner["message"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['provider']}-{c['status']}")
def test_recorded_provider_errors_keep_their_message_in_the_openai_shape(
    case: dict[str, Any],
) -> None:
    out = upstream_error_to_openai(case["provider"], case["status"], orjson.dumps(case["body"]))
    ErrorObject.model_validate(out["error"])
    assert set(out["error"]) == {"message", "type", "param", "code"}
    assert out["error"]["message"] == _message(case["body"])
    for key, value in case["expect"].items():
        assert out["error"][key] == value


@pytest.mark.parametrize(("body", "status", "needle"), [
    (b"<html><body><h1>502 Bad Gateway</h1></body></html>", 502, "502 Bad Gateway"),
    (b"", 504, "HTTP 504"),
    (b"upstream connect error or disconnect/reset before headers", 503, "upstream connect error"),
    (b'{"detail": "Not Found"}', 404, "Not Found"),
    (b'{"error": "model not loaded"}', 503, "model not loaded"),
    (b"\xff\xfe garbage", 500, "garbage"),
])
def test_non_json_and_odd_bodies_still_give_a_message(
    body: bytes, status: int, needle: str
) -> None:
    out = upstream_error_to_openai("openai", status, body)
    ErrorObject.model_validate(out["error"])
    assert needle in out["error"]["message"]
    assert out["error"]["type"] == ("server_error" if status in (500, 502, 503)
                                    else "timeout_error" if status == 504 else "not_found_error")


@pytest.mark.parametrize(
    ("status", "type_"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
        (418, "invalid_request_error"),
    ],
)
def test_openai_errors_become_anthropic_errors_typed_by_status(status: int, type_: str) -> None:
    err = {"error": {"message": "boom", "type": "x", "param": None, "code": None}}
    out = openai_error_to_anthropic(err, status)
    assert out == {"type": "error", "error": {"type": type_, "message": "boom"}}
    if type_ != "request_too_large":  # documented by Anthropic, not in the SDK's union yet
        ErrorResponse.model_validate(out)


def test_openai_error_to_anthropic_tolerates_odd_shapes() -> None:
    assert openai_error_to_anthropic({"error": "plain"}, 400)["error"]["message"] == "plain"
    assert "HTTP 500" in openai_error_to_anthropic({}, 500)["error"]["message"]


def test_anthropic_stream_error_event_becomes_an_openai_error() -> None:
    out = anthropic_error_to_openai({"type": "error", "error": {"type": "overloaded_error",
                                                                "message": "Overloaded"}})
    assert out == {"error": {"message": "Overloaded", "type": "overloaded_error", "param": None,
                             "code": "overloaded_error"}}


def test_translation_errors_say_what_and_where() -> None:
    err = UnsupportedFeature("n", "anthropic", "one completion per request")
    assert isinstance(err, TranslationError)
    assert (err.feature, err.provider) == ("n", "anthropic")
    assert err.reason == "anthropic cannot serve this request: n: one completion per request"
    bad = InvalidRequest("messages[2].content", "must be a string")
    assert bad.field_path == "messages[2].content"
    assert str(bad) == "messages[2].content: must be a string"
