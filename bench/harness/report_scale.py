"""The sections of docs/benchmarks.md on realistic traffic: paced long streams, a TLS
upstream, the operator over thousands of pods, and one sidecar's footprint."""

from __future__ import annotations

from typing import Any

from .report_text import ARM_LABELS, fmt, rps

__all__ = ["footprint_section", "operator_scale_section", "operator_scale_targets",
           "paced_section", "tls_section"]


def _gq(d: dict[str, Any] | None) -> str:
    d = d or {}
    return " / ".join(fmt(d.get(q)) for q in ("p50_ms", "p99_ms", "p999_ms"))


def _paced_table(points: dict[str, Any], derived: dict[str, Any], arms: list[str],
                 kind: str) -> list[str]:
    lines = ["| arm | streams | completed / started | lost | TTFT p50 / p99 / p99.9 ms | "
             "TTFT added | gap p50 / p99 / p99.9 ms | gap added | server CPU ms per 1,000 "
             "chunks | vs bare streaming proxy | server core used | generator core used |",
             "|---|---:|---|---:|---|---|---|---|---:|---:|---:|---:|"]
    by_c = points.get(kind) or {}
    for arm in arms:
        for c in sorted(by_c, key=int):
            r = by_c[c].get(arm)
            if not r:
                continue
            if "error" in r:
                lines.append(f"| {ARM_LABELS.get(arm, arm)} | {c} | error: {r['error'][:120]} "
                             "| | | | | | | | | |")
                continue
            d = ((derived.get(kind) or {}).get(c) or {}).get(arm) or {}
            direct = arm == "direct"
            lost = r.get("lost")
            lost_by = r.get("lost_by") or {}
            lost_cell = f"{lost}" + (f" ({', '.join(f'{k} {v}' for k, v in lost_by.items())})"
                                     if lost else "")
            lines.append(
                f"| {ARM_LABELS.get(arm, arm)} | {c} | {r.get('completed')} / {r.get('started')} "
                f"| {lost_cell} | {_gq(r.get('ttft'))} | "
                f"{'floor' if direct else _gq(d.get('ttft_added'))} | {_gq(r.get('gap'))} | "
                f"{'floor' if direct else _gq(d.get('gap_added'))} | "
                f"{fmt(r.get('server_cpu_ms_per_1000_chunks'), 1)}{' (upstream)' if direct else ''}"
                f" | {fmt(d.get('cpu_vs_stream_proxy'))}"
                f"{'x' if d.get('cpu_vs_stream_proxy') else ''}"
                f" | {fmt(r.get('server_cpu_share'))} | {fmt(r.get('client_cpu_share'))} |"
            )
    return lines


def _paced_rounds(points: dict[str, Any], arms: list[str], kind: str) -> list[str]:
    rows = []
    for c, by_arm in sorted((points.get(kind) or {}).items(), key=lambda kv: int(kv[0])):
        for arm in arms:
            runs = (by_arm.get(arm) or {}).get("rounds")
            if runs:
                cells = "; ".join(fmt(r.get("server_cpu_ms_per_1000_chunks"), 1) for r in runs)
                rows.append(f"| {ARM_LABELS.get(arm, arm)} | {c} | {cells} |")
    if not rows:
        return []
    return ["Server CPU ms per 1,000 chunks in every round (the table shows each arm's "
            "least disturbed round):", "", "| arm | streams | rounds |", "|---|---:|---|",
            *rows, ""]


