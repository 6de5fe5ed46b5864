"""The base every config model shares: snake_case fields, camelCase aliases, no unknown keys."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["NAME_PATTERN", "ConfigModel", "canonical_name", "kubernetes_name"]

#: Names of groups, tiers, pools, nodes and models: letters, digits, ``_``, ``-``, ``.`` inside.
NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$"
_K8S_INVALID = re.compile(r"[^a-z0-9-]+")


class ConfigModel(BaseModel):
    """Accepts the source documents' snake_case and the CRDs' camelCase; rejects unknown keys."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        frozen=True,
        str_strip_whitespace=True,
        validate_default=False,
    )


def canonical_name(name: str) -> str:
    """The form used to compare names: ``_`` and ``-`` are equivalent in references."""
    return name.replace("-", "_")


def kubernetes_name(name: str) -> str:
    """A Kubernetes-safe object name: ``thinking_group`` -> ``thinking-group``."""
    out = _K8S_INVALID.sub("-", name.lower().replace("_", "-")).strip("-")
    return out[:253] or "unnamed"
