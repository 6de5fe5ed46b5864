"""The fallback graph: task groups as nodes, fallback references as edges.

A group's edges are the references of its effective fallback: its ``fallback_groups`` and
its ``last_resort`` (with ``global_fallback`` folded in where the source format has one).
One graph type answers every question either side asks about fallback closures:

- :meth:`FallbackGraph.walk` -- every reference met from some roots, breadth first, each
  existing group expanded once; references that name nothing are yielded too, with where
  they were written (the sidecar's reachable groups; the operator's unresolved and broken
  references, and the groups a change may touch);
- :meth:`FallbackGraph.reachable` -- the groups a chain from some references can reach;
- :meth:`FallbackGraph.reverse` / :meth:`FallbackGraph.reaching` -- the groups that fall
  back to a group (the operator's "which pools depend on this TaskGroup").

Names are compared canonically (``_`` == ``-``) where a reference may name a group that does
not exist yet (:func:`heads`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import canonical_name

if TYPE_CHECKING:
    from .resolve import GroupRef, Resolver

__all__ = ["FallbackGraph", "Visit", "heads"]


@dataclass(frozen=True, slots=True)
class Visit:
    """One reference met by a walk: ``target`` is what it names (None: nothing)."""

    where: str
    """The root's label, or the field that holds it (``TaskGroup g
    spec.fallbackConfig.fallbackGroups[0]``)."""
    ref: str
    target: GroupRef | None


class FallbackGraph:
    """The fallback edges of one config's task groups (see the module docstring)."""

    __slots__ = ("_reverse", "resolver")

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self._reverse: dict[str, set[str]] | None = None

    def edges(self, group: str) -> list[tuple[str, str]]:
        """``(field, reference)`` of each fallback edge of the declared ``group``."""
        fallback = self.resolver.effective_fallback(group)
        out = [(f"TaskGroup {group} spec.fallbackConfig.fallbackGroups[{index}]", ref)
               for index, ref in enumerate(fallback.fallback_groups)]
        if fallback.last_resort:
            out.append((f"TaskGroup {group} spec.fallbackConfig.lastResort",
                        fallback.last_resort))
        return out

    def walk(self, roots: Iterable[tuple[str, str]]) -> Iterator[Visit]:
        """Every reference met from ``roots`` (``(where, reference)`` pairs), breadth first;
        each existing group is expanded once (its later references are not yielded again)."""
        seen: set[str] = set()
        todo = deque(roots)
        resolver = self.resolver
        while todo:
            where, ref = todo.popleft()
            target = resolver.parse_ref(ref)
            if target is not None:
                if target.group in seen:
                    continue
                seen.add(target.group)
                todo.extend(self.edges(target.group))
            yield Visit(where, ref, target)

    def reachable(self, refs: Iterable[str]) -> set[str]:
        """Every declared group a chain starting at any of ``refs`` can reach."""
        return {v.target.group for v in self.walk((ref, ref) for ref in refs)
                if v.target is not None}

    def reverse(self) -> dict[str, set[str]]:
        """canonical group name -> canonical names of the groups that fall back to it
        (missing groups included, under every name their references stand for)."""
        if self._reverse is None:
            reverse: dict[str, set[str]] = {}
            for name in self.resolver.config.task_groups:
                for _, ref in self.edges(name):
                    for head in heads(ref, self.resolver):
                        reverse.setdefault(head, set()).add(canonical_name(name))
            self._reverse = reverse
        return self._reverse

    def reaching(self, group: str, reverse: Mapping[str, set[str]] | None = None) -> set[str]:
        """Canonical names of the groups whose fallback closure contains ``group`` (itself
        included), existing or not."""
        edges = self.reverse() if reverse is None else reverse
        start = canonical_name(group)
        reached = {start}
        todo = [start]
        while todo:
            for user in edges.get(todo.pop(), ()):
                if user not in reached:
                    reached.add(user)
                    todo.append(user)
        return reached


def heads(ref: str, resolver: Resolver) -> set[str]:
    """Canonical group names a reference stands for: its group, or -- when it names nothing
    -- itself and its head (``g.t`` -> ``g``), so that creating either re-triggers it."""
    target = resolver.parse_ref(ref)
    if target is not None:
        return {canonical_name(target.group)}
    out = {canonical_name(ref)}
    head = ref.rpartition(".")[0]
    if head:
        out.add(canonical_name(head))
    return out
