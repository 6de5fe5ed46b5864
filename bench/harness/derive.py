"""Numbers computed from a run: added latency (arm minus direct), ratios, targets."""

from __future__ import annotations

from typing import Any

__all__ = ["derive"]

_Q = ("p50_ms", "p90_ms", "p99_ms")


def _minus(arm: dict[str, Any] | None, floor: dict[str, Any] | None) -> dict[str, float] | None:
    if not arm or not floor:
        return None
    out = {}
    for q in _Q:
        if arm.get(q) is not None and floor.get(q) is not None:
            out[q] = round(arm[q] - floor[q], 3)
    return out or None


def _ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 2)


def derive(results: dict[str, Any]) -> dict[str, Any]:
    added: dict[str, Any] = {"closed": {}, "closed_default_idle": {}, "stream_ttft": {},
                             "slow": {}, "open": {}}
    for section, key in (("closed", None), ("closed_default_idle", None), ("slow", None),
                         ("stream", "ttft")):
        target = "stream_ttft" if section == "stream" else section
        for c, point in results.get(section, {}).items():
            floor = point.get("direct")
            if key:
                floor = floor.get(key) if floor else None
            for arm, r in point.items():
                if arm == "direct":
                    continue
                added[target].setdefault(arm, {})[c] = _minus(r.get(key) if key else r, floor)
    for rate, point in results.get("open", {}).items():
        floor = point.get("direct")
        for arm, r in point.items():
            if arm != "direct" and floor and not floor.get("saturated"):
                added["open"].setdefault(arm, {})[rate] = _minus(r, floor)

    closed = results.get("closed", {})
    c16 = closed.get("16", {})
    saturation = {}
    for point in closed.values():
        for arm, r in point.items():
            saturation[arm] = max(saturation.get(arm, 0.0), r.get("rps") or 0.0)
    for point in results.get("open", {}).values():
        for arm, r in point.items():
            saturation[arm] = max(saturation.get(arm, 0.0), r.get("rps") or 0.0)
    echelon16 = (c16.get("echelon") or {}).get("rps")
    derived: dict[str, Any] = {
        "added": added,
        "throughput_at_saturation_rps": saturation,
        "throughput_ratio_vs_litellm": _ratio(echelon16, (c16.get("litellm") or {}).get("rps")),
        "throughput_ratio_vs_bare_proxy": _ratio(echelon16, (c16.get("bare") or {}).get("rps")),
    }
    derived["targets"] = _targets(results, derived)
    return derived


def _targets(results: dict[str, Any], derived: dict[str, Any]) -> list[dict[str, Any]]:
    added = derived["added"]
    ech_c1 = (added["closed"].get("echelon") or {}).get("1") or {}
    ttft = added["stream_ttft"].get("echelon") or {}
    ttft_c1 = ttft.get("1") or {}
    fo = results.get("failover", {}).get("echelon", {})
    rows = [
        ("throughput at c=16 vs the bare proxy (default loop)", ">= 1.0x",
         derived["throughput_ratio_vs_bare_proxy"], lambda v: v >= 1.0, "x"),
        ("added p50 at c=1", "< 0.8 ms", ech_c1.get("p50_ms"), lambda v: v < 0.8, " ms"),
        ("added p99 at c=1", "< 1.5 ms", ech_c1.get("p99_ms"), lambda v: v < 1.5, " ms"),
        ("failover to tier 2 (503), added p50", "< 2 ms", fo.get("failover_503_added_p50_ms"),
         lambda v: v < 2.0, " ms"),
        ("failover to tier 2 (connection refused), added p50", "< 2 ms",
         fo.get("failover_refused_added_p50_ms"), lambda v: v < 2.0, " ms"),
        ("streaming time to first token, added p50 at c=1", "< 1 ms", ttft_c1.get("p50_ms"),
         lambda v: v < 1.0, " ms"),
    ]
    halting = (added["closed_default_idle"].get("echelon") or {}).get("1") or {}
    if halting:
        bare = (added["closed_default_idle"].get("bare") or {}).get("1") or {}
        rows.insert(3, (
            "added p99 at c=1, idle vCPUs halting (the machine's default; for reference, the "
            f"bare proxy's: {bare.get('p99_ms', '–')} ms)", "< 1.5 ms", halting.get("p99_ms"),
            lambda v: v < 1.5, " ms"))
    out = []
    for name, target, value, check, unit in rows:
        out.append({"target": name, "bar": target, "value": value, "unit": unit.strip(),
                    "met": None if value is None else bool(check(value))})
    ops = results.get("operator", {}).get("results") or []
    for case in ops:
        if case.get("groups") == 1000:
            value = case.get("configmaps_right_s")
            applied = case.get("apply_s")
            after = None if value is None or applied is None else round(value - applied, 2)
            out.append({"target": f"operator renders 1000 TaskGroups ({case.get('mode')}, "
                                  f"{case.get('pools')} pools), from the start of kubectl apply"
                                  + (f"; {after} s after kubectl apply returned"
                                     if after is not None else ""),
                        "bar": "< 60 s", "value": value, "unit": "s",
                        "met": None if value is None else value < 60})
    return out