def paced_section(results: dict[str, Any], derived: dict[str, Any]) -> list[str]:
    paced = results.get("paced") or {}
    points = paced.get("points") or {}
    if not points:
        return []
    arms = [a for a in results["meta"]["plan"]["arms"]]
    out = [
        "## Paced streams: hundreds of long streams at once", "",
        f"Each stream is {paced.get('chunks')} content events at {fmt(paced.get('rate'), 0)} a "
        "second from the paced upstream (`bench/harness/paced.py`: the fake provider's own "
        "events in each provider's wire format, written at their due times from timer "
        "callbacks on uvloop). A point's first streams start evenly over "
        f"{fmt(paced.get('ramp'), 1)} s (not recorded); the streams that start in the next "
        f"{fmt(paced.get('duration'), 1)} s are recorded and read to their end, each connection "
        "sending its next stream when the last ended. The generator "
        "(`bench/harness/streamgen.py`, raw asyncio protocols) runs in its own process on the "
        "client core with the upstream; its share of that core is in the last column. Direct "
        "and the two bare proxies send the upstream's own request and relay its stream "
        "unchanged; Echelon and LiteLLM get the caller's request and translate. TTFT is the "
        "time to the first `data:` field; a gap is the time between two events as they "
        "arrive (events that arrive in one read: gap 0); added = the arm's percentile minus "
        "direct's. Server CPU is the gateway process's CPU time over the whole point divided "
        "by the content events the upstream wrote meanwhile (direct: the upstream's own).", "",
        "### Targets (issue 20, streams)", "",
        "| target | bar | Echelon | met | LiteLLM | met |", "|---|---|---:|---|---:|---|"]
    for t in derived.get("paced_targets") or []:
        def cell(v: Any, unit: str, detail: Any) -> str:
            if v is None:
                return "–"
            return f"{v} {unit}" + (f" ({detail})" if detail else "")

        def met(m: Any) -> str:
            return "–" if m is None else ("yes" if m else "**no**")
        out.append(
            f"| {t['target']} | {t['bar']} | {cell(t['value'], t['unit'], t.get('detail'))}"
            f" | {met(t['met'])} | {cell(t.get('litellm'), t['unit'], t.get('litellm_detail'))}"
            f" | {met(t.get('litellm_met'))} |"
        )
    out.append("")
    for kind, label in (paced.get("kinds") or {}).items():
        out += [f"### {label}", "", *_paced_table(points, derived.get("paced") or {}, arms, kind),
                "", *_paced_rounds(points, arms, kind)]
    rss = paced.get("rss_mb") or {}
    if rss:
        out += ["Peak RSS over the paced points, MB: " + ", ".join(
            f"{ARM_LABELS.get(k, k)} {fmt(v, 1)}" for k, v in rss.items()) + ".", ""]
    return out


