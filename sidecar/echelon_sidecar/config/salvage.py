"""Best-effort repair of an entity that failed its schema, so cross-checks can still run.

``echelon validate`` promises every problem in one run. An entity with a typo'd key or an
out-of-range number is already an error; dropping the offending fields (each error's location)
and validating again usually leaves a model good enough to check its references, its models
and its fallback chain against the rest of the config. What cannot be repaired this way is left
out, and references to it are not reported as dangling.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["salvage"]

_ROUNDS = 4


def salvage(model: type[BaseModel], data: Any, error: ValidationError) -> BaseModel | None:
    """``model`` built from ``data`` minus every field an error points at, or None."""
    if not isinstance(data, dict):
        return None
    data = copy.deepcopy(data)
    for _ in range(_ROUNDS):
        locs = sorted({tuple(e["loc"]) for e in error.errors()}, key=_order, reverse=True)
        if not locs or not all(_drop(data, loc) for loc in locs):
            return None
        try:
            return model.model_validate(data)
        except ValidationError as again:
            error = again
    return None


def _order(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # deepest and highest list index first, so deleting one item does not shift another's index
    return (len(loc), tuple((1, p) if isinstance(p, int) else (0, str(p)) for p in loc))


def _drop(data: Any, loc: tuple[Any, ...]) -> bool:
    """Delete the value at ``loc``; False when the location is not in the data as written."""
    node = data
    for i, step in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict):
            if step not in node:
                # tiers written inline (source format) are validated under an ``echelons`` step
                if step == "echelons" and not last:
                    continue
                return False
            if last:
                del node[step]
                return True
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            if last:
                del node[step]
                return True
            node = node[step]
        else:
            return False
    return False
