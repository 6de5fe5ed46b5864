"""Resolving a request's model (and node header, and fallback groups) to a target's route.

``resolve(model, node)`` checks, in order: a workflow node, a polling pool, a group reference
(``group`` / ``group.tier``; ``_`` == ``-``). A ``node`` header applies that node's routing
and limits to a group reference (the route is built on first use and cached). Unknown names
raise :class:`UnknownTarget` with a few close names. Caller fallback groups give a route built
on first use and cached on the route they replace (both caches are bounded).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import UnknownTarget
from .request import Target

if TYPE_CHECKING:
    from .planner import PlanSet
    from .plans import Route

__all__ = ["TargetIndex", "close_names"]

_CACHE_LIMIT = 1024


class TargetIndex:
    """Target lookups of one plan set, with their caches."""

    def __init__(self, plans: PlanSet) -> None:
        self.plans = plans
        self._node_group_routes: dict[tuple[str, str], Route] = {}
        self._targets: dict[tuple[str, str | None], Target] = {}

    def resolve(self, model: str, node: str | None = None) -> Target:
        key = (model, node)
        target = self._targets.get(key)
        if target is not None:
            return target
        target = self._resolve(model, node)
        if len(self._targets) >= _CACHE_LIMIT:
            self._targets.clear()
        self._targets[key] = target
        return target

    def _resolve(self, model: str, node: str | None) -> Target:
        resolver = self.plans.resolver
        node_name = None
        if node is not None:
            node_name = resolver.node_name(node)
            if node_name is None:
                nodes = list(self.plans.config.workflow_nodes)
                raise UnknownTarget(node, "node", close_names(node, nodes))
        name = resolver.node_name(model)
        if name is not None:
            return Target("node", name, name, self.plans.node_routes[name])
        name = resolver.pool_name(model)
        if name is not None:
            return Target("pool", name, None, self.plans.pool_routes[name])
        ref = resolver.parse_ref(model)
        if ref is None:
            raise UnknownTarget(model, "model", close_names(model, self._all_names()))
        if node_name is None:
            return Target("group", str(ref), None, self.plans.group_routes[str(ref)])
        cache_key = (str(ref), node_name)
        route = self._node_group_routes.get(cache_key)
        if route is None:
            route = self.plans.node_route(node_name, ref)
            self._node_group_routes[cache_key] = route
        return Target("group", str(ref), node_name, route)

    def with_fallback_groups(self, route: Route, groups: Sequence[str]) -> Route:
        """``route`` with a caller's fallback groups replacing the entry group's (and node's)."""
        key = tuple(groups)
        found = route.overrides.get(key)
        if found is not None:
            return found
        if route.kind == "pool" or route.entry is None:
            return route  # a pool has no fallback groups to replace
        for ref in groups:
            if self.plans.resolver.parse_ref(ref) is None:
                close = close_names(ref, self.plans.group_refs())
                raise UnknownTarget(ref, "fallback group", close)
        if route.node_name is not None:
            entry = None if route.kind == "node" else route.entry
            built = self.plans.node_route(route.node_name, entry, key, route.name)
        else:
            built = self.plans.group_route(route.entry, key)
        if len(route.overrides) >= _CACHE_LIMIT:
            route.overrides.clear()
        route.overrides[key] = built
        return built

    def _all_names(self) -> list[str]:
        config = self.plans.config
        return [*config.workflow_nodes, *config.polling_pools, *self.plans.group_refs()]


def close_names(name: str, names: list[str]) -> list[str]:
    return difflib.get_close_matches(name, names, n=3, cutoff=0.5)
