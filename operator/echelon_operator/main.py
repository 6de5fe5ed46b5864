"""``echelon-operator``: the Echelon operator (kopf, ``kopf run -m echelon_operator.handlers``).

Standalone by default (one replica, no peering); ``--peering NAME`` for kopf peering between
replicas. ``--namespace NS`` (repeatable) watches those namespaces only (needs no cluster-scoped
rights); ``--all-namespaces`` (or no namespace at all) watches the whole cluster. Every flag
has an ``ECHELON_*`` environment variable (``--help`` lists them); flags win.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from . import __version__
from .settings import ENV, OperatorSettings, SettingsError, configure

__all__ = ["build_parser", "main", "settings_from_args"]


def build_parser() -> argparse.ArgumentParser:
    def env(name: str) -> str:
        return f" [env {ENV[name]}]"

    p = argparse.ArgumentParser(
        prog="echelon-operator",
        description="Reconcile TaskGroups and PollingPools into ConfigMaps and sidecars, and "
        "report circuit state in their status.",
    )
    p.add_argument("--version", action="version", version=f"echelon-operator {__version__}")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", dest="namespaces", metavar="NS",
                       help="watch this namespace (repeatable)" + env("namespaces"))
    scope.add_argument("-A", "--all-namespaces", action="store_true", default=None,
                       help="watch every namespace (the default without --namespace)"
                       + env("all_namespaces"))
    peer = p.add_mutually_exclusive_group()
    peer.add_argument("--standalone", action="store_true",
                      help="no peering: the only operator replica (default)")
    peer.add_argument("--peering", metavar="NAME",
                      help="run as one of several replicas, kopf peering object NAME (needs "
                      "kopf's peering CRDs: kubectl apply -f crds/peering/)" + env("peering"))
    p.add_argument("--priority", type=int, dest="peering_priority", metavar="N",
                   help="with --peering: this replica's priority; the live replica with the "
                   "highest one works, the others stand by (default: random)"
                   + env("peering_priority"))
    p.add_argument("--liveness", metavar="URL",
                   help="serve kopf's liveness probe, e.g. http://0.0.0.0:8081/healthz"
                   + env("liveness"))
    p.add_argument("--sidecar-image", metavar="IMAGE", help="sidecar image" + env("sidecar_image"))
    p.add_argument("--image-pull-policy", choices=["Always", "IfNotPresent", "Never"],
                   help="sidecar imagePullPolicy" + env("image_pull_policy"))
    p.add_argument("--sidecar-env", metavar="JSON",
                   help='extra environment of injected sidecars, e.g. '
                   '\'{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318"}\''
                   + env("sidecar_env"))
    p.add_argument("--sidecar-mode", choices=["auto", "native", "container"],
                   help="inject the sidecar as a native sidecar (an init container with "
                   "restartPolicy Always: the application starts once it is ready, Jobs "
                   "complete; Kubernetes 1.29+), as a regular container, or auto: native when "
                   "the API server is 1.29 or newer (default)" + env("sidecar_mode"))
    p.add_argument("--sidecar-resources", metavar="JSON",
                   help='sidecar resources, e.g. \'{"limits": {"memory": "256Mi"}}\''
                   + env("sidecar_resources"))
    p.add_argument("--data-port", type=int, metavar="PORT",
                   help="sidecar data port (default 8080)" + env("data_port"))
    p.add_argument("--admin-port", type=int, metavar="PORT",
                   help="sidecar admin port, polled for /v1/status (default 9090)"
                   + env("admin_port"))
    p.add_argument("--poll-interval", type=float, metavar="SECONDS",
                   help="seconds between sidecar status polls (default 10)"
                   + env("poll_interval"))
    p.add_argument("--poll-timeout", type=float, metavar="SECONDS",
                   help="timeout of one status request (default 2)" + env("poll_timeout"))
    p.add_argument("--poll-concurrency", type=int, metavar="N",
                   help="status requests in flight at most (default 32)"
                   + env("poll_concurrency"))
    p.add_argument("--operator-namespace", metavar="NS",
                   help="the operator's own namespace (holds its global config)"
                   + env("operator_namespace"))
    p.add_argument("--global-config", dest="global_config_name", metavar="NAME",
                   help="global-config ConfigMap in the operator namespace (default "
                   "echelon-global-config)" + env("global_config_name"))
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="log level (default INFO)" + env("log_level"))
    p.add_argument("--log-format", choices=["plain", "full", "json"],
                   help="log format (json in containers)" + env("log_format"))
    return p


def settings_from_args(args: argparse.Namespace) -> OperatorSettings:
    base = OperatorSettings.from_env()
    overrides: dict[str, Any] = {
        name: getattr(args, name, None)
        for name in (
            "sidecar_image",
            "image_pull_policy",
            "sidecar_mode",
            "data_port",
            "admin_port",
            "poll_interval",
            "poll_timeout",
            "poll_concurrency",
            "operator_namespace",
            "global_config_name",
            "log_level",
            "log_format",
            "liveness",
            "peering",
            "peering_priority",
        )
    }
    if args.sidecar_env is not None:
        try:
            overrides["sidecar_env"] = json.loads(args.sidecar_env)
        except ValueError as exc:
            raise SettingsError(f"--sidecar-env: not JSON: {exc}") from None
    if args.sidecar_resources is not None:
        try:
            overrides["sidecar_resources"] = json.loads(args.sidecar_resources)
        except ValueError as exc:
            raise SettingsError(f"--sidecar-resources: not JSON: {exc}") from None
    if args.namespaces:
        overrides["namespaces"] = tuple(args.namespaces)
        overrides["all_namespaces"] = False
    elif args.all_namespaces:
        overrides["namespaces"] = ()
        overrides["all_namespaces"] = True
    settings = base.with_overrides(**overrides)
    if args.standalone:
        settings = replace(settings, peering=None)
    return settings


#: seconds kopf gets to stop after a watch stream failed for good, before the process exits
STOP_GRACE_AFTER_A_WATCHER_FAILS = 20.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except SettingsError as exc:
        parser.error(str(exc))
    problem = _credentials_problem()
    if problem:
        parser.exit(2, f"echelon-operator: error: {problem}\n")
    configure(settings)

    import kopf

    kopf.configure(
        debug=settings.log_level == "DEBUG",
        verbose=settings.log_level == "DEBUG",
        quiet=settings.log_level in ("WARNING", "ERROR"),
        log_format=kopf.LogFormat[settings.log_format.upper()],
    )
    logging.getLogger("echelon_operator").setLevel(settings.log_level)
    if settings.log_level != "DEBUG":  # kopf says "Handler ... succeeded" for every event
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)

    from . import handlers  # noqa: F401  (registers the handlers with kopf)
    from .peering import PeeringError, PeeringIdentity, set_me

    identity = PeeringIdentity(settings.peering_priority)
    set_me(identity)
    if settings.peering is not None:
        try:
            _prepare_peering(settings)
        except PeeringError as exc:
            parser.exit(2, f"echelon-operator: error: {exc}\n")
        logging.getLogger("echelon_operator").info(
            "peering %r as %s, priority %d", settings.peering, identity.id, identity.priority)

    from .watcher_failures import WatcherFailures, exit_now, run_and_exit_code

    failures = WatcherFailures(grace=STOP_GRACE_AFTER_A_WATCHER_FAILS).install()
    code = run_and_exit_code(functools.partial(
        kopf.run,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        identity=identity.id,  # type: ignore[arg-type]
        priority=identity.priority,
        clusterwide=settings.clusterwide,
        namespaces=list(settings.namespaces),
        liveness_endpoint=settings.liveness,
    ), failures)
    if failures.failure is not None:
        exit_now(code)  # to be restarted: waiting for executor threads helps nobody
    return code


def _credentials_problem() -> str | None:
    """Why no Kubernetes client can be configured (None: it can); nothing is contacted."""
    import os

    from .kube import Kube

    try:
        Kube.from_environment(workers=1).close()
    except Exception as exc:  # ConfigException, a YAML error, an unreadable file, ...
        where = (f"KUBECONFIG={os.environ['KUBECONFIG']}" if os.environ.get("KUBECONFIG")
                 else "~/.kube/config")
        return (f"no Kubernetes credentials: {exc} (read {where}; in a pod the operator uses "
                "its ServiceAccount token)")
    return None


def _prepare_peering(settings: OperatorSettings) -> None:
    import asyncio

    from .kube import Kube
    from .peering import ensure_peering

    async def prepare() -> None:
        kube = Kube.from_environment(workers=2)
        try:
            await ensure_peering(kube, settings)
        finally:
            kube.close()

    asyncio.run(prepare())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
