"""Deprecated config, logged when a config loads.

Validation lists a deprecated section among a config's warnings (``echelon validate`` shows
them). A sidecar's operator reads its logs instead, so a config that loads with one is also
logged at WARNING on the ``echelon.config`` logger -- once per load (start-up and each reload),
never per request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .root import EchelonConfig

if TYPE_CHECKING:
    from .loader import Origin

__all__ = ["log_deprecated"]

_log = logging.getLogger("echelon.config")


def log_deprecated(config: EchelonConfig, origins: Mapping[tuple[str, str], Origin]) -> None:
    """Log each deprecated section of a config that just loaded (``origins`` say where)."""
    if config.global_fallback is None:
        return
    origin = origins.get(("global_fallback", ""))
    where = origin.problem("").where if origin is not None else "the config"
    _log.warning("%s: global_fallback is deprecated: its values apply to every task group that "
                 "does not set them itself; run `echelon migrate` to write them into each group",
                 where)
