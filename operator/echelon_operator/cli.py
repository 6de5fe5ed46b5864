"""`echelon`: validate, migrate and generate CRDs; run the demo and the fake providers."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from echelon_sidecar.config import ConfigUnit, LoadedConfig, discover_units, load_config
from echelon_sidecar.errors import ConfigError
from echelon_tools.demo import add_arguments as demo_arguments
from echelon_tools.fake_provider.cli import add_arguments as fake_provider_arguments

from . import __version__

__all__ = ["main"]


def _summary(loaded: LoadedConfig) -> str:
    cfg = loaded.config
    tiers = sum(len(g.echelons) for g in cfg.task_groups.values())
    return (
        f"{len(cfg.task_groups)} groups, {tiers} tiers, {len(cfg.polling_pools)} pools, "
        f"{len(cfg.workflow_nodes)} nodes, {len(cfg.models)} models"
    )


def cmd_validate(args: argparse.Namespace) -> int:
    units: list[ConfigUnit] = []
    for raw in args.paths:
        for unit in discover_units(Path(raw)):
            if unit.path not in [u.path for u in units]:
                units.append(unit)
    if not units:
        print("echelon validate: no config files found in " + ", ".join(args.paths),
              file=sys.stderr)
        return 1
    failed = 0
    report = []
    for unit in units:
        label = str(unit.path)
        if unit.requested is not None:
            label += f" (holding {unit.requested})"
        try:
            loaded = load_config(unit.path, log_deprecations=False)  # listed below instead
        except ConfigError as exc:
            failed += 1
            problems = [p for p in exc.problems]
            errors = [p for p in problems if getattr(p, "is_error", True)]
            report.append({"config": label, "valid": False,
                           "problems": [p.to_dict() for p in problems if hasattr(p, "to_dict")]})
            if args.format == "text":
                print(f"INVALID {label}: {len(errors)} error(s)")
                for problem in problems:
                    print(f"  {problem}")
            continue
        warnings = loaded.warnings
        strict_fail = args.strict and warnings
        failed += 1 if strict_fail else 0
        report.append({"config": label, "valid": not strict_fail, "summary": _summary(loaded),
                       "version": loaded.version,
                       "problems": [p.to_dict() for p in warnings]})
        if args.format == "text":
            note = f" ({len(warnings)} warning(s))" if warnings else ""
            print(f"{'INVALID' if strict_fail else 'OK'} {label}: {_summary(loaded)}{note}")
            if not args.quiet:
                for warning in warnings:
                    print(f"  {warning}")
    if args.format == "json":
        print(json.dumps(report, indent=2))
    return 1 if failed else 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from .migrate import migrate

    try:
        loaded = load_config([Path(p) for p in args.paths], log_deprecations=False)
    except ConfigError as exc:
        print(f"echelon migrate: the input is not valid, nothing written\n{exc}", file=sys.stderr)
        return 1
    result = migrate(loaded.config, namespace=args.namespace)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in result.files().items():
        (out / name).write_text(text, encoding="utf-8")
    try:
        check = load_config(out, log_deprecations=False)
    except ConfigError as exc:  # pragma: no cover - a bug in migrate, not in the input
        print(f"echelon migrate: BUG: the output does not validate\n{exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(result.manifests)} manifests to {out} ({_summary(check)})")
    for line in result.report:
        print(f"  {line}")
    for warning in check.warnings:
        print(f"  note: {warning}")
    return 0


def cmd_crds(args: argparse.Namespace) -> int:
    from .crds import check_crds, write_crds

    directory = Path(args.output_dir)
    if args.check:
        stale = check_crds(directory)
        if stale:
            print("stale CRDs (run `echelon crds` and commit the result): " + ", ".join(stale),
                  file=sys.stderr)
            return 1
        print(f"CRDs in {directory} (and the Helm chart's copies) match the config model")
        return 0
    for path in write_crds(directory):
        print(f"wrote {path}")
    return 0


def _lazy(module: str, func: str = "run") -> Callable[[argparse.Namespace], int]:
    def runner(args: argparse.Namespace) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), func)(args))

    return runner


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="echelon",
        description="Per-task-group LLM fallback, task-dedicated polling pools, on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"echelon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("validate", help="check config files and directories",
                       description="Validate configs: every problem with file, line, field path "
                       "and what is expected. Exit 0 when valid, 1 when not.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("-q", "--quiet", action="store_true", help="do not list warnings")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("migrate", help="turn source-format configs into Kubernetes manifests",
                       description="Write one TaskGroup per group and one PollingPool per pool "
                       "(global fallback folded in), plus a ConfigMap with models and nodes.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--namespace", help="set metadata.namespace on every manifest")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("crds", help="generate the CRDs from the config model",
                       description="Write the CustomResourceDefinitions generated from the "
                       "config model; --check exits 1 when the files are stale.")
    p.add_argument("--output-dir", default="crds", metavar="DIR")
    p.add_argument("--check", action="store_true")
    p.set_defaults(func=cmd_crds)

    p = sub.add_parser("fake-provider", help="run fake OpenAI / Anthropic / Gemini upstreams",
                       description="Fake LLM upstreams speaking the real wire formats, with "
                       "fault injection and counters (for tests, demos and benchmarks).")
    fake_provider_arguments(p)
    p.set_defaults(func=_lazy("echelon_tools.fake_provider.cli"))

    p = sub.add_parser("demo", help="see fallback, circuit breakers and pools work, live",
                       description="Start fake providers and a sidecar on the example configs, "
                       "send traffic with the official openai SDK and show what happens.")
    demo_arguments(p)
    p.set_defaults(func=_lazy("echelon_tools.demo"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
