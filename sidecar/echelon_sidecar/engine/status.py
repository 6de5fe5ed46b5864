"""``engine.status()``: the engine's state as JSON-able data (no secrets).

Shape::

    {
      "config_version": "3f2a...",          # LoadedConfig.version of the config in use
      "time": 1234.5,                       # the clock's now(); other times are on this clock
      "sidecars": 1,                        # budgets below are this sidecar's share
      "slot": None,                         # its place among the pods sharing them (None:
                                            # not listed, the floor share)
      "breakers": [{"group", "model", "state", "consecutive_failures", "last_error_class",
                    "reopen_count", "open_since", "open_until", "retry_in",
                    "probes_in_flight"}, ...],
      "pools": {name: {"rotation_strategy", "fallback_strategy", "max_instance_attempts",
                       "rate_limit": {...} | None,
                       "instances": [{"group", "tier", "model", "provider", "in_rotation",
                                      "consecutive_failures", "last_error_class",
                                      "out_until", "circuit"}, ...]}},
      "limits": [{"level", "key", "kind": "concurrency", "limit", "queue_size",
                  "in_flight", "queued"}
                 | {"level", "key", "kind": "rate", "algorithm", ...}, ...],
      "sessions": {"<kind>:<target>": pinned sessions, ...},
      "retry_after": [{"model", "retry_in"}, ...]  # instances waiting out an upstream's
                                                    # Retry-After (skipped until then)
    }

Model entries are reported by id and provider kind only; credentials, URLs and headers never
appear.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .planner import PlanSet

__all__ = ["build_status"]


def build_status(plans: PlanSet, now: float) -> dict[str, Any]:
    registry = plans.registry
    breakers = [breaker.snapshot(now) for _, breaker in registry.items("breaker")]
    breakers.sort(key=lambda b: (str(b["group"]), str(b["model"])))
    pools: dict[str, Any] = {}
    for name, route in plans.pool_routes.items():
        pool = route.pool
        assert pool is not None
        instances = []
        for inst, health in zip(pool.instances, pool.health, strict=True):
            instances.append({
                "group": inst.group,
                "tier": inst.tier,
                "model": inst.model,
                "provider": inst.provider,
                **health.snapshot(now),
                "circuit": inst.breaker.current(now).value,
            })
        pools[name] = {
            "rotation_strategy": pool.spec.rotation_strategy,
            "fallback_strategy": pool.fallback_strategy,
            "max_instance_attempts": pool.max_instance_attempts,
            "health_check_interval": pool.spec.health_check_interval,
            "rate_limit": pool.rate.snapshot(now) if pool.rate is not None else None,
            "instances": instances,
        }
    limits: list[dict[str, Any]] = []
    for key, slots in registry.items("slots"):
        limits.append({"level": key[1], "key": ".".join(key[2:]), "kind": "concurrency",
                       **slots.snapshot()})
    for kind in ("rate", "tpm"):
        for key, rate in registry.items(kind):
            limits.append({"level": key[1], "key": ".".join(key[2:]) or key[1],
                           "kind": "rate" if kind == "rate" else "tokens",
                           **rate.snapshot(now)})
    limits.sort(key=lambda item: (item["kind"], item["level"], item["key"]))
    sessions = {
        ":".join(key[1:]): len(pins) for key, pins in registry.items("sessions") if len(pins)
    }
    waits = [{"model": key[1], "retry_in": round(memo.until - now, 3)}
             for key, memo in registry.items("memo") if memo.until > now]
    return {
        "config_version": plans.version,
        "time": now,
        "sidecars": plans.sidecars,
        "slot": plans.slot,
        "breakers": breakers,
        "pools": pools,
        "limits": limits,
        "sessions": sessions,
        "retry_after": waits,
    }
