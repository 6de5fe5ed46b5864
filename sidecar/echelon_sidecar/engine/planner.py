"""Build the plans of one config generation (target lookups: ``targets``).

Done once per load/reload, so a request only follows precomputed objects:

- every group reference (``group`` and each ``group.tier``) gets its :class:`Route` (chain from
  ``Resolver.plan_chain``, last-resort tiers, attempt cap and retry delays of the entry group,
  the entry group's concurrency slot);
- every pool gets a route (its instances, rotation, health and rate limit; the cap is
  ``max_instance_attempts``; retry delays come from the pool's first task group);
- every workflow node gets a route (its ``llm_group`` chain with the node's
  ``fallback_groups``, the node's ``task_config`` applied to every tier of it, its pool first
  when it has a ``polling_pool``, the node slot held for the whole request);
- routes for a caller's ``fallback_groups`` and for a node header applied to a group
  reference are built on first use and cached.

Budgets are this sidecar's share (``config.sidecar.sidecars``): see ``limiters`` and
``concurrency``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..config import (
    ConcurrencySetting,
    EchelonConfig,
    EffectiveFallback,
    GroupRef,
    Resolver,
    WorkflowNode,
    share,
)
from .breaker import Breaker
from .concurrency import ConcurrencyLimit
from .errors import UnknownTarget, close_names
from .health import InstanceHealth
from .instance import Instance, build_settings, provider_key
from .limiters import SlidingWindow, TokenBucket, rpm_window, shared_rate
from .plans import InstancePlan, InstancePoolPlan, RetryAfterMemo, RotateCounter, Route, TierPlan
from .registry import StateRegistry
from .rotation import make_rotation
from .sessions import DEFAULT_IDLE_TTL, DEFAULT_MAX_SESSIONS, InstanceKey, SessionPins
from .tokens import TokenWindow, tpm_window

if TYPE_CHECKING:
    from .clock import Clock
    from .events import Listeners

__all__ = ["PlanSet"]

class PlanSet:
    """Plans and stateful objects of one config generation."""

    def __init__(
        self,
        config: EchelonConfig,
        version: str,
        clock: Clock,
        listeners: Listeners,
        previous: PlanSet | None = None,
    ) -> None:
        self.config = config
        self.version = version
        self.clock = clock
        self.listeners = listeners
        self.resolver = Resolver(config)
        registry = StateRegistry(previous.registry if previous is not None else None)
        self.registry: StateRegistry = registry
        self.sidecars = config.sidecar.sidecars
        #: this sidecar's place among the pods sharing the budgets (None: the floor share)
        self.slot = config.sidecar.slot()
        control = config.concurrency_control
        self.levels: dict[str, ConcurrencySetting] = {}
        if control is not None and control.enabled:
            self.levels = {str(level): setting for level, setting in control.levels.items()}
        self.fallbacks: dict[str, EffectiveFallback] = {
            name: self.resolver.effective_fallback(name) for name in config.task_groups
        }
        self.instances: dict[str, Instance] = {
            model_id: Instance(model_id, entry) for model_id, entry in config.models.items()
        }
        self._tiers: dict[tuple[str, str, str | None], TierPlan] = {}
        self._pools: dict[tuple[str, str | None, str | None], InstancePoolPlan] = {}
        self.global_rate: TokenBucket | SlidingWindow | None = None
        self.global_tpm: TokenWindow | None = None
        self.token_budgets = False
        """Does any tier, pool or the global block set ``tpm_limit`` (the server then
        estimates each request's tokens)?"""
        rate = config.rate_limiting
        if rate is not None and rate.enabled:
            if rate.limits_requests:
                limiter = shared_rate(rate, self.sidecars, self.slot)
                self.global_rate = registry.get(("rate", "global"), limiter.params,
                                                lambda: limiter)
            self.global_tpm = self._tpm(("tpm", "global"), rate.tpm_limit)
        self.group_routes: dict[str, Route] = {}
        for group_name, group in config.task_groups.items():
            self.group_routes[group_name] = self.group_route(GroupRef(group_name))
            for tier_name in group.echelons:
                ref = GroupRef(group_name, tier_name)
                self.group_routes[str(ref)] = self.group_route(ref)
        self.pool_routes = {name: self._pool_route(name) for name in config.polling_pools}
        self.node_routes = {name: self.node_route(name) for name in config.workflow_nodes}
        self.registry.seal()

    def group_refs(self) -> list[str]:
        """Every group reference: each group and each ``group.tier``."""
        return [*self.config.task_groups] + [
            f"{g}.{t}" for g, spec in self.config.task_groups.items() for t in spec.echelons
        ]

    # -- routes ----------------------------------------------------------------------------------

    def group_route(self, ref: GroupRef, override: Sequence[str] | None = None) -> Route:
        steps = self.resolver.plan_chain(ref, override)
        chain = tuple(self.tier(step.group, step.tier) for step in steps)
        fallback = self.fallbacks[ref.group]
        return Route(
            kind="group", name=str(ref), node_name=None, entry=ref, node=None, pool=None,
            chain=chain, last_resort=self._last_resort(fallback, None),
            max_attempts=fallback.max_attempts, retry_delay=fallback.retry_delay,
            max_retry_delay=fallback.max_retry_delay, node_slots=None,
            group_slots=self._level_slots("group", ref.group), group_name=ref.group,
            sessions=self._sessions(("group", str(ref)), None),
            chain_index=Route.index_chain(chain), global_rate=self.global_rate,
            global_tpm=self.global_tpm, reply_budget=_reply_budget(None, chain),
        )

    def _pool_route(self, name: str) -> Route:
        pool = self.pool(name)
        first = self.resolver.parse_ref(pool.spec.task_groups[0])
        fallback = self.fallbacks[first.group] if first is not None else None
        return Route(
            kind="pool", name=name, node_name=None, entry=None, node=None, pool=pool,
            chain=(), last_resort=(), max_attempts=pool.max_instance_attempts,
            retry_delay=fallback.retry_delay if fallback else 0.0,
            max_retry_delay=fallback.max_retry_delay if fallback else 30.0,
            node_slots=None, group_slots=None, group_name=None,
            sessions=self._sessions(("pool", name), pool),
            chain_index={}, global_rate=self.global_rate,
            global_tpm=self.global_tpm, reply_budget=_reply_budget(pool, ()),
        )

    def node_route(
        self,
        node_name: str,
        ref: GroupRef | None = None,
        override: Sequence[str] | None = None,
        name: str | None = None,
    ) -> Route:
        node = self.config.workflow_nodes[node_name]
        own = self.resolver.parse_ref(node.llm_group)
        entry = ref or own
        if entry is None:
            raise UnknownTarget(node.llm_group, "model", close_names(node.llm_group,
                                                                     self.group_refs()))
        pool = None
        if node.polling_pool is not None and own is not None and entry.group == own.group:
            pool_name = self.resolver.pool_name(node.polling_pool)
            if pool_name is not None:
                pool = self.pool(pool_name, node_name, entry)
                if not pool.instances:
                    pool = None
        groups = override if override is not None else node.fallback_groups
        steps = self.resolver.plan_chain(entry, groups)
        if pool is not None:
            covered = {(inst.group, inst.tier) for inst in pool.instances}
            steps = [s for s in steps if (s.group, s.tier) not in covered]
        chain = tuple(self.tier(step.group, step.tier, node_name) for step in steps)
        fallback = self.fallbacks[entry.group]
        route_name = name or (node_name if ref is None else str(entry))
        return Route(
            kind="node" if ref is None else "group", name=route_name, node_name=node_name,
            entry=entry, node=node, pool=pool, chain=chain,
            last_resort=self._last_resort(fallback, node_name),
            max_attempts=fallback.max_attempts, retry_delay=fallback.retry_delay,
            max_retry_delay=fallback.max_retry_delay,
            node_slots=self._node_slots(node_name, node), group_slots=self._level_slots(
                "group", entry.group), group_name=entry.group,
            sessions=self._sessions(("node", node_name, route_name), pool),
            chain_index=Route.index_chain(chain), global_rate=self.global_rate,
            global_tpm=self.global_tpm, reply_budget=_reply_budget(pool, chain),
        )

    def _last_resort(self, fallback: EffectiveFallback, node: str | None) -> tuple[TierPlan, ...]:
        if not fallback.last_resort:
            return ()
        ref = self.resolver.parse_ref(fallback.last_resort)
        if ref is None:
            return ()
        if ref.tier is not None:
            return (self.tier(ref.group, ref.tier, node),)
        group = self.config.task_groups[ref.group]
        return tuple(self.tier(ref.group, t, node) for t, _ in group.ordered_tiers())

    # -- tiers and instances ---------------------------------------------------------------------

    def tier(self, group_name: str, tier_name: str, node_name: str | None = None) -> TierPlan:
        key = (group_name, tier_name, node_name)
        found = self._tiers.get(key)
        if found is not None:
            return found
        node = self.config.workflow_nodes[node_name] if node_name is not None else None
        group = self.config.task_groups[group_name]
        tier = group.echelons[tier_name]
        fallback = self.fallbacks[group_name]
        models = tuple(
            self._instance(group_name, tier_name, model, fallback, node) for model in tier.models
        )
        task = node.task_config if node is not None else None
        budget = tier.attempt_budget(task.max_retries if task is not None else None)
        timeout = task.timeout if task is not None and task.timeout is not None else tier.timeout
        registry = self.registry
        rpm = None
        if tier.rpm_limit is not None:
            window = rpm_window(tier.rpm_limit, self.sidecars, self.slot)
            rpm = registry.get(("rate", "echelon", group_name, tier_name), window.params,
                               lambda: window)
        tpm = self._tpm(("tpm", "echelon", group_name, tier_name), tier.tpm_limit)
        level = self.levels.get("echelon")
        limit = tier.concurrency_limit or (level.limit if level is not None else None)
        slots = None
        if limit is not None:
            slots = self._slots(("echelon", group_name, tier_name), limit,
                                level.queue_size if level is not None else 0)
        rotor = None
        if fallback.strategy == "model_rotate":
            rotor = registry.get(("rotor", group_name, tier_name), None, RotateCounter)
        plan = TierPlan(
            group=group_name, tier=tier_name, label=f"{group_name}.{tier_name}",
            strategy=fallback.strategy, models=models, budget=max(1, budget), timeout=timeout,
            rpm=rpm, tpm=tpm, slots=slots, rotor=rotor,
            index={inst.model: i for i, inst in enumerate(models)},
        )
        self._tiers[key] = plan
        return plan

    def _instance(
        self,
        group_name: str,
        tier_name: str,
        model: str,
        fallback: EffectiveFallback,
        node: WorkflowNode | None,
    ) -> InstancePlan:
        registry = self.registry
        model_id = self.resolver.model_id(model) or model
        instance = self.instances.get(model_id)
        tier = self.config.task_groups[group_name].echelons[tier_name]
        config = fallback.circuit_breaker
        breaker = registry.get(
            ("breaker", group_name, model_id), config,
            lambda: Breaker((group_name, model_id), config, self.listeners.transition),
        )
        level = self.levels.get("model")
        model_slots = None
        if level is not None:
            model_slots = self._slots(("model", model_id), level.limit, level.queue_size)
        memo = registry.get(("memo", model_id), None, RetryAfterMemo)
        settings = None
        cannot_serve = None
        if instance is None:
            cannot_serve = f"model {model!r} is not in the model catalog"
        else:
            settings = build_settings(group_name, tier_name, tier, model_id, instance.entry, node)
            thinking = settings.thinking_config
            if thinking is not None and thinking.enabled and not instance.entry.supports_reasoning:
                cannot_serve = (
                    f"thinking is enabled but {model_id} ({instance.entry.provider}) has no "
                    "reasoning control"
                )
        return InstancePlan(
            group=group_name, tier=tier_name, model=model_id,
            key=(group_name, tier_name, model_id), instance=instance,
            provider=instance.entry.provider if instance is not None else "unknown",
            provider_key=provider_key(instance.entry) if instance is not None else model_id,
            settings=settings, breaker=breaker, model_slots=model_slots, memo=memo,
            cannot_serve=cannot_serve,
        )

    # -- pools -----------------------------------------------------------------------------------

    def pool(
        self, name: str, node_name: str | None = None, narrow: GroupRef | None = None
    ) -> InstancePoolPlan:
        """The plan of pool ``name`` (with a node's task config applied to its tiers); with
        ``narrow``, only its instances of that group reference (a tier, or a whole group):
        a node's tier choice holds inside its pool, never widened to other tiers."""
        key = (name, node_name, str(narrow) if narrow is not None else None)
        found = self._pools.get(key)
        if found is not None:
            return found
        spec = self.config.polling_pools[name]
        keys: list[InstanceKey] = []
        seen: set[InstanceKey] = set()
        for ref_text in spec.task_groups:
            ref = self.resolver.parse_ref(ref_text)
            if ref is None:
                continue
            if narrow is not None:
                if ref.group != narrow.group or (ref.tier and narrow.tier and
                                                 ref.tier != narrow.tier):
                    continue
                ref = GroupRef(ref.group, ref.tier or narrow.tier)
            group = self.config.task_groups[ref.group]
            tiers = [ref.tier] if ref.tier else [t for t, _ in group.ordered_tiers()]
            for tier_name in tiers:
                for model in group.echelons[tier_name].models:
                    triple = (ref.group, tier_name, self.resolver.model_id(model) or model)
                    if triple not in seen:
                        seen.add(triple)
                        keys.append(triple)
        instances = []
        for group_name, tier_name, model_id in keys:
            tier = self.tier(group_name, tier_name, node_name)
            instances.append(tier.models[tier.index[model_id]])
        counts: dict[str, int] = {}
        for _, _, model_id in keys:
            counts[model_id] = counts.get(model_id, 0) + 1
        weights = []
        for _, _, model_id in keys:
            weight = (spec.weights or {}).get(model_id)
            if weight is None:
                entry = self.config.models.get(model_id)
                weight = entry.weight if entry is not None and entry.weight else 1.0
            weights.append(weight / counts[model_id])
        registry = self.registry
        rotation_key = ("rotation", name) if narrow is None else ("rotation", name, str(narrow))
        rotation = registry.get(
            rotation_key, (spec.rotation_strategy, tuple(keys), tuple(weights)),
            lambda: make_rotation(spec.rotation_strategy, weights),
        )
        health = tuple(
            registry.get(("health", name, *k), (spec.failure_threshold, spec.recovery_time),
                         lambda: InstanceHealth(spec.failure_threshold, spec.recovery_time))
            for k in keys
        )
        rate, tpm = None, None
        limits = spec.rate_limiting
        if limits is not None and limits.enabled:
            if limits.limits_requests:
                limiter = shared_rate(limits, self.sidecars, self.slot)
                rate = registry.get(("rate", "pool", name), limiter.params, lambda: limiter)
            tpm = self._tpm(("tpm", "pool", name), limits.tpm_limit)
        plan = InstancePoolPlan(
            name=name, spec=spec, instances=tuple(instances), health=health, rotation=rotation,
            rate=rate, tpm=tpm, index={k: i for i, k in enumerate(keys)},
            fallback_strategy=spec.fallback_strategy,
            max_instance_attempts=spec.max_instance_attempts,
        )
        self._pools[key] = plan
        return plan

    # -- limits ----------------------------------------------------------------------------------

    def _tpm(self, key: tuple[str, ...], tpm: int | None) -> TokenWindow | None:
        if tpm is None:
            return None
        self.token_budgets = True
        window = tpm_window(tpm, self.sidecars, self.slot)
        return self.registry.get(key, window.params, lambda: window)

    def _slots(self, key: tuple[str, ...], limit: int, queue_size: int) -> ConcurrencyLimit:
        level, label = key[0], ".".join(key[1:])
        effective = share(limit, self.sidecars, self.slot)
        listeners = self.listeners

        def depth(value: int) -> None:
            if listeners.active:
                listeners.queue_depth(level, label, value)

        return self.registry.get(
            ("slots", *key), (effective, queue_size),
            lambda: ConcurrencyLimit(effective, queue_size, clock=self.clock, on_depth=depth),
        )

    def _level_slots(self, level: str, name: str) -> ConcurrencyLimit | None:
        setting = self.levels.get(level)
        return self._slots((level, name), setting.limit, setting.queue_size) if setting else None

    def _node_slots(self, name: str, node: WorkflowNode) -> ConcurrencyLimit | None:
        setting = node.concurrency_config or self.levels.get("node")
        return self._slots(("node", name), setting.limit, setting.queue_size) if setting else None

    def _sessions(self, key: tuple[str, ...], pool: InstancePoolPlan | None) -> SessionPins:
        if pool is not None:
            affinity = pool.spec.session_affinity
            params = (affinity.idle_ttl, affinity.max_sessions)
        else:
            params = (DEFAULT_IDLE_TTL, DEFAULT_MAX_SESSIONS)
        return self.registry.get(("sessions", *key), params, lambda: SessionPins(*params))


def _reply_budget(pool: InstancePoolPlan | None, chain: tuple[TierPlan, ...]) -> int:
    """The ``default_max_tokens`` of a route's first model (request-level token budgets)."""
    first = pool.instances[0] if pool is not None and pool.instances else (
        chain[0].models[0] if chain and chain[0].models else None)
    settings = first.settings if first is not None else None
    return settings.max_tokens if settings is not None else 4096
