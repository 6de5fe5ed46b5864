"""The `--fault MODEL=SPEC` grammar, its JSON form, and the rule book that applies it."""

from __future__ import annotations

import random

import pytest

from echelon_tools.fake_provider import (
    Fault,
    FaultBook,
    FaultKind,
    FaultSpecError,
    parse_fault,
    parse_fault_arg,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("503", Fault(FaultKind.STATUS, status=503)),
        ("429:retry-after=2", Fault(FaultKind.STATUS, status=429, retry_after=2.0)),
        ("rate:0.2:500", Fault(FaultKind.STATUS, status=500, rate=0.2)),
        ("first:3:529", Fault(FaultKind.STATUS, status=529, first=3)),
        ("rate:0.5:first:2:502", Fault(FaultKind.STATUS, status=502, rate=0.5, first=2)),
        ("latency:2000", Fault(FaultKind.LATENCY, latency_ms=2000.0)),
        ("cut:3", Fault(FaultKind.CUT, after_chunks=3)),
        ("hang", Fault(FaultKind.HANG)),
        ("hang:headers", Fault(FaultKind.HANG_BODY)),
        ("reset", Fault(FaultKind.RESET)),
        ("malformed", Fault(FaultKind.MALFORMED)),
        ("html", Fault(FaultKind.HTML)),
        ("wrong-content-type", Fault(FaultKind.HTML)),
        ("oversize:2", Fault(FaultKind.OVERSIZE, megabytes=2.0)),
        ("ok", Fault(FaultKind.OK)),
        ("503:latency=150", Fault(FaultKind.STATUS, status=503, latency_ms=150.0)),
        ("400:message=bad: very bad", Fault(FaultKind.STATUS, status=400, message="bad: very bad")),
    ],
)
def test_spec_parses_into_the_documented_fault(spec: str, expected: Fault) -> None:
    assert parse_fault(spec) == expected


@pytest.mark.parametrize(
    "spec",
    ["503", "429:retry-after=2", "rate:0.2:500", "first:3:529:retry-after=1", "latency:2000",
     "cut:0", "hang", "hang:headers", "reset", "malformed", "html", "oversize:0.5", "ok",
     "rate:0.25:first:4:503:latency=10:message=x:y"],
)
def test_canonical_spec_round_trips(spec: str) -> None:
    fault = parse_fault(spec)
    assert parse_fault(fault.spec()) == fault
    assert Fault.from_json(fault.to_json()) == fault


def test_fault_arg_splits_model_from_spec_at_the_first_equals() -> None:
    assert parse_fault_arg("gpt-4=429:retry-after=2") == (
        "gpt-4", Fault(FaultKind.STATUS, status=429, retry_after=2.0))
    assert parse_fault_arg("*=rate:0.2:500")[0] == "*"


@pytest.mark.parametrize(
    ("arg", "needle"),
    [
        ("gpt-4", "expected MODEL=SPEC"),
        ("=503", "expected MODEL=SPEC"),
        ("m=", "empty fault spec"),
        ("m=teapot", "unknown fault 'teapot'"),
        ("m=99", "400-599"),
        ("m=700", "400-599"),
        ("m=cut", "expected cut:N"),
        ("m=cut:x", "cut must be an integer"),
        ("m=latency:-5", "latency must be >= 0"),
        ("m=oversize:0", "megabytes > 0"),
        ("m=rate:2:500", "rate must be between 0 and 1"),
        ("m=rate:0.5", "needs a fault after it"),
        ("m=503:colour=red", "unknown option 'colour'"),
        ("m=hang:forever", "expected hang"),
    ],
)
def test_bad_spec_names_the_argument_and_what_is_wrong(arg: str, needle: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_fault_arg(arg)
    message = str(info.value)
    assert needle in message
    assert repr(arg) in message


def test_fault_from_json_accepts_objects_and_rejects_unknown_fields() -> None:
    assert Fault.from_json({"kind": "status", "status": 503, "retry_after": 1}) == Fault(
        FaultKind.STATUS, status=503, retry_after=1.0)
    assert Fault.from_json({"spec": "500", "rate": 0.5}) == Fault(
        FaultKind.STATUS, status=500, rate=0.5)
    with pytest.raises(FaultSpecError, match="unknown fault field 'colour'"):
        Fault.from_json({"kind": "status", "status": 500, "colour": "red"})
    with pytest.raises(FaultSpecError, match="unknown fault kind"):
        Fault.from_json({"kind": "explode"})
    with pytest.raises(FaultSpecError, match="status code 400-599"):
        Fault.from_json({"kind": "status"})


def test_model_rule_wins_over_wildcard_and_ok_exempts_a_model() -> None:
    book = FaultBook()
    book.set("*", parse_fault("503"))
    book.set("gpt-4", parse_fault("429"))
    book.set("healthy", parse_fault("ok"))
    assert book.pick("gpt-4") == parse_fault("429")
    assert book.pick("anything") == parse_fault("503")
    assert book.pick("healthy") is None


def test_first_k_fails_k_requests_then_succeeds_until_reseeded() -> None:
    book = FaultBook()
    book.set("m", parse_fault("first:2:503"))
    assert [book.pick("m") is not None for _ in range(4)] == [True, True, False, False]
    book.reseed()
    assert book.pick("m") is not None


def test_rate_draws_from_the_seeded_rng_so_runs_repeat() -> None:
    book = FaultBook(seed=42)
    book.set("*", parse_fault("rate:0.3:500"))
    got = [book.pick("m") is not None for _ in range(200)]
    rng = random.Random(42)
    assert got == [rng.random() < 0.3 for _ in range(200)]
    assert 30 < sum(got) < 90
    book.reseed()
    assert [book.pick("m") is not None for _ in range(200)] == got


def test_rate_zero_never_fires_and_rate_one_always_fires() -> None:
    book = FaultBook(seed=1)
    book.set("never", parse_fault("rate:0:500"))
    book.set("always", parse_fault("rate:1:500"))
    assert not any(book.pick("never") for _ in range(50))
    assert all(book.pick("always") for _ in range(50))


def test_removing_a_rule_stops_the_fault() -> None:
    book = FaultBook()
    book.set("m", parse_fault("503"))
    assert book.remove("m")
    assert book.pick("m") is None
    assert not book.remove("m")
