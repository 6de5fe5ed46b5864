"""Fault rules: the `--fault MODEL=SPEC` grammar, its JSON form, and the per-model rule book.

Grammar (also printed by `echelon fake-provider --help`)::

    --fault MODEL=SPEC        repeatable; MODEL is the request's model name
                              (the `model` field, or the path model for Gemini),
                              or `*` for every model without a rule of its own
    SPEC    := [rate:P:][first:K:]FAULT[:OPTION...]
    FAULT   := CODE           answer HTTP CODE (400-599) in the provider's error shape
             | latency:MS     wait MS milliseconds, then answer normally
             | hang           accept the request and never answer
             | hang:headers   send 200 headers, then stall the body forever
             | cut:N          streams: close after N events, without the terminator;
                              non-streams: close half-way through the body
             | malformed      200 with a body that is not valid JSON
             | html           200 with Content-Type text/html (a proxy's error page)
             | oversize:MB    200 with a reply of MB megabytes
             | reset          close the connection abruptly (TCP RST), no response
             | ok             no fault (exempts a model from a `*` rule)
    OPTION  := retry-after=SECONDS   (status faults) Retry-After header
             | latency=MS            wait before the fault acts
             | message=TEXT          (status faults) the error message; must come last
    rate:P    apply the fault with probability P (0..1), drawn from the seeded RNG
    first:K   apply the fault to the first K matching requests, then succeed

Examples: ``gpt-4=503``, ``gpt-4=429:retry-after=2``, ``*=rate:0.2:500``,
``slow-model=latency:2000``, ``m=first:3:529``, ``m=cut:3``, ``m=hang:headers``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

__all__ = ["Fault", "FaultBook", "FaultKind", "FaultSpecError", "parse_fault", "parse_fault_arg"]

ALL_MODELS = "*"


class FaultSpecError(ValueError):
    """A fault spec (CLI `--fault` or `POST /_fake/faults`) that cannot be understood."""


class FaultKind(StrEnum):
    STATUS = "status"
    LATENCY = "latency"
    HANG = "hang"
    HANG_BODY = "hang-body"
    CUT = "cut"
    MALFORMED = "malformed"
    HTML = "html"
    OVERSIZE = "oversize"
    RESET = "reset"
    OK = "ok"


_HINT = (
    "expected a status code (e.g. 503), latency:MS, hang, hang:headers, cut:N, malformed, "
    "html, oversize:MB, reset or ok, optionally prefixed by rate:P: and/or first:K: "
    "(see `echelon fake-provider --help`)"
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault rule. `kind` says what happens; the other fields parameterise it."""

    kind: FaultKind
    status: int | None = None
    retry_after: float | None = None
    latency_ms: float = 0.0
    after_chunks: int | None = None
    megabytes: float | None = None
    rate: float = 1.0
    first: int | None = None
    message: str | None = None

    def spec(self) -> str:
        """The canonical `SPEC` string for this rule (round-trips through `parse_fault`)."""
        parts: list[str] = []
        if self.rate < 1.0:
            parts.append(f"rate:{_num(self.rate)}")
        if self.first is not None:
            parts.append(f"first:{self.first}")
        kind = self.kind
        if kind is FaultKind.STATUS:
            parts.append(str(self.status))
        elif kind is FaultKind.LATENCY:
            parts.append(f"latency:{_num(self.latency_ms)}")
        elif kind is FaultKind.HANG_BODY:
            parts.append("hang:headers")
        elif kind is FaultKind.CUT:
            parts.append(f"cut:{self.after_chunks}")
        elif kind is FaultKind.OVERSIZE:
            parts.append(f"oversize:{_num(self.megabytes or 0)}")
        else:
            parts.append(kind.value)
        if self.retry_after is not None:
            parts.append(f"retry-after={_num(self.retry_after)}")
        if self.latency_ms and kind is not FaultKind.LATENCY:
            parts.append(f"latency={_num(self.latency_ms)}")
        if self.message is not None:
            parts.append(f"message={self.message}")
        return ":".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"spec": self.spec(), "kind": self.kind.value}
        for name in ("status", "retry_after", "after_chunks", "megabytes", "first", "message"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.latency_ms:
            out["latency_ms"] = self.latency_ms
        out["rate"] = self.rate
        return out

    @classmethod
    def from_json(cls, obj: object) -> Fault:
        """A rule from JSON: a SPEC string, or an object like `to_json()` returns."""
        if isinstance(obj, str):
            return parse_fault(obj)
        if not isinstance(obj, dict):
            raise FaultSpecError(f"a fault must be a SPEC string or an object, got {obj!r}")
        if "spec" in obj:
            base = parse_fault(str(obj["spec"]))
            extra = {k: v for k, v in obj.items() if k not in ("spec", "kind")}
            return _validated(replace(base, **_coerce(extra)))
        try:
            kind = FaultKind(obj.get("kind", "status"))
        except ValueError:
            raise FaultSpecError(
                f"unknown fault kind {obj.get('kind')!r}; expected one of "
                + ", ".join(k.value for k in FaultKind)
            ) from None
        fields = {k: v for k, v in obj.items() if k != "kind"}
        return _validated(Fault(kind=kind, **_coerce(fields)))


_FIELD_TYPES: dict[str, type] = {
    "status": int,
    "retry_after": float,
    "latency_ms": float,
    "after_chunks": int,
    "megabytes": float,
    "rate": float,
    "first": int,
    "message": str,
}


def _coerce(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        typ = _FIELD_TYPES.get(name)
        if typ is None:
            raise FaultSpecError(
                f"unknown fault field {name!r}; known fields: kind, spec, "
                + ", ".join(_FIELD_TYPES)
            )
        if value is None:
            out[name] = None
            continue
        try:
            out[name] = typ(value)
        except (TypeError, ValueError):
            raise FaultSpecError(
                f"fault field {name!r} must be a {typ.__name__}, got {value!r}"
            ) from None
    return out


def _validated(fault: Fault) -> Fault:
    if fault.kind is FaultKind.STATUS and (fault.status is None or not 400 <= fault.status <= 599):
        raise FaultSpecError(f"a status fault needs a status code 400-599, got {fault.status!r}")
    if not 0.0 <= fault.rate <= 1.0:
        raise FaultSpecError(f"rate must be between 0 and 1, got {fault.rate}")
    if fault.first is not None and fault.first < 0:
        raise FaultSpecError(f"first must be >= 0, got {fault.first}")
    if fault.latency_ms < 0:
        raise FaultSpecError(f"latency must be >= 0 ms, got {fault.latency_ms}")
    if fault.kind is FaultKind.CUT and (fault.after_chunks is None or fault.after_chunks < 0):
        raise FaultSpecError(f"cut needs a chunk count >= 0, got {fault.after_chunks!r}")
    if fault.kind is FaultKind.OVERSIZE and (fault.megabytes is None or fault.megabytes <= 0):
        raise FaultSpecError(f"oversize needs a size in megabytes > 0, got {fault.megabytes!r}")
    if fault.retry_after is not None and fault.retry_after < 0:
        raise FaultSpecError(f"retry-after must be >= 0 seconds, got {fault.retry_after}")
    return fault


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _number(text: str, what: str, spec: str, *, integer: bool = False) -> float:
    try:
        return int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise FaultSpecError(
            f"bad fault spec {spec!r}: {what} must be {kind}, got {text!r}"
        ) from None


def parse_fault(spec: str) -> Fault:
    """Parse one SPEC (the part after `MODEL=`). Raises `FaultSpecError` with a hint."""
    text = spec.strip()
    if not text:
        raise FaultSpecError(f"empty fault spec; {_HINT}")
    tokens = text.split(":")
    rate, first = 1.0, None
    while len(tokens) >= 2 and tokens[0] in ("rate", "first"):
        if len(tokens) < 3:
            raise FaultSpecError(
                f"bad fault spec {spec!r}: {tokens[0]}:... needs a fault after it; {_HINT}"
            )
        if tokens[0] == "rate":
            rate = _number(tokens[1], "rate", spec)
        else:
            first = int(_number(tokens[1], "first", spec, integer=True))
        tokens = tokens[2:]
    head, rest = tokens[0].strip().lower(), tokens[1:]
    options: dict[str, Any] = {}
    positional: list[str] = []
    for i, tok in enumerate(rest):
        if tok.startswith("message="):
            options["message"] = ":".join(rest[i:])[len("message=") :]
            break
        if "=" in tok:
            key, _, value = tok.partition("=")
            key = key.strip().lower()
            if key == "retry-after":
                options["retry_after"] = _number(value, "retry-after", spec)
            elif key == "latency":
                options["latency_ms"] = _number(value, "latency", spec)
            else:
                raise FaultSpecError(
                    f"bad fault spec {spec!r}: unknown option {key!r}; "
                    "options are retry-after=SECONDS, latency=MS, message=TEXT"
                )
        else:
            positional.append(tok.strip())
    fault = _head(head, positional, spec)
    return _validated(replace(fault, rate=rate, first=first, **options))


def _head(head: str, args: list[str], spec: str) -> Fault:
    def want(n: int) -> None:
        if len(args) != n:
            usage = {"latency": "latency:MS", "cut": "cut:N", "oversize": "oversize:MB"}.get(
                head, head
            )
            raise FaultSpecError(f"bad fault spec {spec!r}: expected {usage}")

    if head.isdigit():
        want(0)
        return Fault(kind=FaultKind.STATUS, status=int(head))
    if head == "latency":
        want(1)
        return Fault(kind=FaultKind.LATENCY, latency_ms=_number(args[0], "latency", spec))
    if head == "hang":
        if args == ["headers"]:
            return Fault(kind=FaultKind.HANG_BODY)
        want(0)
        return Fault(kind=FaultKind.HANG)
    if head == "cut":
        want(1)
        return Fault(
            kind=FaultKind.CUT, after_chunks=int(_number(args[0], "cut", spec, integer=True))
        )
    if head == "oversize":
        want(1)
        return Fault(kind=FaultKind.OVERSIZE, megabytes=_number(args[0], "oversize", spec))
    aliases = {"wrong-content-type": "html", "none": "ok", "hang-body": "hang-body"}
    try:
        kind = FaultKind(aliases.get(head, head))
    except ValueError:
        raise FaultSpecError(f"bad fault spec {spec!r}: unknown fault {head!r}; {_HINT}") from None
    if kind in (FaultKind.STATUS, FaultKind.LATENCY, FaultKind.CUT, FaultKind.OVERSIZE):
        raise FaultSpecError(f"bad fault spec {spec!r}: {_HINT}")
    want(0)
    return Fault(kind=kind)


def parse_fault_arg(arg: str) -> tuple[str, Fault]:
    """Parse a CLI `--fault MODEL=SPEC` argument into (model, fault)."""
    model, sep, spec = arg.partition("=")
    model = model.strip()
    if not sep or not model:
        raise FaultSpecError(
            f"bad --fault {arg!r}: expected MODEL=SPEC, e.g. gpt-4=503 or '*=rate:0.2:500'"
        )
    try:
        return model, parse_fault(spec)
    except FaultSpecError as exc:
        raise FaultSpecError(f"bad --fault {arg!r}: {exc}") from None


@dataclass(slots=True)
class _RuleState:
    fault: Fault
    seen: int = 0


@dataclass
class FaultBook:
    """The rules in force, per model name (and `*`), with their counters and the seeded RNG.

    `pick(model)` is called once per generation request and says which fault, if any, applies.
    The `first:K` counter of a rule counts the requests that reached that rule (for `*`, all
    models that fall through to it together), and restarts when the rule is set again.
    """

    seed: int | None = None
    _rules: dict[str, _RuleState] = field(default_factory=dict)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def set(self, model: str, fault: Fault) -> None:
        self._rules[model] = _RuleState(fault)

    def remove(self, model: str) -> bool:
        return self._rules.pop(model, None) is not None

    def clear(self) -> None:
        self._rules.clear()

    def reseed(self, seed: int | None = None) -> None:
        """Restart the RNG (with `seed`, or the book's seed) and every rule's counter."""
        if seed is not None:
            self.seed = seed
        self._rng = random.Random(self.seed)
        for state in self._rules.values():
            state.seen = 0

    def rules(self) -> dict[str, Fault]:
        return {model: state.fault for model, state in self._rules.items()}

    def pick(self, model: str) -> Fault | None:
        if not self._rules:
            return None
        state = self._rules.get(model) or self._rules.get(ALL_MODELS)
        if state is None:
            return None
        fault = state.fault
        if fault.kind is FaultKind.OK:
            return None
        state.seen += 1
        if fault.first is not None and state.seen > fault.first:
            return None
        if fault.rate < 1.0 and self._rng.random() >= fault.rate:
            return None
        return fault
