"""What every served request says about how it was served: response headers and log fields."""

from __future__ import annotations

from ..engine import Outcome

__all__ = ["log_fields", "served_headers"]


def served_headers(outcome: Outcome, headers: dict[str, str]) -> None:
    """``X-Echelon-Served-By``, ``-Tier``, ``-Attempts`` and ``-Fallbacks`` into ``headers``."""
    headers["X-Echelon-Served-By"] = outcome.model or ""
    headers["X-Echelon-Tier"] = f"{outcome.group}.{outcome.tier}"
    # inside the serve block (streams) attempt_count is not final yet: count the calls
    headers["X-Echelon-Attempts"] = str(sum(1 for a in outcome.attempts if a.call is not None))
    headers["X-Echelon-Fallbacks"] = str(outcome.fallbacks_taken)


def log_fields(rid: str, target: str, outcome: Outcome | None) -> dict[str, object]:
    """The structured fields of a request's log line (the trail only when there is one)."""
    fields: dict[str, object] = {"request_id": rid, "target": target}
    if outcome is not None:
        fields["attempts"] = outcome.attempt_count
        fields["served_by"] = outcome.model
        fields["trail"] = [a.describe() for a in outcome.attempts]
    return fields
