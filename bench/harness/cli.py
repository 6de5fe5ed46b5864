"""`python -m bench` (or `scripts/bench`): the sidecar measured side by side.

Arms, in one run and on the same requests: direct calls to the fake upstream (the floor), a
bare aiohttp pass-through proxy (the Python floor), Echelon's sidecar, and LiteLLM's proxy
(installed in its own venv under ~/.cache/echelon/bench). Each server arm is pinned to one
core, the upstream and the load generator to the other. Writes bench/results/<date>.json and
docs/benchmarks.md (with PNG plots under docs/benchmarks/). Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .arms import ARMS
from .derive import derive
from .litellm_env import LITELLM_VERSION, default_venv, ensure_litellm
from .report import plot, render
from .run import Plan, run_plan
from .wrk import ensure_wrk

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[2]

SECTIONS = ("main", "paced", "tls", "operator", "operator-scale", "footprint")
PACED_KINDS = "openai,anthropic_to_openai,gemini_to_openai,openai_to_anthropic"
QUICK = {"arms": "direct,bare,stream,echelon", "duration": 1.5, "warmup": 0.3,
         "concurrency": "1,16", "stream": "1", "slow": "", "rates": "500",
         "failover_duration": 0.7, "rounds": 1, "sections": "main,paced,tls",
         "paced_concurrency": "20", "paced_translated": "20", "paced_chunks": 20,
         "paced_duration": 1.0, "paced_ramp": 0.4, "paced_rounds": 1,
         "tls_concurrency": "16", "tls_stream": "16", "tls_paced": "20",
         "operator_scale": ""}
FULL = {"arms": ",".join(ARMS), "duration": 10.0, "warmup": 2.0,
        "concurrency": "1,16,64", "stream": "1,16,64", "slow": "1,16,64",
        "rates": "50,100,250,500,1000,1500,2000,3000,4000,6000", "failover_duration": 4.0,
        "rounds": 3, "sections": ",".join(SECTIONS),
        "paced_concurrency": "100,200,500,1000", "paced_translated": "200,1000",
        "paced_chunks": 200, "paced_duration": 8.0, "paced_ramp": 4.0, "paced_rounds": 2,
        "tls_concurrency": "1,16,64", "tls_stream": "16", "tls_paced": "200",
        "operator_scale": "50,500,5000"}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="under a minute: direct, bare and "
                      "echelon arms, c=1,16, one stream point, one rate, short failover; writes "
                      "its outputs under --out-dir (default) without touching docs/")
    mode.add_argument("--full", action="store_true", help="everything (the default): four "
                      "arms, c=1,16,64, streams, a 50 ms upstream, open loop up to saturation, "
                      "failover, and the operator at 1/100/1000 TaskGroups")
    p.add_argument("--arms", help=f"comma-separated subset of {','.join(ARMS)}")
    p.add_argument("--duration", type=float, help="seconds per load point")
    p.add_argument("--warmup", type=float, help="unrecorded seconds before each point")
    p.add_argument("--concurrency", help="closed-loop concurrencies, e.g. 1,16,64")
    p.add_argument("--stream-concurrency", help="closed-loop concurrencies of streams")
    p.add_argument("--slow-concurrency", help="concurrencies against the 50 ms upstream "
                   "('' to skip)")
    p.add_argument("--rates", help="open-loop rates (req/s), ascending")
    p.add_argument("--failover-duration", type=float, help="seconds per failover scenario")
    p.add_argument("--rounds", type=int, help="passes over the closed-loop points (each arm's "
                   "point reports its best round, by p50; --full: 3)")
    p.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto",
                   help="closed-loop non-streaming load: wrk (installed with apt-get when "
                   "missing, unless --no-install) or the harness's Python generator; auto: "
                   "the Python generator at c=1 (its timing matches the wire there, wrk's adds "
                   "a tail of its own), wrk above")
    p.add_argument("--no-idle-poll", action="store_true", help="measure with the machine's "
                   "own CPU idle behaviour only; by default idle CPUs poll instead of halting "
                   "while the arms are measured (a 0 µs request on /dev/cpu_dma_latency, as "
                   "latency benchmarks do) and c=1 is measured once more without it")
    p.add_argument("--no-install", action="store_true", help="never apt-get wrk nor pip "
                   "install LiteLLM: skip what is missing")
    p.add_argument("--litellm-venv", type=Path, default=default_venv(),
                   help=f"venv for litellm[proxy]=={LITELLM_VERSION} (default: %(default)s)")
    p.add_argument("--no-operator", action="store_true", help="skip the operator benchmark")
    p.add_argument("--operator-groups", default="1,100,1000",
                   help="TaskGroup counts for the operator benchmark (--full only)")
    p.add_argument("--operator-modes", default="one-pool,pools",
                   help="bench/operator_bench.py modes: one-pool and/or pools")
    p.add_argument("--kubeconfig", help="use this cluster for the operator benchmark instead "
                   "of starting scripts/local-k8s")
    p.add_argument("--sections", help=f"comma-separated subset of {','.join(SECTIONS)} "
                   "(--full: all; --quick: main,paced,tls)")
    p.add_argument("--paced-kinds", default=PACED_KINDS, help="paced stream kinds "
                   "(default: %(default)s)")
    p.add_argument("--paced-concurrency", help="concurrent paced streams, passthrough kind")
    p.add_argument("--paced-translated", help="concurrent paced streams, translated kinds")
    p.add_argument("--paced-chunks", type=int, help="content chunks per paced stream")
    p.add_argument("--paced-rate", type=float, default=50.0, help="paced chunks per second")
    p.add_argument("--paced-duration", type=float, help="seconds of paced streams recorded "
                   "per point (after a ramp of first requests)")
    p.add_argument("--paced-ramp", type=float, help="seconds over which a point's first "
                   "streams start (unrecorded)")
    p.add_argument("--paced-rounds", type=int, help="passes over the paced points")
    p.add_argument("--tls-concurrency", help="closed-loop concurrencies over HTTPS")
    p.add_argument("--tls-stream-concurrency", help="5-chunk stream concurrencies over HTTPS")
    p.add_argument("--tls-paced-concurrency", help="paced passthrough streams over HTTPS")
    p.add_argument("--operator-scale", help="pod counts of the operator-at-scale simulation "
                   "(bench/operator_scale.py; '' to skip)")
    p.add_argument("--server-core", type=int, default=0, help="core of the server arms")
    p.add_argument("--client-core", type=int, default=1,
                   help="core of the upstream and the load generator")
    p.add_argument("--out-dir", type=Path, default=REPO / "bench" / "results",
                   help="where <date>.json goes (default: bench/results)")
    p.add_argument("--doc", type=Path, help="the Markdown report (default: docs/benchmarks.md "
                   "for --full, <out-dir>/<date>-quick.md for --quick); plots go beside it, "
                   "in a folder named after it")
    p.add_argument("--note", action="append", default=[], metavar="TEXT",
                   help="a line added under the targets in the report (repeatable)")
    p.add_argument("--render", type=Path, metavar="RESULTS_JSON",
                   help="measure nothing: regenerate the report and plots of an earlier run "
                   "from its results file (after a change to the report's format)")
    p.add_argument("--merge", type=Path, metavar="LATER_JSON",
                   help="with --render: first replace RESULTS_JSON's sections by those a later "
                   "run of some --sections measured (after a change that only they show); "
                   "the report says which sections come from which run")
    return p


#: the results' keys each section fills
SECTION_KEYS = {
    "main": ("closed", "stream", "slow", "open", "closed_default_idle", "failover", "rss_mb"),
    "paced": ("paced",), "tls": ("tls",), "operator": ("operator",),
    "operator-scale": ("operator_scale",), "footprint": ("footprint",),
}


def merge_results(base: dict[str, Any], later: dict[str, Any]) -> list[str]:
    """Put ``later``'s measured sections into ``base`` (in place); the sections moved.
    ``base["meta"]["remeasured"]`` lists each later run once: when, its command, the sections
    it measured that no still later run measured again."""
    sections = list((later["meta"].get("plan") or {}).get("sections") or ())
    moved = [s for s in sections if s in SECTION_KEYS and s != "main"
             and any(later.get(k) for k in SECTION_KEYS[s])]
    if not moved:
        raise ValueError("the later run measured none of the sections paced, tls, operator, "
                         "operator-scale or footprint")
    for section in moved:
        for key in SECTION_KEYS[section]:
            base[key] = later.get(key)
    meta = later["meta"]
    entry = {"started": meta["started"], "wall_s": meta["wall_s"], "command": meta["command"],
             "sections": moved, "notes": list(meta.get("notes") or [])}
    # the same later run merged again (a render repeated) replaces its entry: listed once;
    # an earlier run keeps only the sections this one did not measure again (and, with none
    # left, is no longer listed: nothing of it is shown, its command and notes neither)
    runs = []
    for run in base["meta"].get("remeasured", []):
        if (run.get("started"), run.get("command")) == (entry["started"], entry["command"]):
            continue
        kept = [s for s in run["sections"] if s not in moved]
        if kept:
            runs.append({**run, "sections": kept})
    base["meta"]["remeasured"] = [*runs, entry]
    return moved


def _write_report(results: dict[str, Any], json_path: Path, doc: Path,
                  notes: list[str]) -> list[Path]:
    doc.parent.mkdir(parents=True, exist_ok=True)
    plots = plot(results, doc.parent / doc.stem)
    doc.write_text(render(results, results["derived"], plots, doc, json_path, notes))
    return plots


def _render_only(json_path: Path | None, doc: Path | None, later: Path | None = None) -> int:
    if json_path is None:
        build_parser().error("--merge goes with --render RESULTS_JSON (the run it completes)")
    results = json.loads(json_path.read_text())
    if later is not None:
        try:
            moved = merge_results(results, json.loads(later.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            sys.stderr.write(f"[bench] --merge {later}: {exc}\n")
            return 2
        sys.stderr.write(f"[bench] {', '.join(moved)} from {later}\n")
    results["derived"] = derive(results)
    meta = results["meta"]
    doc = doc or (REPO / "docs" / "benchmarks.md" if meta["mode"] == "full"
                  else json_path.with_suffix(".md"))
    plots = _write_report(results, json_path, doc, list(meta.get("notes") or []))
    meta["outputs"] = {"json": str(json_path), "doc": str(doc), "plots": [str(p) for p in plots]}
    json_path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    sys.stderr.write(f"[bench] rendered {doc} and {len(plots)} plots from {json_path}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.render is not None or args.merge is not None:
        return _render_only(args.render, args.doc, args.merge)
    preset = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"

    def pick(value: object, key: str) -> object:
        return preset[key] if value is None else value

    arms = [a.strip() for a in str(pick(args.arms, "arms")).split(",") if a.strip()]
    for arm in arms:
        if arm not in ARMS:
            build_parser().error(f"unknown arm {arm!r} (choose from {', '.join(ARMS)})")
    if "direct" not in arms:
        arms.insert(0, "direct")  # the floor every added latency is measured against
    notes: list[str] = list(args.note)

    wrk = None
    if args.loadgen != "python":
        wrk = ensure_wrk(install=not args.no_install)
        if wrk is None:
            if args.loadgen == "wrk":
                sys.stderr.write("[bench] wrk is missing (apt-get install wrk)\n")
                return 2
            notes.append("- wrk was not available: the Python generator drove every point.")

    litellm_python = None
    if "litellm" in arms:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            if args.no_install and not (args.litellm_venv / "bin" / "python").exists():
                raise FileNotFoundError(f"{args.litellm_venv} does not exist")
            litellm_python = ensure_litellm(args.litellm_venv,
                                            args.litellm_venv.parent / "litellm-install.log")
        except Exception as exc:
            sys.stderr.write(f"[bench] LiteLLM is not available, its arm is skipped: {exc}\n")
            arms.remove("litellm")
            notes.append(f"- The LiteLLM arm was skipped: {exc}")

    sections = [x.strip() for x in str(pick(args.sections, "sections")).split(",") if x.strip()]
    for section in sections:
        if section not in SECTIONS:
            build_parser().error(f"unknown section {section!r} (choose from "
                                 f"{', '.join(SECTIONS)})")
    run_operator = "operator" in sections and not args.no_operator and (
        mode == "full" or args.sections is not None)
    paced_kinds = [k.strip() for k in args.paced_kinds.split(",") if k.strip()]
    plan = Plan(
        mode=mode,
        arms=arms,
        duration=float(pick(args.duration, "duration")),  # type: ignore[arg-type]
        warmup=float(pick(args.warmup, "warmup")),  # type: ignore[arg-type]
        concurrency=_ints(str(pick(args.concurrency, "concurrency"))),
        stream_concurrency=_ints(str(pick(args.stream_concurrency, "stream"))),
        slow_concurrency=_ints(str(pick(args.slow_concurrency, "slow"))),
        rates=[float(x) for x in str(pick(args.rates, "rates")).split(",") if x.strip()],
        failover_duration=float(pick(args.failover_duration, "failover_duration")),  # type: ignore[arg-type]
        rounds=int(pick(args.rounds, "rounds")),  # type: ignore[call-overload]
        server_core=args.server_core,
        client_core=args.client_core,
        wrk=wrk,
        wrk_min_concurrency=1 if args.loadgen == "wrk" else 2,
        idle_poll=not args.no_idle_poll,
        litellm_python=litellm_python,
        operator_groups=_ints(args.operator_groups) if run_operator else [],
        operator_modes=[m.strip() for m in args.operator_modes.split(",") if m.strip()],
        operator_kubeconfig=args.kubeconfig,
        paced_kinds=paced_kinds if "paced" in sections else [],
        paced_concurrency=_ints(str(pick(args.paced_concurrency, "paced_concurrency"))),
        paced_translated=_ints(str(pick(args.paced_translated, "paced_translated"))),
        paced_chunks=int(pick(args.paced_chunks, "paced_chunks")),  # type: ignore[call-overload]
        paced_rate=args.paced_rate,
        paced_duration=float(pick(args.paced_duration, "paced_duration")),  # type: ignore[arg-type]
        paced_ramp=float(pick(args.paced_ramp, "paced_ramp")),  # type: ignore[arg-type]
        paced_rounds=int(pick(args.paced_rounds, "paced_rounds")),  # type: ignore[call-overload]
        tls="tls" in sections,
        tls_concurrency=_ints(str(pick(args.tls_concurrency, "tls_concurrency"))),
        tls_stream_concurrency=_ints(str(pick(args.tls_stream_concurrency, "tls_stream"))),
        tls_paced_concurrency=_ints(str(pick(args.tls_paced_concurrency, "tls_paced"))),
        operator_scale=_ints(str(pick(args.operator_scale, "operator_scale")))
        if "operator-scale" in sections else [],
        sections=sections,
        command=shlex.join(["python", "-m", "bench", *argv]),
    )
    if mode == "full" and args.no_operator:
        notes.append("- The operator benchmark was skipped (--no-operator).")

    results = run_plan(plan)
    results["derived"] = derive(results)
    date = results["meta"]["date"]
    suffix = "" if mode == "full" else f"-{mode}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.out_dir / f"{date}{suffix}.json"
    doc = args.doc or (REPO / "docs" / "benchmarks.md" if mode == "full"
                       else args.out_dir / f"{date}{suffix}.md")
    results["meta"]["notes"] = notes
    plots = _write_report(results, json_path, doc, notes)
    results["meta"]["outputs"] = {"json": str(json_path), "doc": str(doc),
                                  "plots": [str(p) for p in plots]}
    json_path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    sys.stderr.write(f"[bench] wrote {json_path}, {doc} and {len(plots)} plots "
                     f"in {results['meta']['wall_s']:.0f} s ({time.strftime('%H:%M:%S')})\n")
    return 0
