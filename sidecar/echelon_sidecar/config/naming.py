"""Field names in the CRDs' camelCase, for problems about Kubernetes manifests."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

__all__ = ["camel_path"]


def _field_names() -> frozenset[str]:
    from . import catalog, fallback, groups, limits, nodes, pools, tiers

    names: set[str] = set()
    for module in (catalog, fallback, groups, limits, nodes, pools, tiers):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel):
                names.update(n for n in obj.model_fields if "_" in n)
    return frozenset(names)


_FIELD_NAMES: frozenset[str] | None = None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camel_path(path: Iterable[str | int]) -> tuple[str | int, ...]:
    """``("fallback_config", "fallback_groups", 0)`` -> ``("fallbackConfig", "fallbackGroups", 0)``.

    Only the config model's field names change; map keys (tier, model names) stay as written.
    """
    global _FIELD_NAMES
    if _FIELD_NAMES is None:
        _FIELD_NAMES = _field_names()
    fields = _FIELD_NAMES
    return tuple(_camel(p) if isinstance(p, str) and p in fields else p for p in path)
