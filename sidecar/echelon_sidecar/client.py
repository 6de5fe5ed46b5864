"""A small client for applications, matching the source documents' usage.

::

    from echelon_sidecar.client import EchelonClient, LLMError, load_node_config

    async with EchelonClient() as llm:                       # http://127.0.0.1:8080
        text = await llm.call_with_group("plan_group.echelon1", prompt)
        try:
            text = await llm.call_with_group("plan_group.echelon1", prompt)
        except LLMError as e:                                  # every fallback failed
            print(e.attempts)                                  # each attempt and why it failed
        text = await llm.call_with_fallback_groups(["plan_group.echelon2", "fast_group.echelon1"],
                                                   prompt)
        result = await llm.call_node("planning_node", prompt)  # result.text, result.served_by
        node = load_node_config("configs/llms/nodes.yaml", "planning_node")
        result = await llm.call_node(node, prompt)             # the same: called by its name

It is a thin layer over the sidecar's OpenAI-compatible HTTP API: the sidecar does the routing,
the fallback and the circuit breaking; any OpenAI SDK works just as well.

Workflow nodes
--------------

A node's settings mean in :meth:`EchelonClient.call_node` what they mean in the sidecar:
``task_config.timeout`` bounds **each attempt** (not the whole request), ``task_config.
max_retries`` is per tier, ``polling_pool`` serves the node from its pool first and
``concurrency_config`` limits the node's calls across every caller of the sidecar. Only the
sidecar can apply them, so:

- a node **with a name** -- ``call_node("planning_node", ...)``, or a config from
  :func:`load_node_config` (which keeps the name it was loaded under, or the ``name=`` given)
  -- is called by that name (``model`` = the node): the sidecar applies its own declaration of
  the node (routing, pool, task config, concurrency). A name the sidecar does not know is
  answered 404 (:class:`LLMError`). The loaded config's fields are not sent: keep it the file
  the sidecar reads.
- a node config **without a name** is sent as what one request can carry: ``llm_group`` as the
  model, ``fallback_groups`` as ``X-Echelon-Fallback-Groups``, thinking and temperature in the
  body. A node config without a name that sets ``task_config.timeout``,
  ``task_config.max_retries``, ``polling_pool`` or ``concurrency_config`` is refused with
  ``ValueError`` naming the field, rather than served without it.

How long a node call waits: the sidecar bounds every attempt (the node's or the tier's
timeout) and caps the attempts (the entry group's ``max_attempts``), which may add up to more
than any fixed client limit, so ``call_node`` does not apply the client's ``timeout``. It waits
for the sidecar's answer -- a reply, or an error listing every attempt -- unless given
``request_timeout``: a deadline for the whole request that the sidecar enforces
(``X-Echelon-Timeout``: it answers 504 with the attempts made), the client waiting a few
seconds longer for that answer. ``complete`` and the ``call_with_*`` methods wait at most the
client's ``timeout`` (and never less than their ``request_timeout`` plus that margin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from pydantic import Field

from .config import WorkflowNode
from .errors import EchelonError

__all__ = ["EchelonClient", "LLMError", "LLMResult", "NodeConfig", "load_node_config"]

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
#: Seconds the client waits beyond a ``request_timeout`` for the sidecar's own 504.
DEADLINE_GRACE = 5.0
#: Node fields only the sidecar can apply, and what they do there.
SIDECAR_ONLY_FIELDS = {
    "task_config.timeout": "it bounds each attempt, inside the sidecar",
    "task_config.max_retries": "it sets each tier's retries, inside the sidecar",
    "polling_pool": "the sidecar serves the node from its pool first",
    "concurrency_config": "the sidecar limits the node's calls across all its callers",
}


class LLMError(EchelonError):
    """The sidecar could not serve the request; ``attempts`` lists what it tried."""

    def __init__(self, status: int, message: str, attempts: list[dict[str, Any]] | None = None,
                 code: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.code = code
        self.attempts = attempts or []


@dataclass
class LLMResult:
    """A served answer and how it was served."""

    text: str
    served_by: str
    tier: str
    attempts: int
    response: dict[str, Any] = field(repr=False, default_factory=dict)


class NodeConfig(WorkflowNode):
    """A workflow node's config and the name the sidecar knows it by (if known)."""

    name: str | None = Field(None, description="The node's name in the sidecar's config.")


def load_node_config(source: dict[str, Any] | str | Path, name: str | None = None) -> NodeConfig:
    """A workflow node from a dict, or from a YAML file (``workflow_nodes: {name: {...}}``).

    From a file, ``name`` picks the node (it may be left out when the file holds one) and the
    result keeps it; from a dict, the result carries ``name`` when given. A named node is
    called by its name (see the module docstring).
    """
    if isinstance(source, dict):
        return NodeConfig.model_validate({**source, "name": name} if name else source)
    data = yaml.safe_load(Path(source).read_text(encoding="utf-8")) or {}
    nodes: dict[str, Any] = data.get("workflow_nodes", data) if isinstance(data, dict) else {}
    if name is None:
        if len(nodes) != 1:
            raise ValueError(f"{source} holds {len(nodes)} nodes; name the one to load")
        name = next(iter(nodes))
    if name not in nodes:
        raise ValueError(f"{source} has no workflow node {name!r} (it has {', '.join(nodes)})")
    return NodeConfig.model_validate({**nodes[name], "name": name})


