"""A task group: named tiers plus its own fallback configuration."""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from .admission import rule, same_settings, validations
from .base import ConfigModel
from .fallback import CircuitBreaker, FallbackConfig, FallbackStrategy
from .tiers import Echelon

__all__ = ["MAX_TIERS", "TIER_NAME_PATTERN", "TaskGroup", "TaskGroupSpec"]

TIER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
#: tiers a group may have (bounds the API server's cost estimate of the tier rules)
MAX_TIERS = 32
_ECHELON_N = re.compile(r"^echelon[_-]?\d+$")
_GROUP_SUFFIX = re.compile(r"[_-]group$")


class TaskGroupSpec(ConfigModel):
    """The tiers and fallback of one task type (the spec of a TaskGroup resource)."""

    # the admission twins of _check (see .admission)
    model_config = ConfigDict(json_schema_extra=validations(
        rule("!has(self.fallbackStrategy) || !has(self.fallbackConfig) || "
             "!has(self.fallbackConfig.strategy) || "
             "self.fallbackConfig.strategy == self.fallbackStrategy",
             "fallbackStrategy contradicts fallbackConfig.strategy; keep only "
             "fallbackConfig.strategy"),
        rule("!has(self.circuitBreaker) || !has(self.fallbackConfig) || "
             "!has(self.fallbackConfig.circuitBreaker) || ("
             + same_settings(CircuitBreaker, "self.circuitBreaker",
                             "self.fallbackConfig.circuitBreaker") + ")",
             "circuitBreaker is set both at group level and in fallbackConfig with different "
             "values; keep only fallbackConfig.circuitBreaker"),
    ))

    description: str | None = Field(None, description="What this task group is for.")
    task_type: str | None = Field(
        None,
        description="The task type this group serves (default: its name without '_group'). "
        "Polling pools should serve a single task type.",
    )
    echelons: dict[str, Echelon] = Field(
        min_length=1,
        max_length=MAX_TIERS,
        description="The group's tiers by name (usually echelon1, echelon2, ...; any name works, "
        "e.g. translation). Tried in 'priority' order.",
        json_schema_extra=validations(
            rule(f"self.all(t, t.matches('{TIER_NAME_PATTERN}'))",
                 "a tier name (a key of echelons) is invalid: use letters, digits, '_' and '-' "
                 "(no '.'), starting with a letter or digit"),
            rule("self.all(a, !has(self[a].priority) || self.all(b, b == a || "
                 "!has(self[b].priority) || self[b].priority != self[a].priority))",
                 "two tiers of echelons share a priority; give each tier its own priority"),
        ),
    )
    fallback_config: FallbackConfig | None = Field(
        None, description="How this group degrades; unset values come from the global fallback."
    )
    fallback_strategy: FallbackStrategy | None = Field(
        None, description="Deprecated: the same as fallbackConfig.strategy."
    )
    circuit_breaker: CircuitBreaker | None = Field(
        None, description="Deprecated: the same as fallbackConfig.circuitBreaker."
    )

    @model_validator(mode="before")
    @classmethod
    def _inline_tiers(cls, data: Any) -> Any:
        """The source documents put tiers next to the group's own keys: gather them."""
        if not isinstance(data, dict):
            return data
        known = _known_keys(cls)
        tiers: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        for key, value in data.items():
            if key in known or not isinstance(value, dict):
                rest[key] = value
                continue
            if "models" not in value:
                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"unknown key {key!r}: not a group setting, and not a tier (a tier needs "
                    f"'models'){hint}"
                )
            tiers[key] = value
        if tiers:
            declared = rest.get("echelons")
            if declared is not None:
                if not isinstance(declared, dict):
                    return data
                clash = sorted(set(tiers) & set(declared))
                if clash:
                    raise ValueError(
                        f"tier {clash[0]!r} is declared twice (inline and in echelons)"
                    )
                rest["echelons"] = {**declared, **tiers}
            else:
                rest["echelons"] = tiers
        return rest

    @model_validator(mode="after")
    def _check(self) -> TaskGroupSpec:
        for name in self.echelons:
            if not re.match(TIER_NAME_PATTERN, name):
                raise ValueError(
                    f"tier name {name!r} is invalid: use letters, digits, '_' and '-' (no '.')"
                )
        seen: dict[int, str] = {}
        for name, tier in self.echelons.items():
            if tier.priority is None:
                continue
            if tier.priority in seen:
                raise ValueError(
                    f"tiers {seen[tier.priority]!r} and {name!r} share priority {tier.priority}; "
                    "give each tier its own priority"
                )
            seen[tier.priority] = name
        legacy, block = self.fallback_strategy, self.fallback_config
        if legacy and block and block.strategy and block.strategy != legacy:
            raise ValueError(
                f"fallback_strategy {legacy!r} contradicts fallback_config.strategy "
                f"{block.strategy!r}; keep only fallback_config.strategy"
            )
        group_cb, block_cb = self.circuit_breaker, block.circuit_breaker if block else None
        if group_cb and block_cb and group_cb != block_cb:
            raise ValueError(
                "circuit_breaker is set both at group level and in fallback_config with "
                "different values; keep only fallback_config.circuit_breaker"
            )
        return self

    # -- derived views -----------------------------------------------------------------------

    def ordered_tiers(self) -> list[tuple[str, Echelon]]:
        """Tiers in the order they are tried: by priority, then declaration order."""
        indexed = list(enumerate(self.echelons.items()))
        indexed.sort(key=lambda item: (item[1][1].priority or 10_000 + item[0], item[0]))
        return [pair for _, pair in indexed]

    def tier_task_type(self, group_name: str, tier_name: str) -> str:
        """The task type a reference to ``group.tier`` serves."""
        tier = self.echelons[tier_name]
        if tier.task_type:
            return tier.task_type
        if not _ECHELON_N.match(tier_name):
            return tier_name.replace("-", "_")
        return self.group_task_type(group_name)

    def group_task_type(self, group_name: str) -> str:
        if self.task_type:
            return self.task_type
        return _GROUP_SUFFIX.sub("", group_name).replace("-", "_")

    @property
    def strategy(self) -> FallbackStrategy | None:
        block = self.fallback_config
        return (block.strategy if block else None) or self.fallback_strategy

    @property
    def breaker(self) -> CircuitBreaker | None:
        block = self.fallback_config
        return (block.circuit_breaker if block else None) or self.circuit_breaker


class TaskGroup(TaskGroupSpec):
    """A task group as written in the source documents' files (may carry its own name)."""

    name: str | None = Field(None, description="The group's name (per-group files).")


def _known_keys(model: type[ConfigModel]) -> set[str]:
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        if info.alias:
            keys.add(info.alias)
    return keys
