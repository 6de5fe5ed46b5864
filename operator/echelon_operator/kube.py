"""The few Kubernetes API calls the operator makes itself (kopf does the watching).

The official ``kubernetes`` client, run in a small thread pool so handlers stay async, with
raw JSON in and out (plain dicts, exactly what the API server says). Errors become
:class:`KubeError` with the HTTP status; 404 on a read is ``None``.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import json
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kubernetes
import orjson
import urllib3

from echelon_sidecar.errors import EchelonError

from .names import API_GROUP, VERSION
from .workloads import DEPLOYMENT, WorkloadKind

__all__ = ["Conflict", "Kube", "KubeError", "NotFound", "object_ref"]

MERGE = "application/merge-patch+json"
COMPONENT = "echelon-operator"


class KubeError(EchelonError, RuntimeError):
    """An API call failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


def object_ref(body: Mapping[str, Any]) -> dict[str, Any]:
    """An ``involvedObject`` reference from an object (or a minimal dict of one)."""
    meta = body.get("metadata") or {}
    ref = {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
           "name": meta.get("name"), "namespace": meta.get("namespace")}
    if meta.get("uid"):
        ref["uid"] = meta["uid"]
    return ref


class Kube:
    """Async wrappers of the API calls the operator needs."""

    def __init__(self, api_client: kubernetes.client.ApiClient, workers: int = 8) -> None:
        self.api_client = api_client
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.version = kubernetes.client.VersionApi(api_client)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="echelon-kube")
        self._closed = False
        self.instance = os.environ.get("HOSTNAME") or socket.gethostname()

    @classmethod
    def from_environment(cls, workers: int = 8) -> Kube:
        """In a pod: its ServiceAccount; else ``KUBECONFIG`` / ~/.kube/config."""
        config = kubernetes.client.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
        else:
            kubernetes.config.load_kube_config(client_configuration=config)  # type: ignore[no-untyped-call]
        if not config.verify_ssl:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        config.connection_pool_maxsize = workers * 2
        return cls(kubernetes.client.ApiClient(config), workers)

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.api_client.close()  # type: ignore[no-untyped-call]

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one client call in the pool; raw JSON back (None for 404 when ``allow_404``)."""
        if self._closed:  # a handler still running while the operator stops
            raise KubeError(0, "the operator is stopping: no more API calls")
        allow_404 = kwargs.pop("allow_404", False)
        kwargs.setdefault("_preload_content", False)
        kwargs.setdefault("_request_timeout", 30)
        loop = asyncio.get_running_loop()
        try:
            data = await loop.run_in_executor(self._pool, functools.partial(
                _read_body, fn, *args, **kwargs))
        except kubernetes.client.ApiException as exc:
            status = int(exc.status or 0)
            message = _api_message(exc)
            if status == 404:
                if allow_404:
                    return None
                raise NotFound(status, message) from None
            if status == 409:
                raise Conflict(status, message) from None
            raise KubeError(status, message) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeError(0, f"API server unreachable: {exc}") from None
        # orjson: a list of thousands of pods decodes in a third of json's time
        return orjson.loads(data) if data else None

    # -- ConfigMaps ------------------------------------------------------------------------

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._call(
            self.core.read_namespaced_config_map, name, namespace, allow_404=True)
        return result

    async def create_configmap(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            self.core.create_namespaced_config_map, namespace, dict(body))
        return result

    async def patch_configmap(self, namespace: str, name: str, patch: Mapping[str, Any]
                              ) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            self.core.patch_namespaced_config_map, name, namespace, dict(patch),
            _content_type=MERGE)
        return result

    # -- the server ---------------------------------------------------------------------------

    async def server_version(self) -> dict[str, Any]:
        """The API server's ``/version`` document (``gitVersion``, ``major``, ``minor``, ...)."""
        result: dict[str, Any] = await self._call(self.version.get_code)
        return result

    # -- workloads and Pods -----------------------------------------------------------------

    async def get_workload(self, kind: WorkloadKind, namespace: str, name: str
                           ) -> dict[str, Any] | None:
        """A Deployment, StatefulSet, Job or CronJob as raw JSON (None if it is gone).

        The custom-objects calls build the same ``/apis/<group>/<version>/namespaces/<ns>/
        <plural>/<name>`` paths as the typed APIs, for every kind alike."""
        result: dict[str, Any] | None = await self._call(
            self.custom.get_namespaced_custom_object, kind.group, kind.version, namespace,
            kind.plural, name, allow_404=True)
        return result

    async def patch_workload(self, kind: WorkloadKind, namespace: str, name: str,
                             patch: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            self.custom.patch_namespaced_custom_object, kind.group, kind.version, namespace,
            kind.plural, name, dict(patch), _content_type=MERGE)
        return result

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.get_workload(DEPLOYMENT, namespace, name)

    async def patch_deployment(self, namespace: str, name: str, patch: Mapping[str, Any]
                               ) -> dict[str, Any]:
        return await self.patch_workload(DEPLOYMENT, namespace, name, patch)

    async def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """The pods matching ``label_selector``, from the API server's watch cache
        (``resourceVersion=0``, what informers list with): a list without it is a quorum read
        of every pod of the namespace from etcd, filtered by label afterwards -- per pod
        selector and poll round, the cost that grew with the namespace's pod count."""
        result = await self._call(self.core.list_namespaced_pod, namespace,
                                  label_selector=label_selector, resource_version="0")
        return list((result or {}).get("items") or [])

    # -- our resources ----------------------------------------------------------------------

    async def patch_status(self, plural: str, namespace: str, name: str,
                           status: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge-patch ``status`` of a TaskGroup / PollingPool (None if it is gone)."""
        result: dict[str, Any] | None = await self._call(
            self.custom.patch_namespaced_custom_object_status, API_GROUP, VERSION, namespace,
            plural, name, {"status": dict(status)}, _content_type=MERGE, allow_404=True)
        return result

    # -- Events -----------------------------------------------------------------------------

    # -- other custom objects (kopf's peering) ---------------------------------------------

    async def get_object(self, group: str, version: str, plural: str, name: str,
                         namespace: str | None = None) -> dict[str, Any] | None:
        result: dict[str, Any] | None
        if namespace is None:
            result = await self._call(self.custom.get_cluster_custom_object, group, version,
                                      plural, name, allow_404=True)
        else:
            result = await self._call(self.custom.get_namespaced_custom_object, group, version,
                                      namespace, plural, name, allow_404=True)
        return result

    async def create_object(self, group: str, version: str, plural: str,
                            body: Mapping[str, Any], namespace: str | None = None
                            ) -> dict[str, Any]:
        result: dict[str, Any]
        if namespace is None:
            result = await self._call(self.custom.create_cluster_custom_object, group, version,
                                      plural, dict(body))
        else:
            result = await self._call(self.custom.create_namespaced_custom_object, group,
                                      version, namespace, plural, dict(body))
        return result

    async def event(self, obj: Mapping[str, Any], *, type: str, reason: str,
                    message: str) -> None:
        """Record a core/v1 Event about ``obj`` (best effort: failures are swallowed)."""
        ref = object_ref(obj)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ref['name']}.{uuid.uuid4().hex[:16]}",
                         "namespace": ref["namespace"]},
            "involvedObject": ref,
            "reason": reason,
            "message": message[:1024],
            "type": type,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
        }
        try:
            await self._call(self.core.create_namespaced_event, ref["namespace"], body)
        except KubeError:
            pass


def _read_body(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
    """Call, read the whole body and give the connection back to the pool (in the worker
    thread: reading a socket must not block the event loop)."""
    resp = fn(*args, **kwargs)
    try:
        return bytes(resp.data or b"")
    finally:
        resp.release_conn()


def _api_message(exc: kubernetes.client.ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
        if isinstance(body, dict) and body.get("message"):
            return f"HTTP {exc.status}: {body['message']}"
    except (ValueError, TypeError):
        pass
    return f"HTTP {exc.status}: {exc.reason}"