class EchelonClient:
    """Calls the sidecar on localhost (see the module docstring).

    ``timeout``: the longest ``complete`` and the ``call_with_*`` methods wait for an answer
    (seconds; None for no limit). ``call_node`` waits for the sidecar instead (see the module
    docstring).
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, timeout: float | None = 600.0,
                 session_id: str | None = None) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.timeout = timeout
        self.session_id = session_id
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EchelonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # each request sets its own total timeout (see _post)
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def complete(self, model: str, messages: Sequence[dict[str, Any]], *,
                       fallback_groups: Sequence[str] | None = None, node: str | None = None,
                       request_timeout: float | None = None, **params: Any) -> LLMResult:
        """One chat completion; ``params`` are OpenAI request fields (temperature, tools, ...).

        ``request_timeout`` is a deadline for the whole request, enforced by the sidecar.
        """
        wait = self.timeout
        if wait is not None and request_timeout is not None:
            wait = max(wait, request_timeout + DEADLINE_GRACE)
        return await self._post(model, messages, fallback_groups, node, request_timeout, wait,
                                params)

    async def _post(self, model: str, messages: Sequence[dict[str, Any]],
                    fallback_groups: Sequence[str] | None, node: str | None,
                    request_timeout: float | None, wait: float | None,
                    params: dict[str, Any]) -> LLMResult:
        headers = {"Content-Type": "application/json"}
        if fallback_groups is not None:
            headers["X-Echelon-Fallback-Groups"] = ",".join(fallback_groups) or "none"
        if node is not None:
            headers["X-Echelon-Node"] = node
        if request_timeout is not None:
            headers["X-Echelon-Timeout"] = f"{request_timeout:g}"
        if self.session_id is not None:
            headers["X-Echelon-Session"] = self.session_id
        body = {"model": model, "messages": list(messages), **params}
        timeout = aiohttp.ClientTimeout(total=wait, connect=self.timeout)
        async with self._http().post(f"{self.base_url}/v1/chat/completions", timeout=timeout,
                                     data=orjson.dumps(body), headers=headers) as response:
            raw = await response.read()
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise LLMError(response.status, raw[:200].decode(errors="replace")) from None
            if response.status != 200:
                err = data.get("error", {}) if isinstance(data, dict) else {}
                raise LLMError(response.status, str(err.get("message", "request failed")),
                               err.get("attempts"), err.get("code"))
            message = data["choices"][0]["message"]
            return LLMResult(
                text=message.get("content") or "",
                served_by=response.headers.get("X-Echelon-Served-By", ""),
                tier=response.headers.get("X-Echelon-Tier", ""),
                attempts=int(response.headers.get("X-Echelon-Attempts", "1")),
                response=data,
            )

    async def call_with_group(self, group: str, prompt: str, **params: Any) -> str:
        """Ask a group (``plan_group``) or a tier (``plan_group.echelon1``); its own fallback
        chain applies."""
        result = await self.complete(group, [{"role": "user", "content": prompt}], **params)
        return result.text

    async def call_with_fallback_groups(self, groups: Sequence[str], prompt: str,
                                        **params: Any) -> str:
        """Try ``groups`` in order: the first is the target, the rest replace its fallbacks."""
        if not groups:
            raise ValueError("give at least one group reference")
        first, *rest = groups
        result = await self.complete(first, [{"role": "user", "content": prompt}],
                                     fallback_groups=rest, **params)
        return result.text

    async def call_node(self, node: WorkflowNode | str, prompt: str, *,
                        request_timeout: float | None = None, **params: Any) -> LLMResult:
        """Serve ``prompt`` the way a workflow node says: a node of the sidecar's config, by
        name (or a :class:`NodeConfig` that carries its name), or a node config without a name
        (see the module docstring for what each means and how long it waits)."""
        messages = [{"role": "user", "content": prompt}]
        wait = None if request_timeout is None else request_timeout + DEADLINE_GRACE
        name = node if isinstance(node, str) else getattr(node, "name", None)
        if name is not None:
            return await self._post(name, messages, None, None, request_timeout, wait, params)
        assert isinstance(node, WorkflowNode)
        unsupported = _sidecar_only_fields(node)
        if unsupported:
            raise ValueError(
                "call_node: a node config without a name sets "
                + "; ".join(f"{f} ({SIDECAR_ONLY_FIELDS[f]})" for f in unsupported)
                + ", which only the sidecar can apply: declare the node in the sidecar's "
                "workflow_nodes and call it by name (call_node('<node>', ...), or "
                "load_node_config(..., name='<node>')), or leave "
                + (" and ".join(unsupported)) + " out"
            )
        task = node.task_config
        thinking = (task.thinking_config if task and task.thinking_config else
                    node.thinking_config)
        if thinking is not None and thinking.enabled and "thinking" not in params:
            params["thinking"] = {"type": "enabled",
                                  "budget_tokens": thinking.budget_tokens or 4096}
        if task is not None and task.temperature is not None:
            params.setdefault("temperature", task.temperature)
        return await self._post(node.llm_group, messages, node.fallback_groups, None,
                                request_timeout, wait, params)


def _sidecar_only_fields(node: WorkflowNode) -> list[str]:
    task = node.task_config
    values = {
        "task_config.timeout": task.timeout if task else None,
        "task_config.max_retries": task.max_retries if task else None,
        "polling_pool": node.polling_pool,
        "concurrency_config": node.concurrency_config,
    }
    return [field for field, value in values.items() if value is not None]
