"""Name lookup, group references, effective fallback and fallback chain plans.

A reference is ``group`` or ``group.tier``; ``_`` and ``-`` are equivalent. The tier is the part
after the last ``.`` when it names a declared tier of the group before it.

A chain plan lists the (group, tier) steps a request walks, in order:

- the entry group's own tiers from the referenced tier on, in priority order (only the entry
  tier for ``task_group_switch``, and only the entry tier when the entry names a tier and the
  caller or its workflow node gives its own fallback groups: an explicit list says exactly
  what comes after that tier);
- then each fallback group in order: a whole group expands to its own chain (its tiers, then
  its own fallback groups, recursively); ``group.tier`` adds just that tier;
- steps already planned are not repeated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .base import canonical_name
from .catalog import ModelEntry
from .fallback import DEFAULT_FALLBACK, EffectiveFallback
from .graph import FallbackGraph
from .groups import TaskGroup
from .nodes import WorkflowNode
from .pools import PollingPool
from .root import EchelonConfig

__all__ = ["ChainStep", "GroupRef", "Resolver"]


@dataclass(frozen=True, slots=True)
class GroupRef:
    """A resolved reference: a declared group name and optionally one of its tiers."""

    group: str
    tier: str | None = None

    def __str__(self) -> str:
        return f"{self.group}.{self.tier}" if self.tier else self.group


@dataclass(frozen=True, slots=True)
class ChainStep:
    """One tier of a chain plan."""

    group: str
    tier: str

    def __str__(self) -> str:
        return f"{self.group}.{self.tier}"


@dataclass
class Resolver:
    """Lookups over a config by canonical name (``_`` == ``-``)."""

    config: EchelonConfig
    _groups: dict[str, str] = field(init=False, default_factory=dict)
    _pools: dict[str, str] = field(init=False, default_factory=dict)
    _nodes: dict[str, str] = field(init=False, default_factory=dict)
    _models: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for table, names in (
            (self._groups, self.config.task_groups),
            (self._pools, self.config.polling_pools),
            (self._nodes, self.config.workflow_nodes),
            (self._models, self.config.models),
        ):
            for name in names:
                table.setdefault(canonical_name(name), name)

    # -- lookups -------------------------------------------------------------------------------

    def group_name(self, name: str) -> str | None:
        return self._groups.get(canonical_name(name))

    def pool_name(self, name: str) -> str | None:
        return self._pools.get(canonical_name(name))

    def node_name(self, name: str) -> str | None:
        return self._nodes.get(canonical_name(name))

    def model_id(self, name: str) -> str | None:
        return self._models.get(canonical_name(name))

    def group(self, name: str) -> TaskGroup:
        return self.config.task_groups[self._groups[canonical_name(name)]]

    def pool(self, name: str) -> PollingPool:
        return self.config.polling_pools[self._pools[canonical_name(name)]]

    def node(self, name: str) -> WorkflowNode:
        return self.config.workflow_nodes[self._nodes[canonical_name(name)]]

    def model(self, name: str) -> ModelEntry | None:
        declared = self.model_id(name)
        return self.config.models[declared] if declared else None

    def parse_ref(self, ref: str) -> GroupRef | None:
        """Resolve ``group`` or ``group.tier``; None when it names nothing declared."""
        if "." in ref:
            head, _, tail = ref.rpartition(".")
            group = self.group_name(head)
            if group is not None:
                tiers = self.config.task_groups[group].echelons
                tier = next((t for t in tiers if canonical_name(t) == canonical_name(tail)), None)
                if tier is not None:
                    return GroupRef(group, tier)
        group = self.group_name(ref)
        return GroupRef(group) if group is not None else None

    # -- fallback ------------------------------------------------------------------------------

    def effective_fallback(self, group_name: str) -> EffectiveFallback:
        """The group's fallback, field by field: group, then global_fallback, then defaults."""
        group = self.group(group_name)
        block = group.fallback_config
        legacy = self.config.global_fallback
        if legacy is not None and not legacy.enabled:
            legacy = None
        values: dict[str, object] = {}
        origins: list[tuple[str, str]] = []
        own = {
            "strategy": group.strategy,
            "fallback_groups": block.fallback_groups if block else None,
            "max_attempts": block.max_attempts if block else None,
            "retry_delay": block.retry_delay if block else None,
            "max_retry_delay": block.max_retry_delay if block else None,
            "circuit_breaker": group.breaker,
            "last_resort": block.last_resort if block else None,
        }
        for key, value in own.items():
            if value is not None:
                values[key], origin = value, "group"
            elif legacy is not None and getattr(legacy, key, None) is not None:
                values[key], origin = getattr(legacy, key), "global_fallback"
            else:
                values[key], origin = getattr(DEFAULT_FALLBACK, key), "default"
            origins.append((key, origin))
        groups = values["fallback_groups"]
        return EffectiveFallback(
            strategy=values["strategy"],  # type: ignore[arg-type]
            fallback_groups=tuple(groups),  # type: ignore[arg-type]
            max_attempts=values["max_attempts"],  # type: ignore[arg-type]
            retry_delay=values["retry_delay"],  # type: ignore[arg-type]
            max_retry_delay=values["max_retry_delay"],  # type: ignore[arg-type]
            circuit_breaker=values["circuit_breaker"],  # type: ignore[arg-type]
            last_resort=values["last_resort"],  # type: ignore[arg-type]
            origins=tuple(origins),
        )

    def plan_chain(
        self, entry: GroupRef, fallback_groups: Iterable[str] | None = None
    ) -> list[ChainStep]:
        """The ordered tiers a request for ``entry`` walks (see the module docstring).

        ``fallback_groups`` replaces the entry group's own list (a caller's or node's choice).
        Unresolvable references are skipped here; validation reports them.
        """
        steps: list[ChainStep] = []
        seen: set[ChainStep] = set()
        self._expand(entry, fallback_groups, steps, seen, visiting=set())
        return steps

    def _expand(
        self,
        entry: GroupRef,
        override: Iterable[str] | None,
        steps: list[ChainStep],
        seen: set[ChainStep],
        visiting: set[str],
    ) -> None:
        if entry.group in visiting:
            return
        visiting.add(entry.group)
        group = self.config.task_groups[entry.group]
        ordered = [name for name, _ in group.ordered_tiers()]
        fallback = self.effective_fallback(entry.group)
        start = ordered.index(entry.tier) if entry.tier else 0
        own = ordered[start:]
        if fallback.strategy == "task_group_switch" or (
            entry.tier is not None and override is not None
        ):
            own = own[:1]
        for tier in own:
            _add(ChainStep(entry.group, tier), steps, seen)
        refs = list(override) if override is not None else list(fallback.fallback_groups)
        for ref in refs:
            target = self.parse_ref(ref)
            if target is None:
                continue
            if target.tier is not None:
                _add(ChainStep(target.group, target.tier), steps, seen)
            else:
                self._expand(target, None, steps, seen, visiting)
        visiting.discard(entry.group)

    def reachable_groups(self, refs: Iterable[str]) -> set[str]:
        """Every group a chain starting at any of ``refs`` can reach (incl. last resorts)."""
        return FallbackGraph(self).reachable(refs)


def _add(step: ChainStep, steps: list[ChainStep], seen: set[ChainStep]) -> None:
    if step not in seen:
        seen.add(step)
        steps.append(step)
