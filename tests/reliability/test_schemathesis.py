"""schemathesis against the sidecar's own OpenAPI descriptions of its data and admin ports.

Valid and invalid requests (bounded: a few dozen per operation, deterministic) go to a sidecar
whose upstream is a healthy fake. Every answer matches the description (status code, content
type, headers, body schema), and nothing is a failure of the sidecar itself: no 500, and any
other 5xx is the documented JSON error of a routing outcome (e.g. a deadline the request set
too short), never an unhandled exception.

schemathesis is not a pinned dependency yet (pin: schemathesis==4.32.5, compatible with the
hypothesis and pytest pins); without it this one test is skipped with that reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from echelon_tools.fake_provider import FakeProvider

from ..integration.conftest import API_KEY_ENV, FAKE_API_KEY, openai_model
from .servers import ThreadedSidecar, threaded_sidecar

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed: add schemathesis==4.32.5 to the "
    "test extra (pyproject.toml) to run the OpenAPI fuzzing")

from schemathesis.specs.openapi import checks as openapi_checks  # noqa: E402

EXAMPLES = 25
ROUTING_CODES = {"fallback_chain_exhausted", "all_circuits_open", "no_instance_available",
                 "deadline_exceeded", "routing_error"}


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {"task_groups": {"g": {"echelon1": {"models": ["m"], "timeout": 10}},
                            "e": {"echelon1": {"models": ["emb"], "timeout": 10}}},
            "polling_pools": {"p": {"task_groups": ["g"]}},
            "workflow_nodes": {"n": {"llm_group": "g"}},
            "models": {"m": openai_model(fake, "up-m"),
                       "emb": openai_model(fake, "up-emb", embedding_dimensions=256)}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSidecar]:
    os.environ[API_KEY_ENV] = FAKE_API_KEY
    try:
        with threaded_sidecar(tmp_path_factory.mktemp("schemathesis"), _config,
                              FAKE_API_KEY) as running:
            yield running
    finally:
        os.environ.pop(API_KEY_ENV, None)


def no_failure_of_the_sidecar(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 500 (an unhandled exception); any other 5xx is a routing outcome in JSON."""
    status = response.status_code
    assert status != 500, f"the sidecar failed: {response.content[:300]!r}"
    if status >= 500:
        body = orjson.loads(response.content)
        error = body.get("error") or {}
        code = error.get("code") if body.get("type") != "error" else None
        assert body.get("type") == "error" or code in ROUTING_CODES, body
    return None


CHECKS = [openapi_checks.status_code_conformance, openapi_checks.content_type_conformance,
          openapi_checks.response_headers_conformance,
          openapi_checks.response_schema_conformance, no_failure_of_the_sidecar]


def _spec(base: str) -> Any:
    import requests

    return schemathesis.openapi.from_dict(requests.get(f"{base}/openapi.json", timeout=10).json())


def test_the_sidecar_answers_every_generated_request_as_its_openapi_description_says(
        served: ThreadedSidecar) -> None:
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    ran = 0
    for base in (served.data_url, served.admin_url):
        schema = _spec(base)
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in modes:
                _fuzz(operation, mode, base)
                ran += 1
    assert ran == 2 * (8 + 5)


def _fuzz(operation: Any, mode: Any, base: str) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=base, timeout=30)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # an operation with nothing to get wrong (no parameters, no body) has no invalid case
        if mode != schemathesis.GenerationMode.NEGATIVE:
            raise


def test_the_generated_traffic_left_the_sidecar_serving(served: ThreadedSidecar) -> None:
    import requests

    body: dict[str, Any] = {"model": "g", "messages": [{"role": "user", "content": "still there?"}]}
    reply = requests.post(f"{served.data_url}/v1/chat/completions", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    status = requests.get(f"{served.admin_url}/v1/status", timeout=10).json()
    assert all(i["state"] == "closed" for i in status["instances"])
