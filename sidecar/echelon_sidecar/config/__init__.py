"""The one config model of Echelon, its loaders and its validation.

Both the source documents' snake_case YAML (combined ``_task_groups.yaml`` files, per-group /
per-pool trees) and the CRDs' camelCase manifests load into :class:`EchelonConfig`.
"""

from ..errors import ConfigError
from .base import canonical_name, kubernetes_name
from .catalog import (
    DEFAULT_BASE_URLS,
    EMBEDDING_PROVIDERS,
    ModelEntry,
    ModelPrice,
    ProviderKind,
    SecretKeyRef,
)
from .fallback import (
    DEFAULT_FALLBACK,
    CircuitBreaker,
    EffectiveFallback,
    FallbackConfig,
    FallbackStrategy,
    GlobalFallback,
)
from .graph import FallbackGraph, Visit, heads
from .groups import TaskGroup, TaskGroupSpec
from .limits import (
    ConcurrencyControl,
    RateLimiting,
    SlidingWindowParams,
    SlidingWindowSpec,
    TokenBucketParams,
    TokenBucketSpec,
)
from .loader import (
    API_GROUP,
    GLOBAL_CONFIG_LABEL,
    LoadedConfig,
    Origin,
    config_files,
    load_config,
    load_config_text,
)
from .nodes import TaskConfig, WorkflowNode
from .pools import PollingPool, PollingPoolSpec, RotationStrategy, SessionAffinity
from .problems import Problem, format_path
from .resolve import ChainStep, GroupRef, Resolver
from .root import POD_NAME_ENV, EchelonConfig, SidecarSettings, share
from .tiers import ConcurrencySetting, Echelon, ThinkingConfig
from .units import ConfigUnit, discover_units

__all__ = [
    "API_GROUP",
    "DEFAULT_BASE_URLS",
    "DEFAULT_FALLBACK",
    "EMBEDDING_PROVIDERS",
    "GLOBAL_CONFIG_LABEL",
    "POD_NAME_ENV",
    "ChainStep",
    "CircuitBreaker",
    "ConcurrencyControl",
    "ConcurrencySetting",
    "ConfigError",
    "ConfigUnit",
    "Echelon",
    "EchelonConfig",
    "EffectiveFallback",
    "FallbackConfig",
    "FallbackGraph",
    "FallbackStrategy",
    "GlobalFallback",
    "GroupRef",
    "LoadedConfig",
    "ModelEntry",
    "ModelPrice",
    "Origin",
    "PollingPool",
    "PollingPoolSpec",
    "Problem",
    "ProviderKind",
    "RateLimiting",
    "Resolver",
    "RotationStrategy",
    "SecretKeyRef",
    "SessionAffinity",
    "SidecarSettings",
    "SlidingWindowParams",
    "SlidingWindowSpec",
    "TaskConfig",
    "TaskGroup",
    "TaskGroupSpec",
    "ThinkingConfig",
    "TokenBucketParams",
    "TokenBucketSpec",
    "Visit",
    "WorkflowNode",
    "canonical_name",
    "config_files",
    "discover_units",
    "format_path",
    "heads",
    "kubernetes_name",
    "load_config",
    "load_config_text",
    "share",
]
