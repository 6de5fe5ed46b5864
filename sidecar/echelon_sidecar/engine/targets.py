"""The route table: a request's model (and node header, and fallback groups) to a route.

``resolve(model, node)`` checks, in order: a workflow node, a polling pool, a group reference
(``group`` / ``group.tier``; ``_`` == ``-``). A ``node`` header applies that node's routing
and limits to a group reference (the route is built on first use and cached). Unknown names
raise :class:`UnknownTarget` with a few close names. Caller fallback groups give a route built
on first use and cached on the route they replace (both caches are bounded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import UnknownTarget, close_names
from .planner import PlanSet
from .plans import Route

__all__ = ["RouteTable", "Target", "TargetKind", "close_names"]

TargetKind = Literal["group", "pool", "node"]

_CACHE_LIMIT = 1024


@dataclass(frozen=True, slots=True, eq=False)
class Target:
    """A resolved request target and its precomputed route."""

    kind: TargetKind
    name: str
    """The group reference, pool or node name as declared."""
    node: str | None
    """The workflow node whose routing and limits apply (None for plain groups and pools)."""
    route: Route
    table: RouteTable
    """The route table it came from (for the caller's fallback-group overrides)."""

    def __str__(self) -> str:
        return self.name if self.node is None or self.node == self.name else (
            f"{self.name} (node {self.node})"
        )


class RouteTable:
    """Every route of one plan set by target, with the routes built on first use (a node
    header on a group reference, a caller's fallback groups) and their bounded caches."""

    def __init__(self, plans: PlanSet) -> None:
        self.plans = plans
        self._node_group_routes: dict[tuple[str, str], Route] = {}
        self._targets: dict[tuple[str, str | None], Target] = {}
        self._overrides: dict[tuple[str, str, str | None, tuple[str, ...]], Route] = {}

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
            return Target("node", name, name, self.plans.node_routes[name], self)
        name = resolver.pool_name(model)
        if name is not None:
            return Target("pool", name, None, self.plans.pool_routes[name], self)
        ref = resolver.parse_ref(model)
        if ref is None:
            raise UnknownTarget(model, "model", close_names(model, self._all_names()))
        if node_name is None:
            return Target("group", str(ref), None, self.plans.group_routes[str(ref)], self)
        cache_key = (str(ref), node_name)
        route = self._node_group_routes.get(cache_key)
        if route is None:
            route = self.plans.node_route(node_name, ref)
            self._node_group_routes[cache_key] = route
        return Target("group", str(ref), node_name, route, self)

    def with_fallback_groups(self, route: Route, groups: Sequence[str]) -> Route:
        """``route`` with a caller's fallback groups replacing the entry group's (and node's)."""
        key = (route.kind, route.name, route.node_name, tuple(groups))
        found = self._overrides.get(key)
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
            built = self.plans.node_route(route.node_name, entry, key[3], route.name)
        else:
            built = self.plans.group_route(route.entry, key[3])
        if len(self._overrides) >= _CACHE_LIMIT:
            self._overrides.clear()
        self._overrides[key] = built
        return built

    def _all_names(self) -> list[str]:
        config = self.plans.config
        return [*config.workflow_nodes, *config.polling_pools, *self.plans.group_refs()]
