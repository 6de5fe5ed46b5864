"""The operator's settings: from CLI flags, else ``ECHELON_*`` environment variables, else defaults.

Every setting has one flag and one variable (see :data:`ENV` and ``echelon-operator --help``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from echelon_sidecar.errors import EchelonError

from . import __version__

__all__ = [
    "DEFAULT_IMAGE",
    "DEFAULT_RESOURCES",
    "ENV",
    "OperatorSettings",
    "SettingsError",
    "SidecarMode",
    "configure",
    "current",
]

DEFAULT_IMAGE = f"echelon-sidecar:{__version__}"
DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"memory": "256Mi"},
}
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
LogFormat = Literal["plain", "full", "json"]
#: how the sidecar is injected: ``native`` (an init container with ``restartPolicy: Always``,
#: Kubernetes 1.29+), ``container`` (a regular container), ``auto`` (native when the API
#: server, asked at start-up, is 1.29 or newer)
SidecarMode = Literal["auto", "native", "container"]

#: setting -> environment variable
ENV: dict[str, str] = {
    "namespaces": "ECHELON_NAMESPACES",
    "all_namespaces": "ECHELON_ALL_NAMESPACES",
    "sidecar_image": "ECHELON_SIDECAR_IMAGE",
    "image_pull_policy": "ECHELON_SIDECAR_IMAGE_PULL_POLICY",
    "sidecar_resources": "ECHELON_SIDECAR_RESOURCES",
    "sidecar_env": "ECHELON_SIDECAR_ENV",
    "sidecar_mode": "ECHELON_SIDECAR_MODE",
    "data_port": "ECHELON_SIDECAR_DATA_PORT",
    "admin_port": "ECHELON_SIDECAR_ADMIN_PORT",
    "poll_interval": "ECHELON_POLL_INTERVAL",
    "poll_timeout": "ECHELON_POLL_TIMEOUT",
    "poll_concurrency": "ECHELON_POLL_CONCURRENCY",
    "log_level": "ECHELON_LOG_LEVEL",
    "log_format": "ECHELON_LOG_FORMAT",
    "operator_namespace": "ECHELON_OPERATOR_NAMESPACE",
    "global_config_name": "ECHELON_GLOBAL_CONFIG",
    "peering": "ECHELON_PEERING",
    "peering_priority": "ECHELON_PEERING_PRIORITY",
    "liveness": "ECHELON_LIVENESS",
}


class SettingsError(EchelonError, ValueError):
    """A setting has a value the operator cannot use; the message names the flag/variable."""


@dataclass(frozen=True)
class OperatorSettings:
    """What the operator watches, what it injects, and how it polls sidecars."""

    #: namespaces to watch (namespaced mode); empty with ``all_namespaces`` = cluster-wide
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = False
    #: the sidecar container injected into labelled Deployments
    sidecar_image: str = DEFAULT_IMAGE
    image_pull_policy: PullPolicy = "IfNotPresent"
    sidecar_resources: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    #: extra environment of every injected sidecar (name -> value), e.g. the standard
    #: OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_SERVICE_NAME that turn tracing on
    sidecar_env: Mapping[str, str] = field(default_factory=dict)
    #: native sidecars (init containers that keep running) or regular containers; ``auto``
    #: decides by the API server's version at start-up
    sidecar_mode: SidecarMode = "auto"
    data_port: int = 8080
    admin_port: int = 9090
    #: sidecar status polling (seconds, seconds, parallel requests)
    poll_interval: float = 10.0
    poll_timeout: float = 2.0
    poll_concurrency: int = 32
    log_level: str = "INFO"
    log_format: LogFormat = "full"
    #: the operator's own namespace and its global-config ConfigMap (from the chart's values)
    operator_namespace: str | None = None
    global_config_name: str = "echelon-global-config"
    #: kopf peering name (None: --standalone, no peering)
    peering: str | None = None
    #: this replica's peering priority (the highest live one works; None: random at start)
    peering_priority: int | None = None
    #: kopf liveness endpoint, e.g. http://0.0.0.0:8081/healthz (None: off)
    liveness: str | None = None

    def __post_init__(self) -> None:
        if self.all_namespaces and self.namespaces:
            raise SettingsError("give --namespace or --all-namespaces, not both")
        for name in ("data_port", "admin_port"):
            port = getattr(self, name)
            if not 1 <= port <= 65535:
                raise SettingsError(f"{name} {port} is not a TCP port (1-65535)")
        if self.data_port == self.admin_port:
            raise SettingsError("the sidecar's data port and admin port must differ")
        if self.poll_interval <= 0 or self.poll_timeout <= 0:
            raise SettingsError("poll interval and poll timeout must be > 0 seconds")
        if self.poll_concurrency < 1:
            raise SettingsError("poll concurrency must be >= 1")
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise SettingsError(
                f"image pull policy {self.image_pull_policy!r}: use Always, IfNotPresent or Never"
            )
        if self.sidecar_mode not in ("auto", "native", "container"):
            raise SettingsError(
                f"sidecar mode {self.sidecar_mode!r}: use auto, native or container")
        if self.log_format not in ("plain", "full", "json"):
            raise SettingsError(f"log format {self.log_format!r}: use plain, full or json")
        if not isinstance(self.sidecar_resources, Mapping):
            raise SettingsError("sidecar resources must be a mapping (requests/limits)")
        _check_env(self.sidecar_env)

    @property
    def clusterwide(self) -> bool:
        return self.all_namespaces or not self.namespaces

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Settings from ``ECHELON_*`` variables (unset ones keep their defaults)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, var in ENV.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            values[name] = _parse(name, var, raw.strip())
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> OperatorSettings:
        """A copy with the given (non-None) values replaced, e.g. from CLI flags."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _parse(name: str, var: str, raw: str) -> Any:
    try:
        if name == "namespaces":
            return tuple(ns.strip() for ns in raw.split(",") if ns.strip())
        if name == "all_namespaces":
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError("expected true or false")
            return raw.lower() in ("1", "true", "yes")
        if name in ("data_port", "admin_port", "poll_concurrency", "peering_priority"):
            return int(raw)
        if name in ("poll_interval", "poll_timeout"):
            return float(raw)
        if name == "sidecar_env":
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object of names to values, such as "
                                 "{\"OTEL_EXPORTER_OTLP_ENDPOINT\": \"http://collector:4318\"}")
            return value
        if name == "sidecar_resources":
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError('expected a JSON object such as {"limits": {"memory": "256Mi"}}')
            return value
    except ValueError as exc:
        raise SettingsError(f"{var}={raw!r}: {exc}") from None
    return raw


_RESERVED_ENV = ("ECHELON_",)


def _check_env(env: Mapping[str, Any]) -> None:
    if not isinstance(env, Mapping):
        raise SettingsError("sidecar env must be a mapping of names to values")
    for name, value in env.items():
        if not isinstance(name, str) or not name or not name.replace("_", "a").isalnum():
            raise SettingsError(f"sidecar env: {name!r} is not an environment variable name "
                                "(letters, digits and _)")
        if name.startswith(_RESERVED_ENV):
            raise SettingsError(f"sidecar env: {name} is set by the operator itself; the "
                                "ECHELON_ prefix is reserved")
        if not isinstance(value, str):
            raise SettingsError(f"sidecar env: the value of {name} must be a string "
                                f"(got {type(value).__name__}); quote it")


_current: OperatorSettings | None = None


def configure(settings: OperatorSettings) -> None:
    """Make ``settings`` the process's settings (``echelon-operator`` does this from its flags)."""
    global _current
    _current = settings


def current() -> OperatorSettings:
    """The configured settings, else those of the environment (``kopf run -m ...``)."""
    global _current
    if _current is None:
        _current = OperatorSettings.from_env()
    return _current
