"""A small client for applications, matching the source documents' usage.

::

    from echelon_sidecar.client import EchelonClient, LLMError

    async with EchelonClient() as llm:                       # http://127.0.0.1:8080
        text = await llm.call_with_group("plan_group.echelon1", prompt)
        try:
            text = await llm.call_with_group("plan_group.echelon1", prompt)
        except LLMError as e:                                  # every fallback failed
            print(e.attempts)                                  # each attempt and why it failed
        text = await llm.call_with_fallback_groups(["plan_group.echelon2", "fast_group.echelon1"],
                                                   prompt)
        node = load_node_config({"type": "llm", "llm_group": "thinking_group.echelon1",
                                 "fallback_groups": ["thinking_group.echelon2"],
                                 "task_config": {"timeout": 120}})
        result = await llm.call_node(node, prompt)             # result.text, result.served_by

It is a thin layer over the sidecar's OpenAI-compatible HTTP API: the sidecar does the routing,
the fallback and the circuit breaking; any OpenAI SDK works just as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from .config import WorkflowNode

__all__ = ["EchelonClient", "LLMError", "LLMResult", "load_node_config"]

DEFAULT_BASE_URL = "http://127.0.0.1:8080"


class LLMError(Exception):
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


def load_node_config(source: dict[str, Any] | str | Path, name: str | None = None) -> WorkflowNode:
    """A workflow node from a dict, or from a YAML file (``workflow_nodes: {name: {...}}``)."""
    if isinstance(source, dict):
        return WorkflowNode.model_validate(source)
    data = yaml.safe_load(Path(source).read_text(encoding="utf-8")) or {}
    nodes: dict[str, Any] = data.get("workflow_nodes", data) if isinstance(data, dict) else {}
    if name is None:
        if len(nodes) != 1:
            raise ValueError(f"{source} holds {len(nodes)} nodes; name the one to load")
        name = next(iter(nodes))
    if name not in nodes:
        raise ValueError(f"{source} has no workflow node {name!r} (it has {', '.join(nodes)})")
    return WorkflowNode.model_validate(nodes[name])


class EchelonClient:
    """Calls the sidecar on localhost (see the module docstring)."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, timeout: float = 600.0,
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
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def complete(self, model: str, messages: Sequence[dict[str, Any]], *,
                       fallback_groups: Sequence[str] | None = None, node: str | None = None,
                       request_timeout: float | None = None, **params: Any) -> LLMResult:
        """One chat completion; ``params`` are OpenAI request fields (temperature, tools, ...)."""
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
        async with self._http().post(f"{self.base_url}/v1/chat/completions",
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

    async def call_node(self, node: WorkflowNode | str, prompt: str, **params: Any) -> LLMResult:
        """Serve ``prompt`` the way a workflow node says: a node declared in the sidecar's
        config (by name), or a node config loaded with :func:`load_node_config`."""
        messages = [{"role": "user", "content": prompt}]
        if isinstance(node, str):
            return await self.complete(node, messages, **params)
        task = node.task_config
        thinking = (task.thinking_config if task and task.thinking_config else
                    node.thinking_config)
        if thinking is not None and thinking.enabled and "thinking" not in params:
            params["thinking"] = {"type": "enabled",
                                  "budget_tokens": thinking.budget_tokens or 4096}
        if task is not None and task.temperature is not None:
            params.setdefault("temperature", task.temperature)
        return await self.complete(node.llm_group, messages, fallback_groups=node.fallback_groups,
                                   request_timeout=task.timeout if task else None, **params)
