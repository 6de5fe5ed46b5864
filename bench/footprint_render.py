"""The footprint report (bench/footprint.py) as Markdown, and the targets it is held to."""

from __future__ import annotations

from typing import Any

__all__ = ["TARGETS", "render"]

#: issue 20: (what, limit, unit)
TARGETS = {"ready_s": (0.5, "s"), "idle_rss_mb": (45.0, "MB")}


def render(report: dict[str, Any]) -> str:
    """The report as a Markdown table (medians, min-max in brackets)."""
    def cell(s: dict[str, Any], unit: str) -> str:
        if s["median"] is None:
            return "-"
        return f"{s['median']:g} {unit} ({s['min']:g}-{s['max']:g})"

    meta = report["meta"]
    floor = report["floor"]
    lines = [f"Sidecar footprint, {meta['runs']} runs each (median, min-max), load average "
             f"{meta['loadavg'][0]:.2f} at the start, bytecode {meta['bytecode']}; "
             f"`python -c pass`: {cell(report['interpreter']['start_s'], 's')}", "",
             *([f"Every process ran with the sidecar image's environment "
                f"(sidecar/Dockerfile): {', '.join(f'`{k}={v}`' for k, v in env.items())}.",
                ""] if (env := meta.get("env")) else []),
             "| config | ready | CPU to ready | idle RSS | peak RSS |", "|---|---|---|---|---|",
             f"| floor: the dependencies alone | {cell(floor['ready_s'], 's')} | "
             f"{cell(floor['cpu_s'], 's')} | {cell(floor['idle_rss_mb'], 'MB')} | - |"]
    for label, r in report["configs"].items():
        lines.append(f"| {label} | {cell(r['ready_s'], 's')} | {cell(r['cpu_s'], 's')} | "
                     f"{cell(r['idle_rss_mb'], 'MB')} | {cell(r['hwm_mb'], 'MB')} |")
    inside = report.get("in_image") or {}
    if inside.get("configs"):
        lines += ["", f"The same starts inside the image (`{inside['archive']}` unpacked, "
                  f"`chroot` as its user {inside['user']}, with its environment alone: its "
                  "Python, bytecode, CA store and dependencies):", "",
                  "| config | ready | CPU to ready | idle RSS | peak RSS |",
                  "|---|---|---|---|---|"]
        for label, r in inside["configs"].items():
            lines.append(f"| {label} | {cell(r['ready_s'], 's')} | {cell(r['cpu_s'], 's')} | "
                         f"{cell(r['idle_rss_mb'], 'MB')} | {cell(r['hwm_mb'], 'MB')} |")
    elif inside.get("skipped"):
        lines += ["", f"Not measured inside the image: {inside['skipped']}."]
    s = report.get("streams")
    if s:
        lines += ["", f"{s['opened']} of {s['count']} streams opened ({s['errors']} errors) in "
                  f"{s['open_s']} s, {s['open_at_sample']} open at once: RSS {s['rss_mb']} MB "
                  f"(idle {s['idle_rss_mb']} MB, "
                  f"{s['per_stream_kb']} kB per stream), {s['after_close_rss_mb']} MB after "
                  f"they closed, peak {s['hwm_mb']} MB"]
    steps = report.get("floor_steps")
    if steps:
        lines += ["", "What the floor is made of: idle RSS of a process that only imports, "
                  f"each step adding to the one before ({min(meta['runs'], 3)} runs each, "
                  "median):", "", "| step | idle RSS | added |", "|---|---:|---:|"]
        before = None
        for st in steps:
            value = st["idle_rss_mb"]["median"]
            added = "-" if value is None or before is None else f"{value - before:+.1f} MB"
            lines.append(f"| {st['step']} | {'-' if value is None else f'{value:g} MB'} | "
                         f"{added} |")
            before = value
        mine = [r["idle_rss_mb"]["median"] for r in report["configs"].values()]
        base = floor["idle_rss_mb"]["median"]
        if mine and base is not None and all(v is not None for v in mine):
            lines += ["", f"Echelon's own code, config and state: {min(mine) - base:.1f}-"
                      f"{max(mine) - base:.1f} MB above the floor (which serves `/readyz`)."]
            limit = TARGETS["idle_rss_mb"][0]
            if base >= limit:
                lines[-1] += (f" The floor alone is above the idle RSS target ({base:g} MB "
                              f"against {limit:g} MB): with these dependencies, no change "
                              "inside Echelon can meet it.")
    image = report.get("image")
    if image:
        lines += ["", f"Image `{image['name']}` (scripts/build-images): {image['size_mb']} MB, "
                  f"{image['compressed_mb']} MB compressed."]
    lines += ["", "| target | config | measured | met |", "|---|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['what']} {t['target']} | {t['config']} | {t['measured']} | "
                     f"{'met' if t['met'] else 'not met'} |")
    return "\n".join(lines) + "\n"
