"""docs/benchmarks.md and its plots, generated from one run's results."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .report_scale import (
    footprint_section,
    operator_scale_section,
    paced_section,
    tls_section,
)
from .report_text import ARM_LABELS, fmt, rps

__all__ = ["plot", "render"]

_COLORS = {"direct": "#555555", "bare": "#1f77b4", "stream": "#9467bd", "echelon": "#d62728",
           "litellm": "#2ca02c"}


def plot(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """PNG plots: latency vs load per arm (closed and open loop), stream TTFT."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    arms = list(results["meta"]["arms"])

    def closed_plot(section: str, key: str | None, title: str, name: str) -> None:
        points = results.get(section) or {}
        if not points:
            return
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        for ax, q in zip(axes, ("p50_ms", "p99_ms"), strict=True):
            for arm in arms:
                xs, ys = [], []
                for c, point in sorted(points.items(), key=lambda kv: int(kv[0])):
                    r = point.get(arm)
                    r = r.get(key) if (r and key) else r
                    if r and r.get(q) is not None:
                        xs.append(int(c))
                        ys.append(r[q])
                if xs:
                    ax.plot(xs, ys, marker="o", label=ARM_LABELS.get(arm, arm),
                            color=_COLORS.get(arm))
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("concurrent connections (closed loop)")
            ax.set_ylabel(f"{q[:3]} latency (ms)")
            ax.set_title(f"{title}: {q[:3]}")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend(fontsize=8)
        path = out_dir / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    closed_plot("closed", None, "non-streaming", "closed_loop_latency.png")
    closed_plot("stream", "ttft", "streaming, time to first token", "stream_ttft.png")

    opened = results.get("open") or {}
    if opened:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        for ax, q in zip(axes, ("p50_ms", "p99_ms"), strict=True):
            for arm in arms:
                xs, ys = [], []
                for rate, point in sorted(opened.items(), key=lambda kv: float(kv[0])):
                    r = point.get(arm)
                    if r and r.get(q) is not None:
                        xs.append(float(rate))
                        ys.append(r[q])
                if xs:
                    ax.plot(xs, ys, marker="o", label=ARM_LABELS.get(arm, arm),
                            color=_COLORS.get(arm))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("offered load (requests/s, open loop)")
            ax.set_ylabel(f"{q[:3]} latency (ms)")
            ax.set_title(f"open loop: {q[:3]} (last point of a line: saturated)")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend(fontsize=8)
        path = out_dir / "open_loop_latency.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _closed_table(results: dict[str, Any], derived: dict[str, Any], section: str,
                  key: str | None, added_key: str) -> list[str]:
    points = results.get(section) or {}
    arms = list(results["meta"]["arms"])
    lines = ["| arm | c | req/s | p50 ms | p90 ms | p99 ms | added p50 | added p90 | "
             "added p99 | errors | server CPU µs/req |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for arm in arms:
        for c, point in sorted(points.items(), key=lambda kv: int(kv[0])):
            r = point.get(arm)
            if not r:
                continue
            lat = r.get(key) if key else r
            lat = lat or {}
            add = (derived["added"][added_key].get(arm) or {}).get(c) or {}
            lines.append(
                f"| {ARM_LABELS.get(arm, arm)} | {c} | {rps(r.get('rps'))} | "
                f"{fmt(lat.get('p50_ms'))} | {fmt(lat.get('p90_ms'))} | {fmt(lat.get('p99_ms'))} | "
                f"{fmt(add.get('p50_ms'))} | {fmt(add.get('p90_ms'))} | {fmt(add.get('p99_ms'))} | "
                f"{r.get('error_count', 0)} | {fmt(r.get('server_cpu_us_per_request'), 0)} |")
    return lines


def _main_table(results: dict[str, Any], derived: dict[str, Any]) -> list[str]:
    closed = results.get("closed") or {}
    arms = list(results["meta"]["arms"])
    c1, c16 = closed.get("1") or {}, closed.get("16") or {}
    sat = derived["throughput_at_saturation_rps"]
    rss = results.get("rss_mb") or {}
    lines = ["| arm | c=1 p50 / p99 ms | c=1 added p50 / p99 ms | c=16 req/s | "
             "c=16 p50 / p99 ms | c=16 server CPU µs/req | best req/s (saturation) | "
             "peak RSS MB |",
             "|---|---|---|---:|---|---:|---:|---:|"]
    for arm in arms:
        a, b = c1.get(arm) or {}, c16.get(arm) or {}
        add = (derived["added"]["closed"].get(arm) or {}).get("1") or {}
        added = "floor" if arm == "direct" else \
            f"{fmt(add.get('p50_ms'))} / {fmt(add.get('p99_ms'))}"
        r = rss.get("upstream") if arm == "direct" else rss.get(arm)
        lines.append(
            f"| {ARM_LABELS.get(arm, arm)} | {fmt(a.get('p50_ms'))} / {fmt(a.get('p99_ms'))} | "
            f"{added} | {rps(b.get('rps'))} | {fmt(b.get('p50_ms'))} / {fmt(b.get('p99_ms'))} | "
            f"{fmt(b.get('server_cpu_us_per_request'), 0)}"
            f"{' (upstream)' if arm == 'direct' else ''} | {rps(sat.get(arm))} | {fmt(r, 1)}"
            f"{' (upstream)' if arm == 'direct' else ''} |"
        )
    return lines


def _rounds_table(results: dict[str, Any], section: str = "closed") -> list[str]:
    """Every round of the non-streaming closed-loop points: req/s, p50 ms."""
    points = results.get(section) or {}
    arms = list(results["meta"]["arms"])
    rows = []
    for c, point in sorted(points.items(), key=lambda kv: int(kv[0])):
        for arm in arms:
            runs = (point.get(arm) or {}).get("rounds")
            if runs:
                cells = "; ".join(f"{rps(r.get('rps'))} req/s, p50 {fmt(r.get('p50_ms'))} / "
                                  f"p99 {fmt(r.get('p99_ms'))} ms" for r in runs)
                rows.append(f"| {ARM_LABELS.get(arm, arm)} | {c} | {cells} |")
    if not rows:
        return []
    return ["All rounds, in the order they ran (each round ran every arm in turn):", "",
            "| arm | c | rounds: req/s, p50 / p99 |", "|---|---:|---|", *rows, ""]


def _idle_section(results: dict[str, Any], derived: dict[str, Any]) -> list[str]:
    """c=1 measured twice: idle CPUs polling (the main tables) and as the machine idles."""
    idle = results["meta"]["machine"].get("cpu_idle") or {}
    if not results.get("closed_default_idle"):
        return [f"CPU idle while measuring: {idle.get('while_measuring', 'not recorded')}.", ""]
    states = ", ".join(idle.get("states") or []) or "unknown"
    halt_poll = idle.get("guest_halt_poll_ns")
    return [
        "### c=1 with idle CPUs halting (the machine's default)",
        "",
        "The tables above were measured with idle CPUs polling (a 0 µs request held on "
        "`/dev/cpu_dma_latency`, as latency benchmarks do: tuned's latency-performance "
        "profile, cyclictest). This machine is a VM whose cpuidle driver is "
        f"`{idle.get('driver')}` (states: {states}"
        + (f"; the guest polls {halt_poll} ns before halting" if halt_poll is not None else "")
        + "): by default an idle vCPU halts into the hypervisor, and at one request at a time "
        "every proxied request crosses cores four times (client → gateway → upstream → "
        "gateway → client), each time waking a halted vCPU -- the host's scheduling of that "
        "wake-up, not the gateway's code, then makes the p99 of every proxy alike. The same "
        "c=1 point, same run, same rounds, without the request:",
        "",
        *_closed_table(results, derived, "closed_default_idle", None, "closed_default_idle"),
        "",
        *_rounds_table(results, "closed_default_idle"),
    ]


def _open_table(results: dict[str, Any], derived: dict[str, Any]) -> list[str]:
    opened = results.get("open") or {}
    arms = list(results["meta"]["arms"])
    head = "| offered req/s | " + " | ".join(
        f"{ARM_LABELS.get(a, a)}: done req/s, p50 / p99 ms" for a in arms) + " |"
    lines = [head, "|---:|" + "---|" * len(arms)]
    for rate, point in sorted(opened.items(), key=lambda kv: float(kv[0])):
        cells = []
        for arm in arms:
            r = point.get(arm)
            if not r:
                cells.append("(saturated earlier)")
                continue
            mark = " **saturated**" if r.get("saturated") else ""
            err = f", {r.get('error_count')} err" if r.get("error_count") else ""
            cells.append(f"{rps(r.get('rps'))}, {fmt(r.get('p50_ms'))} / "
                         f"{fmt(r.get('p99_ms'))}{err}{mark}")
        lines.append(f"| {rate} | " + " | ".join(cells) + " |")
    return lines


def _failover_table(results: dict[str, Any]) -> list[str]:
    fo = results.get("failover") or {}
    if not fo:
        return ["(no gateway arm ran)"]
    lines = ["| gateway | tier 2 alone p50 / p99 ms | tier 1 answers 503: p50 / p99 ms | added "
             "p50 / p99 | tier 1 refuses connections: p50 / p99 ms | added p50 / p99 | "
             "served by (503 / refused) |", "|---|---|---|---|---|---|---|"]
    for arm, e in fo.items():
        base, f503, fref = (e.get(k) or {} for k in ("tier2_only", "failover_503",
                                                       "failover_refused"))

        def served(check: dict[str, Any]) -> str:
            if "error" in check:
                return f"error: {check['error'][:80]}"
            h = check.get("headers") or {}
            if "x-echelon-served-by" in h:
                return (f"{h['x-echelon-served-by']} ({h.get('x-echelon-tier')}, "
                        f"{h.get('x-echelon-attempts')} attempts)")
            if "x-litellm-model-group" in h:
                return (f"{h['x-litellm-model-group']} ("
                        f"{h.get('x-litellm-attempted-fallbacks')} fallback)")
            return "ok"

        lines.append(
            f"| {ARM_LABELS.get(arm, arm)} | "
            f"{fmt(base.get('p50_ms'))} / {fmt(base.get('p99_ms'))} | "
            f"{fmt(f503.get('p50_ms'))} / {fmt(f503.get('p99_ms'))} "
            f"{'(' + str(f503.get('error_count')) + ' err)' if f503.get('error_count') else ''}| "
            f"{fmt(e.get('failover_503_added_p50_ms'))} / "
            f"{fmt(e.get('failover_503_added_p99_ms'))} | "
            f"{fmt(fref.get('p50_ms'))} / {fmt(fref.get('p99_ms'))} "
            f"{'(' + str(fref.get('error_count')) + ' err)' if fref.get('error_count') else ''}| "
            f"{fmt(e.get('failover_refused_added_p50_ms'))} / "
            f"{fmt(e.get('failover_refused_added_p99_ms'))} | "
            f"{served(e.get('failover_503_check') or {})} / "
            f"{served(e.get('failover_refused_check') or {})} |"
        )
    return lines


def _operator_section(results: dict[str, Any]) -> list[str]:
    op = results.get("operator") or {}
    if "skipped" in op:
        return [f"**Not measured in this run:** {op['skipped']}"]
    rows = op.get("results") or []
    lines = ["Measured with `bench/operator_bench.py` (imported by the harness) on the local API "
             "server (`scripts/local-k8s`: etcd, kube-apiserver and kube-controller-manager on "
             "this same 2-core machine), each case in a fresh namespace with its own "
             "`echelon-operator` process. `one-pool`: N TaskGroups and one PollingPool over all "
             "of them; `pools`: N TaskGroups and N PollingPools (one group each). The clock "
             "starts when `kubectl apply` of all the objects starts; the API server's own time "
             "to take the objects is in the `kubectl apply` column.", "",
             "| mode | TaskGroups | pools | `kubectl apply` s | apply start → ConfigMaps right s "
             "| of which after apply returned s | one edit re-rendered s | operator RSS peak MB "
             "| operator CPU s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        after = None
        if r.get("configmaps_right_s") is not None and r.get("apply_s") is not None:
            after = round(r["configmaps_right_s"] - r["apply_s"], 2)
        lines.append(f"| {r.get('mode')} | {r.get('groups')} | {r.get('pools')} | "
                     f"{fmt(r.get('apply_s'))} | {fmt(r.get('configmaps_right_s'))} | "
                     f"{fmt(after)} | "
                     f"{fmt(r.get('edit_rerender_s'))} | {fmt(r.get('operator_rss_mb_peak'), 1)} | "
                     f"{fmt(r.get('operator_cpu_s'))} |")
    return lines


def _closed_loadgen(plan: dict[str, Any]) -> str:
    if not plan.get("wrk"):
        return "the Python generator"
    low = plan.get("wrk_min_concurrency", 1)
    if low <= 1 or not any(c < low for c in plan["concurrency"]):
        return "wrk"
    if low == 2:
        return "the Python generator at c=1, wrk above"
    return f"the Python generator below c={low}, wrk from c={low}"


_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]


def _remeasured_line(meta: dict[str, Any]) -> str:
    """", its <sections> measured again in a later run, <when> (<n> s), the <n-th> command
    below" per later run; a section measured again by a still later run is named only there."""
    runs = list(meta.get("remeasured") or ())
    parts = []
    for i, later in enumerate(runs):
        newer = {s for after in runs[i + 1:] for s in after["sections"]}
        kept = [s for s in later["sections"] if s not in newer]
        if not kept:
            continue
        names = ", ".join(_SECTION_NAMES.get(s, s) for s in kept)
        nth = _ORDINALS[i + 1] if i + 1 < len(_ORDINALS) else f"#{i + 2}"
        noun = "sections" if len(kept) > 1 else "section"
        parts.append(f"; its {names} {noun} measured again in a later run, "
                     f"{later['started']} ({later['wall_s']:.0f} s), the {nth} command below")
    return "".join(parts)


_SECTION_NAMES = {"paced": "paced-streams", "tls": "TLS", "footprint": "footprint",
                  "operator": "operator", "operator-scale": "operator-at-scale"}


def render(results: dict[str, Any], derived: dict[str, Any], plots: list[Path], doc: Path,
           json_path: Path, notes: list[str]) -> str:
    meta = results["meta"]
    machine = meta["machine"]
    plan = meta["plan"]
    versions = machine["versions"]
    idle = machine.get("cpu_idle") or {}
    rel = lambda p: os.path.relpath(p, doc.parent)  # noqa: E731
    out: list[str] = [
        "# Benchmarks: the sidecar against direct calls, a bare Python proxy and LiteLLM",
        "",
        f"<!-- GENERATED by `python -m bench` from {rel(json_path)}; do not edit by hand. -->",
        "",
        f"One run, {meta['started']} ({meta['mode']} mode, {meta['wall_s']:.0f} s)"
        + _remeasured_line(meta) + ". "
        "Every arm served the same requests in the same run, one load point after another in "
        "turn (so noise on this shared machine falls on all arms alike). Added latency is the "
        "arm's percentile minus the direct arm's at the same load point.",
        "",
        "Command:",
        "",
        "```",
        meta["command"],
        *(later["command"] for later in meta.get("remeasured") or ()),
        "```",
        "",
        *(f"- {note}" for later in meta.get("remeasured") or () for note in later["notes"]),
        *([""] if any(later["notes"] for later in meta.get("remeasured") or ()) else []),
        "## Main table (non-streaming, upstream answers at once)",
        "",
        *_main_table(results, derived),
        "",
        "- Echelon / LiteLLM throughput at c=16: "
        f"**{fmt(derived['throughput_ratio_vs_litellm'])}x**"
        f"; Echelon / bare proxy at c=16: **{fmt(derived['throughput_ratio_vs_bare_proxy'])}x**.",
        "- Server CPU µs/req is the server process's CPU time over the point divided by the "
        "requests it answered (psutil): the least noisy number on a shared machine, and what "
        "throughput on one core is made of (1,000,000 / CPU µs per request = the most "
        "requests per second that core can serve).",
        "",
        "### Targets (issue 8)",
        "",
        "| target | bar | measured | met |",
        "|---|---|---:|---|",
    ]
    for t in derived["targets"]:
        met = "–" if t["met"] is None else ("yes" if t["met"] else "**no**")
        value = "–" if t["value"] is None else f"{t['value']} {t['unit']}"
        out.append(f"| {t['target']} | {t['bar']} | {value} | {met} |")
    out += ["", *notes, ""] if notes else [""]
    plot_names = {p.name: rel(p) for p in plots}
    out += [
        "## Closed loop, non-streaming",
        "",
        *_closed_table(results, derived, "closed", None, "closed"),
        "",
    ]
    out += _rounds_table(results)
    if "closed_loop_latency.png" in plot_names:
        out += [f"![latency vs concurrency]({plot_names['closed_loop_latency.png']})", ""]
    out += _idle_section(results, derived)
    out += ["## Open loop (fixed request rates, non-streaming)", "",
            "Requests are sent at fixed times whatever the server does, on 64 keep-alive "
            "connections opened beforehand (like wrk2); latency counts from the time a request "
            "was due, so a server that falls behind is charged for its queue. The generator "
            "shares its core with the upstream, so the direct arm's own saturation is the "
            "ceiling of this table. "
            "An arm is marked saturated (and not driven harder) when it completes under 90 % "
            "of the offered rate, fails over 1 % of requests, or its p99 passes 1 s.", "",
            *_open_table(results, derived), ""]
    if "open_loop_latency.png" in plot_names:
        out += [f"![latency vs offered load]({plot_names['open_loop_latency.png']})", ""]
    out += ["## Streaming: time to first token", "",
            f"The upstream streams {plan['stream_chunks']} content chunks at once; latency columns "
            "are time to the first `data:` line (TTFT); req/s counts whole streams.", "",
            *_closed_table(results, derived, "stream", "ttft", "stream_ttft"), ""]
    if "stream_ttft.png" in plot_names:
        out += [f"![stream TTFT vs concurrency]({plot_names['stream_ttft.png']})", ""]
    if results.get("slow"):
        out += ["## Upstream with 50 ms latency", "",
                "The same groups on an upstream model that answers after 50 ms: the gateway's "
                "cost next to a (still fast) real model.", "",
                *_closed_table(results, derived, "slow", None, "slow"), ""]
    out += paced_section(results, derived)
    out += tls_section(results, derived)
    out += operator_scale_section(results)
    out += footprint_section(results)
    out += ["## Failover cost", "",
            "One client, one request at a time. Tier 1's model answers 503 (or its port "
            "refuses connections) on every request; tier 2 answers. Retry delay 0, and the "
            "breaker is set never to open during the run, so every request pays the failed "
            "call. Added = p50 (p99) of the failover group minus that of a group served by "
            "tier 2's model directly, through the same gateway.", "",
            *_failover_table(results), "",
            "## Operator at scale", "", *_operator_section(results), "",
            "## Setup", "",
            f"- Machine: {machine['cpu']}, {machine['cores']} cores, "
            f"{machine.get('memory_gib')} GiB, kernel {machine['kernel']}, Python "
            f"{machine['python']}; load average at start {machine.get('loadavg_start')}, at end "
            f"{machine.get('loadavg_end')} (a shared machine: other work ran beside this one).",
            f"- Versions: echelon {versions.get('echelon')}, aiohttp {versions.get('aiohttp')}, "
            f"uvloop {versions.get('uvloop')}, orjson {versions.get('orjson')}, LiteLLM "
            f"{versions.get('litellm') or '(not run)'} (uvicorn {versions.get('uvicorn') or '–'})"
            f", load generators: {machine.get('wrk') or 'no wrk'} and the harness's own "
            "(`bench/harness/loadgen.py`, raw asyncio protocols on uvloop).",
            f"- Pinning: every server arm on core {plan['server_core']} (`taskset`), the fake "
            f"upstream and the load generator on core {plan['client_core']}.",
            f"- CPU idle: driver {idle.get('driver')}, governor {idle.get('governor')}; while "
            f"measuring: {idle.get('while_measuring', 'not recorded')}.",
            f"- Load: {plan['duration']:g} s per point after {plan['warmup']:g} s of unrecorded "
            f"warm-up; closed loop at c = {plan['concurrency']} (non-streaming, "
            f"{_closed_loadgen(plan)}) and "
            f"{plan['stream_concurrency']} (streaming, the Python generator: wrk cannot time "
            f"the first token); open loop at {plan['rates']} req/s (the Python generator).",
            "- Upstream: `echelon fake-provider` (OpenAI wire format, answers at once; model "
            "`bench_slow` after 50 ms; `fo_503` always 503).",
            "- Request: `{\"model\": \"bench\", \"messages\": [system, user], \"max_tokens\": 32, "
            "\"temperature\": 0.2}` (+ `\"stream\": true`), with `Authorization: Bearer "
            "<LiteLLM master key>` sent to every arm.",
        ]
    for arm, notes_ in meta["arms"].items():
        if not notes_:
            continue
        detail = "; ".join(f"{k}: `{v}`" if k in ("settings", "env") else f"{k}: {v}"
                           for k, v in notes_.items() if k not in ("admin",))
        out.append(f"- {ARM_LABELS.get(arm, arm)}: {detail}")
    git = machine.get("git") or {}
    if git.get("commit"):
        dirty = git.get("uncommitted") or []
        out.append(f"- Code measured: commit `{git['commit']}`" + (
            f", with uncommitted changes in {', '.join(f'`{d}`' for d in dirty)} (the working "
            "tree as it was; other work was in progress)" if dirty else " (clean tree)") + ".")
    out += [
        "",
        "## What this run cut, and why",
        "",
        "- Load generator: `wrk` (Debian) instead of `hey`, which is built from the Go module "
        "proxy that these machines cannot reach; wrk cannot time a stream's first token nor "
        "hold a fixed rate, so streams and the open loop use the harness's own generator. At "
        "c=1 the harness's generator times non-streaming requests too: captured on the "
        "loopback (tcpdump) during c=1 runs through the sidecar, its p99 was within 0.07 ms "
        "of the p99 on the wire (request packet in to response packet out), wrk's 0.3-0.5 ms "
        "above it -- a tail of wrk's own when its answers come from the other core (its "
        "direct-arm p99 is not affected). `--loadgen wrk` uses wrk at every concurrency.",
        f"- LiteLLM {versions.get('litellm') or '(not run)'}: the newest release whose "
        "dependencies all resolve from the package index reachable here (1.103 and later "
        "require a certifi release it does not have). One uvicorn worker, as LiteLLM's "
        "production guide recommends per pod, and as every arm here gets one core.",
        "- Streams are measured against the instant upstream only (not the 50 ms one), and "
        "failover with non-streaming requests only.",
        "- The open-loop generator is Python and shares its core with the upstream: past the "
        "rate where the direct arm saturates, the table measures the generator, not a gateway.",
        f"- Each closed-loop point ran {plan.get('rounds', 1)} time(s), every arm in turn; the "
        "tables show each arm's best round (lowest p50: noise only ever adds time), and the "
        "rounds table in the closed-loop section shows them all. This is a shared 2-core "
        "machine: the load averages above say how busy it was; p99 at c=1 in particular is "
        "mostly the host's scheduling of this VM's vCPUs, in every arm alike (see the idle "
        "section).",
        "- The sidecar calls its upstreams with its lean HTTP client "
        "(`sidecar/echelon_sidecar/providers/lean.py`); `ECHELON_UPSTREAM_CLIENT=aiohttp` "
        "switches back to aiohttp's client for comparison. A stream from the lean client is "
        "relayed from the upstream connection's callbacks: each read is decoded, translated "
        "and written to the caller's transport at once, with no task woken per chunk "
        "(`sidecar/echelon_sidecar/server/pump.py`); the bare streaming proxy awaits each "
        "read and writes it with `StreamResponse.write`.",
        "",
        f"Raw results: [{rel(json_path)}]({rel(json_path)}).",
        "",
    ]
    return "\n".join(out)
