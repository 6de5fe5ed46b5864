"""Pure builders: data in, dicts out. No API calls, no clocks (``now`` is passed in).

- :mod:`.globalconfig` parses and merges the global-config ConfigMaps;
- :mod:`.render` renders a pool's combined-format config (``render_pool_config``);
- :mod:`.plan` validates what was rendered and explains problems in the user's terms;
- :mod:`.configmap` builds the pool's ConfigMap and the patch to bring one up to date;
- :mod:`.sidecar` builds the patches that add / remove the sidecar of a Deployment;
- :mod:`.status` builds conditions, printer fields and circuit counts.
"""

from .configmap import configmap_patch, is_managed, render_configmap, secret_refs_of
from .globalconfig import GlobalConfig, merge_global_configs, parse_global_configmap
from .plan import GroupPlan, PoolConfigMapPlan, dump_config, plan_group, plan_pool
from .problems import describe_problem
from .render import (
    SecretRef,
    render_group_config,
    render_pool_config,
    secret_env_name,
    secret_refs,
)
from .sidecar import contains, inject_sidecar, injected_pool, remove_sidecar, sidecar_container
from .status import (
    CircuitCounts,
    Transition,
    build_group_health,
    build_group_status,
    build_pool_health,
    build_pool_status,
    circuit_transitions,
    set_condition,
    status_patch,
)

__all__ = [
    "CircuitCounts",
    "GlobalConfig",
    "GroupPlan",
    "PoolConfigMapPlan",
    "SecretRef",
    "Transition",
    "build_group_health",
    "build_group_status",
    "build_pool_health",
    "build_pool_status",
    "circuit_transitions",
    "configmap_patch",
    "contains",
    "describe_problem",
    "dump_config",
    "inject_sidecar",
    "injected_pool",
    "is_managed",
    "merge_global_configs",
    "parse_global_configmap",
    "plan_group",
    "plan_pool",
    "remove_sidecar",
    "render_configmap",
    "render_group_config",
    "render_pool_config",
    "secret_env_name",
    "secret_refs",
    "secret_refs_of",
    "set_condition",
    "sidecar_container",
    "status_patch",
]
