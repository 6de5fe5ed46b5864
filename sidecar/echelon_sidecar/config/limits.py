"""Rate limiting (token bucket, sliding window) and concurrency control settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from .admission import has_any, rule, validations
from .base import ConfigModel
from .tiers import ConcurrencySetting

__all__ = [
    "ConcurrencyControl",
    "ConcurrencyLevel",
    "RateLimiting",
    "SlidingWindowParams",
    "SlidingWindowSpec",
    "TokenBucketParams",
    "TokenBucketSpec",
]

RateAlgorithm = Literal["token_bucket", "sliding_window"]
ConcurrencyLevel = Literal["group", "echelon", "model", "node"]


class TokenBucketParams(ConfigModel):
    """Token bucket: bursts up to bucketSize, then refillRate requests per second."""

    bucket_size: int = Field(ge=1, le=100_000_000, description="Tokens the bucket holds (burst).")
    refill_rate: float = Field(gt=0, le=1_000_000, description="Tokens added per second.")


class SlidingWindowParams(ConfigModel):
    """Sliding window: at most maxRequests in any windowSize seconds."""

    window_size: float = Field(gt=0, le=86_400, description="Window length in seconds.")
    max_requests: int = Field(ge=1, le=100_000_000, description="Requests allowed per window.")


@dataclass(frozen=True, slots=True)
class TokenBucketSpec:
    bucket_size: int
    refill_rate: float


@dataclass(frozen=True, slots=True)
class SlidingWindowSpec:
    window_size: float
    max_requests: int


#: the fields that make a rate-limiting block limit the request rate (one that sets only
#: ``tpm_limit`` limits tokens alone)
REQUEST_RATE_FIELDS = ("algorithm", "bucket_size", "refill_rate", "window_size", "max_requests",
                       "token_bucket", "sliding_window")


def _rate_rules() -> dict[str, Any]:
    """The admission twins of :meth:`RateLimiting._params_present` (see .admission)."""
    limits = f"(!has(self.tpmLimit) || {has_any('self', REQUEST_RATE_FIELDS)})"
    tb = "(!has(self.algorithm) || self.algorithm == 'token_bucket')"
    sw = "(has(self.algorithm) && self.algorithm == 'sliding_window')"
    flat_tb = has_any("self", ("bucket_size", "refill_rate"))
    flat_sw = has_any("self", ("window_size", "max_requests"))
    return validations(
        rule(f"!({limits} && {tb} && ({flat_sw}))",
             "windowSize/maxRequests belong to sliding_window, but algorithm is token_bucket; "
             "remove them or set algorithm: sliding_window"),
        rule(f"!({limits} && {tb} && ({flat_tb}) && has(self.tokenBucket))",
             "token bucket parameters are given twice (bucketSize/refillRate and tokenBucket)"),
        rule(f"!({limits} && {tb}) || has(self.tokenBucket) || "
             "(has(self.bucketSize) && has(self.refillRate))",
             "algorithm token_bucket needs bucketSize and refillRate (flat, or under "
             "tokenBucket)"),
        rule(f"!({limits} && {sw} && ({flat_tb}))",
             "bucketSize/refillRate belong to token_bucket, but algorithm is sliding_window; "
             "remove them or set algorithm: token_bucket"),
        rule(f"!({limits} && {sw} && ({flat_sw}) && has(self.slidingWindow))",
             "sliding window parameters are given twice (windowSize/maxRequests and "
             "slidingWindow)"),
        rule(f"!({limits} && {sw}) || has(self.slidingWindow) || "
             "(has(self.windowSize) && has(self.maxRequests))",
             "algorithm sliding_window needs windowSize and maxRequests (flat, or under "
             "slidingWindow)"),
    )


class RateLimiting(ConfigModel):
    """A request-rate budget, and/or a token budget (``tpm_limit``). Parameters may be flat
    (pools) or nested by algorithm (global)."""

    model_config = ConfigDict(json_schema_extra=_rate_rules())

    enabled: bool = Field(True, description="Enforce this limit.")
    tpm_limit: int | None = Field(
        None, ge=1, le=10_000_000_000,
        description="Tokens per minute (input + output), cluster-wide, checked once per "
        "request besides the request rate; a block may give only tpmLimit. A request reserves "
        "its estimate and settles it with the provider's reported usage.",
    )
    algorithm: RateAlgorithm = Field(
        "token_bucket", description="token_bucket (bucketSize, refillRate) or sliding_window "
        "(windowSize, maxRequests)."
    )
    bucket_size: int | None = Field(None, ge=1, le=100_000_000, description="Token bucket size.")
    refill_rate: float | None = Field(
        None, gt=0, le=1_000_000, description="Token bucket refill per second."
    )
    window_size: float | None = Field(
        None, gt=0, le=86_400, description="Sliding window length in seconds."
    )
    max_requests: int | None = Field(
        None, ge=1, le=100_000_000, description="Requests allowed per sliding window."
    )
    token_bucket: TokenBucketParams | None = Field(
        None, description="Nested token bucket parameters (alternative to the flat fields)."
    )
    sliding_window: SlidingWindowParams | None = Field(
        None, description="Nested sliding window parameters (alternative to the flat fields)."
    )

    @property
    def limits_requests(self) -> bool:
        """Does this block set a request rate (it may set only ``tpm_limit``)?"""
        return self.tpm_limit is None or bool(set(REQUEST_RATE_FIELDS) & self.model_fields_set)

    @model_validator(mode="after")
    def _params_present(self) -> RateLimiting:
        if not self.limits_requests:
            return self
        flat_tb = self.bucket_size is not None or self.refill_rate is not None
        flat_sw = self.window_size is not None or self.max_requests is not None
        if self.algorithm == "token_bucket":
            if flat_sw:
                raise ValueError(
                    "window_size/max_requests belong to sliding_window, but algorithm is "
                    "token_bucket; remove them or set algorithm: sliding_window"
                )
            if flat_tb and self.token_bucket:
                raise ValueError("token bucket parameters are given twice (flat and nested)")
            if not self.token_bucket and (self.bucket_size is None or self.refill_rate is None):
                raise ValueError(
                    "algorithm token_bucket needs bucket_size and refill_rate (flat, or under "
                    "token_bucket:)"
                )
        else:
            if flat_tb:
                raise ValueError(
                    "bucket_size/refill_rate belong to token_bucket, but algorithm is "
                    "sliding_window; remove them or set algorithm: token_bucket"
                )
            if flat_sw and self.sliding_window:
                raise ValueError("sliding window parameters are given twice (flat and nested)")
            if not self.sliding_window and (self.window_size is None or self.max_requests is None):
                raise ValueError(
                    "algorithm sliding_window needs window_size and max_requests (flat, or under "
                    "sliding_window:)"
                )
        return self

    def spec(self) -> TokenBucketSpec | SlidingWindowSpec:
        """The parameters of the chosen algorithm."""
        if self.algorithm == "token_bucket":
            if self.token_bucket:
                return TokenBucketSpec(self.token_bucket.bucket_size, self.token_bucket.refill_rate)
            assert self.bucket_size is not None and self.refill_rate is not None
            return TokenBucketSpec(self.bucket_size, self.refill_rate)
        if self.sliding_window:
            return SlidingWindowSpec(
                self.sliding_window.window_size, self.sliding_window.max_requests
            )
        assert self.window_size is not None and self.max_requests is not None
        return SlidingWindowSpec(self.window_size, self.max_requests)

    def unused_blocks(self) -> list[str]:
        """Nested blocks given for the algorithm that is not chosen (worth a warning)."""
        if self.algorithm == "token_bucket" and self.sliding_window:
            return ["sliding_window"]
        if self.algorithm == "sliding_window" and self.token_bucket:
            return ["token_bucket"]
        return []


_LEVEL_KEYS = {
    "group_level": "group",
    "echelon_level": "echelon",
    "model_level": "model",
    "node_level": "node",
    "groupLevel": "group",
    "echelonLevel": "echelon",
    "modelLevel": "model",
    "nodeLevel": "node",
}


class ConcurrencyControl(ConfigModel):
    """Calls in flight per group, per tier (echelon), per model and per workflow node."""

    enabled: bool = Field(True, description="Enforce these limits.")
    levels: dict[ConcurrencyLevel, ConcurrencySetting] = Field(
        default_factory=dict,
        description="Limit and queue size per level: group, echelon, model, node. The source "
        "documents' list form [{group_level: {...}}, ...] is accepted too.",
    )

    @model_validator(mode="before")
    @classmethod
    def _list_form(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("levels"), list):
            return data
        levels: dict[str, Any] = {}
        for index, item in enumerate(data["levels"]):
            if not isinstance(item, dict) or len(item) != 1:
                raise ValueError(
                    f"levels[{index}] must be a single-key mapping such as "
                    "{group_level: {limit: 10, queue_size: 100}}"
                )
            ((key, value),) = item.items()
            level = _LEVEL_KEYS.get(key, key)
            if level not in ("group", "echelon", "model", "node"):
                raise ValueError(
                    f"levels[{index}]: unknown level {key!r}; expected one of group_level, "
                    "echelon_level, model_level, node_level"
                )
            if level in levels:
                raise ValueError(f"levels[{index}]: level {key!r} is given twice")
            levels[level] = value
        return {**data, "levels": levels}
