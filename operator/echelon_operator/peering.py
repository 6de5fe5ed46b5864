"""kopf peering between operator replicas: the objects it needs, and who is active.

With ``--peering NAME`` several replicas may run; kopf pauses every one but the live peer with
the highest priority (and all of them when two share the top priority). kopf keeps the peers
in a ``KopfPeering`` object NAME in each watched namespace (``ClusterKopfPeering`` NAME when
cluster-wide) but does not create it, and without it (or without its CRD) a peering operator
waits forever, silently. So at start-up the operator creates the object when it is missing and
stops with a clear message when the CRD is (``kubectl apply -f crds/peering/``).

kopf pauses its handlers only; the operator's own sidecar poller asks :func:`is_active` before
each round, so a standby replica neither writes status nor posts Events.
"""

from __future__ import annotations

import datetime
import logging
import os
import random
import socket
import uuid
from collections.abc import Mapping
from typing import Any

from echelon_sidecar.errors import EchelonError

from .kube import Kube, KubeError
from .settings import OperatorSettings

__all__ = ["PeeringError", "PeeringIdentity", "ensure_peering", "is_active", "leads", "me",
           "set_me"]

GROUP = "kopf.dev"
VERSION = "v1"
NAMESPACED = "kopfpeerings"
CLUSTER = "clusterkopfpeerings"
CRD_HINT = "kubectl apply -f crds/peering/ (kopf's peering CRDs), or run --standalone"
MAX_PRIORITY = 32767

logger = logging.getLogger(__name__)


class PeeringError(EchelonError, RuntimeError):
    """Peering was asked for but cannot work; the message says what to do."""


class PeeringIdentity:
    """This replica's identity and priority in the peering object (what kopf is given)."""

    def __init__(self, priority: int | None = None) -> None:
        host = os.environ.get("HOSTNAME") or socket.gethostname()
        self.id = f"echelon-operator@{host}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        # replicas of one Deployment share their arguments: a random priority makes one of
        # them the active peer (a tie would pause both until one goes away)
        self.priority = priority if priority is not None else random.randint(1, MAX_PRIORITY)


_ME: PeeringIdentity | None = None


def set_me(identity: PeeringIdentity) -> None:
    """This process's peering identity (set once by ``echelon-operator`` before kopf runs)."""
    global _ME
    _ME = identity


def me() -> PeeringIdentity:
    global _ME
    if _ME is None:
        _ME = PeeringIdentity()
    return _ME


def _targets(settings: OperatorSettings) -> list[tuple[str, str | None]]:
    if settings.clusterwide:
        return [(CLUSTER, None)]
    return [(NAMESPACED, ns) for ns in settings.namespaces]


async def ensure_peering(kube: Kube, settings: OperatorSettings) -> None:
    """Create the peering object(s) kopf will use, unless they exist; PeeringError when the
    CRD is missing or the operator may not use it."""
    name = settings.peering
    if name is None:
        return
    for plural, namespace in _targets(settings):
        kind = "ClusterKopfPeering" if namespace is None else "KopfPeering"
        where = f"{kind} {name}" + (f" in namespace {namespace}" if namespace else "")
        body: dict[str, Any] = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
                                "metadata": {"name": name, "labels": {
                                    "app.kubernetes.io/part-of": "echelon",
                                    "app.kubernetes.io/managed-by": "echelon-operator"}}}
        try:
            await kube.create_object(GROUP, VERSION, plural, body, namespace)
            logger.info("created %s for peering", where)
        except KubeError as exc:
            if exc.status == 409:
                continue  # it exists
            if exc.status == 404:
                raise PeeringError(f"--peering {name}: the cluster has no {kind} resource "
                                   f"({plural}.{GROUP}): {CRD_HINT}") from None
            if exc.status == 403:
                raise PeeringError(f"--peering {name}: not allowed to create {where} (the "
                                   f"operator's RBAC needs {plural}.{GROUP}; the Helm chart "
                                   "adds it with peering.enabled): {exc}") from None
            raise PeeringError(f"--peering {name}: could not create {where}: {exc}") from None


def is_active(status: Mapping[str, Any] | None, identity: str, priority: int,
              now: datetime.datetime | None = None) -> bool:
    """kopf's rule over one peering object's status: active unless another live peer has a
    higher priority or the same one."""
    now = now or datetime.datetime.now(datetime.UTC)
    for peer_id, info in (status or {}).items():
        if peer_id == identity or not isinstance(info, Mapping):
            continue
        if _dead(info, now):
            continue
        if int(info.get("priority", 0)) >= priority:
            return False
    return True


def _dead(info: Mapping[str, Any], now: datetime.datetime) -> bool:
    try:
        seen = datetime.datetime.fromisoformat(str(info["lastseen"]))
        lifetime = float(info.get("lifetime", 60))
    except (KeyError, ValueError, TypeError):
        return True
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=datetime.UTC)
    return seen + datetime.timedelta(seconds=lifetime) <= now


async def leads(kube: Kube, settings: OperatorSettings,
                identity: PeeringIdentity | None = None) -> bool:
    """Whether this replica is the active peer (always, without peering)."""
    name = settings.peering
    if name is None:
        return True
    identity = identity or me()
    for plural, namespace in _targets(settings):
        obj = await kube.get_object(GROUP, VERSION, plural, name, namespace)
        if obj is not None and not is_active(obj.get("status"), identity.id, identity.priority):
            return False
    return True
