"""The names the operator writes into the cluster: labels, annotations, containers, volumes.

One place, so builders, handlers, RBAC, docs and tests agree.
"""

from __future__ import annotations

import hashlib

from echelon_sidecar.config import API_GROUP, GLOBAL_CONFIG_LABEL

__all__ = [
    "ADMIN_PORT_NAME",
    "API_GROUP",
    "API_VERSION",
    "CONFIG_KEY",
    "CONFIG_MOUNT_PATH",
    "CONFIG_VERSION_ANNOTATION",
    "CONFIG_VOLUME",
    "DATA_PORT_NAME",
    "GLOBAL_CONFIG_LABEL",
    "GLOBAL_CONFIG_VALUE",
    "INJECTED_ANNOTATION",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "POOL_LABEL",
    "SECRET_ENV_PREFIX",
    "SECRET_REFS_ANNOTATION",
    "SIDECAR_CONTAINER",
    "VERSION",
    "configmap_name",
]

VERSION = "v1alpha1"
API_VERSION = f"{API_GROUP}/{VERSION}"

#: On a Deployment: serve this pool from a sidecar in every pod.
POOL_LABEL = f"{API_GROUP}/pool"
#: On a Deployment the operator changed: the pool whose sidecar it injected.
INJECTED_ANNOTATION = f"{API_GROUP}/injected-pool"
#: On a rendered ConfigMap: the hash of the config it holds (also in the pool's status).
CONFIG_VERSION_ANNOTATION = f"{API_GROUP}/config-version"
#: On a rendered ConfigMap: JSON list of {env, name, key}: the Secret keys its models need.
SECRET_REFS_ANNOTATION = f"{API_GROUP}/secret-refs"
#: ``echelon.dev/config: global`` marks a ConfigMap holding global config.
GLOBAL_CONFIG_VALUE = "global"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "echelon-operator"

SIDECAR_CONTAINER = "echelon-sidecar"
CONFIG_VOLUME = "echelon-config"
CONFIG_MOUNT_PATH = "/etc/echelon"
CONFIG_KEY = "config.yaml"
DATA_PORT_NAME = "echelon-http"
ADMIN_PORT_NAME = "echelon-admin"
SECRET_ENV_PREFIX = "ECHELON_KEY_"


def configmap_name(pool: str) -> str:
    """The ConfigMap rendered for a pool: ``echelon-pool-<pool>`` (hashed when too long)."""
    name = f"echelon-pool-{pool}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(pool.encode()).hexdigest()[:10]
    return f"{name[:242]}-{digest}"
