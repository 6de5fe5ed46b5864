"""Numbers computed from a run: added latency (arm minus direct), ratios, targets."""

from __future__ import annotations

from typing import Any

__all__ = ["derive", "derive_paced", "paced_targets"]

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
    closed = results.get("closed", {})
    c16 = closed.get("16", {})
    echelon16 = (c16.get("echelon") or {}).get("rps")
    derived: dict[str, Any] = {
        "added": _added_latency(results),
        "throughput_at_saturation_rps": _saturation(results),
        "throughput_ratio_vs_litellm": _ratio(echelon16, (c16.get("litellm") or {}).get("rps")),
        "throughput_ratio_vs_bare_proxy": _ratio(echelon16, (c16.get("bare") or {}).get("rps")),
    }
    derived["targets"] = _targets(results, derived)
    if results.get("paced"):
        derived["paced"] = derive_paced(results["paced"].get("points") or {})
        derived["paced_targets"] = paced_targets(results, derived)
    tls = results.get("tls") or {}
    if tls.get("paced"):
        derived["tls_paced"] = derive_paced(tls["paced"])
    tls_added = _tls_added(tls)
    if tls_added:
        derived["tls_added"] = tls_added
    return derived


def _added_latency(results: dict[str, Any]) -> dict[str, Any]:
    """Per section, arm and point: the arm's latency quantiles minus the direct arm's."""
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
    return added


def _saturation(results: dict[str, Any]) -> dict[str, float]:
    """Each arm's highest throughput over the closed and the open loop points."""
    saturation: dict[str, float] = {}
    for section in ("closed", "open"):
        for point in results.get(section, {}).values():
            for arm, r in point.items():
                saturation[arm] = max(saturation.get(arm, 0.0), r.get("rps") or 0.0)
    return saturation


def _tls_added(tls: dict[str, Any]) -> dict[str, Any]:
    """The added latency of the TLS-upstream points, by section, arm and point."""
    out: dict[str, Any] = {}
    for section in ("closed", "stream"):
        for c, point in (tls.get(section) or {}).items():
            floor = point.get("direct")
            if section == "stream":
                floor = (floor or {}).get("ttft")
            for arm, r in point.items():
                if arm != "direct":
                    out.setdefault(section, {}).setdefault(arm, {})[c] = _minus(
                        r.get("ttft") if section == "stream" else r, floor)
    return out


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


_GQ = ("p50_ms", "p99_ms", "p999_ms")


def _added(arm: dict[str, Any] | None, floor: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for q in _GQ:
        a, f = (arm or {}).get(q), (floor or {}).get(q)
        if a is not None and f is not None:
            out[q] = round(a - f, 3)
    return out


def derive_paced(points: dict[str, Any]) -> dict[str, Any]:
    """Per kind, concurrency and arm: TTFT and gap added (vs direct), CPU per 1,000 chunks as
    a multiple of the bare streaming proxy's."""
    out: dict[str, Any] = {}
    for kind, by_c in points.items():
        for c, by_arm in by_c.items():
            direct = by_arm.get("direct") or {}
            floor = (by_arm.get("stream") or {}).get("server_cpu_ms_per_1000_chunks")
            for arm, r in by_arm.items():
                cpu = r.get("server_cpu_ms_per_1000_chunks")
                entry = {"ttft_added": _added(r.get("ttft"), direct.get("ttft")),
                         "gap_added": _added(r.get("gap"), direct.get("gap")),
                         "cpu_vs_stream_proxy": round(cpu / floor, 3) if cpu and floor else None}
                out.setdefault(kind, {}).setdefault(c, {})[arm] = entry
    return out


def paced_targets(results: dict[str, Any], derived: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue-20 stream targets, for Echelon (and LiteLLM's figure beside each)."""
    paced = results.get("paced") or {}
    points = paced.get("points") or {}
    ratios = derived.get("paced") or {}
    rows: list[dict[str, Any]] = []
    for kind, by_c in points.items():
        bar = 1.1 if kind == "openai" else 1.25
        what = "passthrough" if kind == "openai" else "translated"
        label = (paced.get("kinds") or {}).get(kind, kind)
        for c in sorted(by_c, key=int):
            r = ratios.get(kind, {}).get(c, {})
            ech = (r.get("echelon") or {}).get("cpu_vs_stream_proxy")
            lit = (r.get("litellm") or {}).get("cpu_vs_stream_proxy")
            rows.append({"target": f"{what} CPU per chunk vs the bare streaming proxy: {label}, "
                                   f"{c} streams", "bar": f"<= {bar}x",
                         "value": ech, "unit": "x", "met": None if ech is None else ech <= bar,
                         "litellm": lit,
                         "litellm_met": None if lit is None else lit <= bar})
        for c in sorted(by_c, key=int):
            if int(c) < 1000:
                continue
            e, li = by_c[c].get("echelon") or {}, by_c[c].get("litellm") or {}
            rows.append({"target": f"no stream lost at {c} concurrent streams: {label}",
                         "bar": "0 lost", "value": e.get("lost"), "unit": "lost",
                         "met": None if e.get("lost") is None else e["lost"] == 0,
                         "detail": f"{e.get('completed')}/{e.get('started')} completed",
                         "litellm": li.get("lost"),
                         "litellm_met": None if li.get("lost") is None else li["lost"] == 0,
                         "litellm_detail": f"{li.get('completed')}/{li.get('started')} completed"
                         if li else None})
    return rows