def _tls_table(results: dict[str, Any], derived: dict[str, Any], section: str) -> list[str]:
    tls = results.get("tls") or {}
    points = tls.get(section) or {}
    plain = results.get("closed" if section == "closed" else "stream") or {}
    arms = list(results["meta"]["plan"]["arms"])
    key = "ttft" if section == "stream" else None
    lines = ["| arm | c | req/s | p50 ms | p99 ms | added p50 | added p99 | errors | "
             "server CPU µs/req | same point over HTTP, µs/req | upstream TLS handshakes per "
             "1,000 requests |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    added = (derived.get("tls_added") or {}).get(section) or {}
    for arm in arms:
        for c, point in sorted(points.items(), key=lambda kv: int(kv[0])):
            r = point.get(arm)
            if not r:
                continue
            lat = (r.get(key) if key else r) or {}
            add = (added.get(arm) or {}).get(c) or {}
            ref = (plain.get(c) or {}).get(arm) or {}
            lines.append(
                f"| {ARM_LABELS.get(arm, arm)} | {c} | {rps(r.get('rps'))} | "
                f"{fmt(lat.get('p50_ms'))} | {fmt(lat.get('p99_ms'))} | "
                f"{'–' if arm == 'direct' else fmt(add.get('p50_ms'))} | "
                f"{'–' if arm == 'direct' else fmt(add.get('p99_ms'))} | "
                f"{r.get('error_count', 0)} | "
                f"{fmt(r.get('server_cpu_us_per_request'), 0)} | "
                f"{fmt(ref.get('server_cpu_us_per_request'), 0)} | "
                f"{fmt(r.get('handshakes_per_1000_requests'), 1)} |"
            )
    return lines


def tls_section(results: dict[str, Any], derived: dict[str, Any]) -> list[str]:
    tls = results.get("tls") or {}
    if not tls:
        return []
    arms = list(results["meta"]["plan"]["arms"])
    out = [
        "## TLS upstreams",
        "",
        f"The same points with the upstream over HTTPS: {tls.get('ca')}, made at run time; "
        "every arm trusts it (the bare proxies with `--cafile`, Echelon and LiteLLM through "
        "`SSL_CERT_FILE`, the generator for the direct arm with the CA file) and none could "
        "reach the upstream otherwise. The upstream counts the connections it accepted (each "
        "a TLS handshake) per 1,000 requests it answered: a client that reuses its "
        "connections makes about one per connection of the load generator's, whatever the "
        "number of requests. Clients reach the gateways over plain HTTP on loopback, as an "
        "application reaches its sidecar in a pod.",
        "",
        "### Closed loop, non-streaming, over HTTPS",
        "",
        *_tls_table(results, derived, "closed"),
        "",
    ]
    if tls.get("stream"):
        out += ["### Streams (5 chunks at once), time to first token, over HTTPS", "",
                *_tls_table(results, derived, "stream"), ""]
    if tls.get("paced"):
        tp = derived.get("tls_paced") or {}
        out += ["### Paced passthrough streams over HTTPS", "",
                *_paced_table(tls["paced"], tp, arms, "openai"), "",
                "Upstream TLS handshakes per 1,000 streams: " + ", ".join(
                    f"{ARM_LABELS.get(a, a)} {fmt(r.get('handshakes_per_1000_requests'), 1)}"
                    for by_c in tls["paced"].get("openai", {}).values()
                    for a, r in by_c.items()) + ".", ""]
    return out


def operator_scale_section(results: dict[str, Any]) -> list[str]:
    sc = results.get("operator_scale")
    if not sc:
        return []
    out = ["## Operator over thousands of pods (simulated sidecars)", ""]
    if "skipped" in sc:
        return [*out, f"**Not measured in this run:** {sc['skipped']}", ""]
    st = sc.get("settings") or {}
    out += [
        "Measured with `bench/operator_scale.py` on the local API server (the same 2-core "
        f"machine): per case {st.get('pools')} PollingPools (one TaskGroup of two models each) "
        f"and {st.get('deployments_per_pool')} labelled Deployments per pool, N pods in all. "
        "The Deployments are paused (the controller-manager makes no ReplicaSets); once the "
        "operator has injected its sidecar into their templates, the benchmark creates the "
        "pods from those templates and sets them Running with IPs in 127.10.0.0/16 through "
        "`pods/status`, as a kubelet would. One farm process "
        "(`bench/harness/sidecar_farm.py`) answers every pod IP's admin `/v1/status` with "
        "its own document (docs/status-api.md; every tenth sidecar has an open circuit). The "
        "operator reaches the API server through a counting proxy "
        "(`bench/harness/kube_proxy.py`) that timestamps every write. Its settings are its "
        f"defaults: a poll every {fmt(st.get('interval_s'), 0)} s, {st.get('poll_concurrency')} "
        f"sidecars at a time, {fmt(st.get('poll_timeout_s'), 0)} s per poll. A round runs from "
        "its first pod list to its last poll or write; its writes are those until the next "
        "round starts. Steady rounds changed nothing; then 1 % of the sidecars opened a "
        "circuit (a change to write), and one more steady round followed.", "",
        "### Targets (issue 20, operator)", "",
        "| target | bar | measured | met |", "|---|---|---:|---|"]
    for t in operator_scale_targets(sc):
        met = "–" if t["met"] is None else ("yes" if t["met"] else "**no**")
        out.append(f"| {t['target']} | {t['bar']} | {t['value']} | {met} |")
    out += ["", "### Growth", "",
            "| pods | pools | Deployments | pods created s | set Running s | steady round s "
            "(median / max) | of which polling s | operator CPU s per round (max) | cores "
            "during a round (max) | CPU s per poll interval | RSS MB (peak) | writes in a "
            "steady round (max) | writes after 1 % opened a circuit |",
            "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    notes: list[str] = []
    for r in sc.get("results") or []:
        steady = [x for x in r.get("rounds") or [] if x["phase"].startswith("steady")]
        change = r.get("change") or {}
        s_ = r.get("steady") or {}
        polls = max((x.get("polls_s") or 0 for x in steady), default=None)
        per_interval = max((x.get("cpu_s_per_interval") or 0 for x in steady), default=None)
        kinds = ", ".join(f"{k} {v}" for k, v in (change.get("writes_by_kind") or {}).items())
        out.append(
            f"| {r['pods']:,} | {r['pools']} | {r['deployments']} | {fmt(r.get('pods_created_s'))}"
            f" | {fmt(r.get('pods_running_s'))} | {fmt(s_.get('round_s_median'))} / "
            f"{fmt(s_.get('round_s_max'))} | {fmt(polls)} | {fmt(s_.get('cpu_s_per_round_max'))} | "
            f"{fmt(s_.get('cores_during_round_max'))} | {fmt(per_interval)} | "
            f"{fmt(r.get('operator_rss_mb_peak'), 1)} | {s_.get('writes_max')} | "
            f"{change.get('writes', '–')} ({kinds or 'none'}; "
            f"{change.get('circuits_opened', '–')} circuits opened) |")
        if r.get("writes_over_steady_phase") is not None:
            notes.append(f"{r['pods']:,} pods: {r['writes_over_steady_phase']} writes over the "
                         "whole steady phase (every round of it, seen or not).")
    out += ["", *(f"- {x}" for x in notes), "", "Every round seen, in order (kopf caches the "
            "operator's liveness probe for 10 s, so a round may go unseen; those seen are "
            "timed by the operator's own clock):", "",
            "| pods | round | phase | s | polling s | sidecars polled | CPU s | cores | "
            "writes |", "|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in sc.get("results") or []:
        for x in r.get("rounds") or []:
            kinds = ", ".join(f"{k} {v}" for k, v in (x.get("writes_by_kind") or {}).items())
            out.append(f"| {r['pods']:,} | {x['round']} | {x['phase']} | {fmt(x['seconds'])} | "
                       f"{fmt(x.get('polls_s'))} | {x.get('sidecars_polled')} | "
                       f"{fmt(x.get('cpu_s'))} | {fmt(x.get('cores_during_round'))} | "
                       f"{x['writes']}{' (' + kinds + ')' if kinds else ''} |")
    return [*out, ""]


def footprint_section(results: dict[str, Any]) -> list[str]:
    """One sidecar's footprint (bench/footprint.py, `--sections footprint`)."""
    from bench import footprint

    fp = results.get("footprint")
    if not fp:
        return []
    head = ["## Footprint of one sidecar", ""]
    if "skipped" in fp:
        return [*head, f"Not measured: {fp['skipped']}", ""]
    return [*head,
            "A sidecar process started on each config until its `/readyz` answers, then left "
            "idle; then one holding open streams to a slow upstream (`python -m bench "
            "footprint` runs this alone).", "", footprint.render(fp), ""]


def operator_scale_targets(sc: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for r in sc.get("results") or []:
        s_ = r.get("steady") or {}
        n = r["pods"]
        if s_.get("round_s_max") is not None:
            rows.append({"target": f"a poll round over {n:,} sidecars (slowest steady round)",
                         "bar": "<= 10 s", "value": f"{s_['round_s_max']:.2f} s",
                         "met": s_["round_s_max"] <= 10})
            rows.append({"target": f"CPU during a round over {n:,} sidecars (busiest round)",
                         "bar": "< 1 core", "value": f"{s_['cores_during_round_max']:.2f} cores",
                         "met": s_["cores_during_round_max"] < 1})
        if r.get("operator_rss_mb_peak") is not None:
            rows.append({"target": f"operator memory with {n:,} pods (peak RSS)",
                         "bar": "< 500 MB", "value": f"{r['operator_rss_mb_peak']:.1f} MB",
                         "met": r["operator_rss_mb_peak"] < 500})
        if s_.get("writes_max") is not None:
            rows.append({"target": f"API writes in a round when nothing changed ({n:,} pods)",
                         "bar": "0", "value": str(s_["writes_max"]),
                         "met": s_["writes_max"] == 0})
    return rows
