"""Generate the CRDs from the config model (one source of truth), and check they are fresh.

The pydantic JSON schema is turned into a Kubernetes structural schema: references inlined,
optional fields without their ``null`` branch, OpenAPI v3.0 exclusive bounds, no titles and no
defaults (the sidecar applies defaults; the API server must not rewrite users' specs).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from echelon_sidecar.config import API_GROUP, PollingPoolSpec, TaskGroupSpec

from .status import PollingPoolStatus, TaskGroupStatus

__all__ = ["CRD_FILES", "build_crds", "check_crds", "structural_schema", "write_crds"]

VERSION = "v1alpha1"
CRD_FILES = {
    "TaskGroup": "taskgroups.echelon.dev.yaml",
    "PollingPool": "pollingpools.echelon.dev.yaml",
}
_DROP = {"title", "default", "examples", "propertyNames"}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model`` (camelCase field names)."""
    raw = model.model_json_schema(by_alias=True)
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _convert(raw, defs)
    return schema


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(branches) == 1:
            return _convert({**branches[0], **rest}, defs)
        raise ValueError(f"cannot express a union in a structural schema: {node}")
    out: dict[str, Any] = {}
    default = node.get("default")
    if default is not None and "description" in node and not isinstance(default, (dict, list)):
        shown = str(default).lower() if isinstance(default, bool) else default
        node = {**node, "description": f"{node['description']} Default: {shown}."}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "additionalProperties":
            if value is False:
                continue  # structural schemas prune unknown fields; kubectl validates them
            out[key] = _convert(value, defs) if isinstance(value, dict) else value
        elif key == "description":
            out[key] = " ".join(str(value).split())
        else:
            out[key] = _convert(value, defs)
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "properties" in out or "additionalProperties" in out:
        out.setdefault("type", "object")
    return out


def _columns(kind: str) -> list[dict[str, Any]]:
    age = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ready = {"name": "Ready", "type": "string", "jsonPath": ".status.ready"}
    open_ = {"name": "Open", "type": "string", "jsonPath": ".status.openCircuits",
             "description": "Open circuits / instances over all sidecars"}
    if kind == "TaskGroup":
        return [
            {"name": "Tiers", "type": "integer", "jsonPath": ".status.tiers"},
            {"name": "Strategy", "type": "string", "jsonPath": ".status.strategy"},
            open_, ready, age,
        ]
    return [
        {"name": "Groups", "type": "string", "jsonPath": ".status.groups"},
        {"name": "Rotation", "type": "string", "jsonPath": ".status.rotation"},
        {"name": "Sidecars", "type": "integer", "jsonPath": ".status.sidecars"},
        open_, ready, age,
    ]


def build_crds() -> dict[str, dict[str, Any]]:
    """kind -> CustomResourceDefinition manifest."""
    specs: dict[str, tuple[type[BaseModel], type[BaseModel], str, str, str]] = {
        "TaskGroup": (TaskGroupSpec, TaskGroupStatus, "taskgroups", "taskgroup", "tg"),
        "PollingPool": (PollingPoolSpec, PollingPoolStatus, "pollingpools", "pollingpool", "pp"),
    }
    out: dict[str, dict[str, Any]] = {}
    for kind, (spec_model, status_model, plural, singular, short) in specs.items():
        spec = structural_schema(spec_model)
        status = structural_schema(status_model)
        status["x-kubernetes-preserve-unknown-fields"] = True  # kopf keeps its own bookkeeping
        schema = {
            "type": "object",
            "description": spec.get("description", kind),
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": spec,
                "status": status,
            },
            "required": ["spec"],
        }
        out[kind] = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "name": f"{plural}.{API_GROUP}",
                "labels": {"app.kubernetes.io/part-of": "echelon"},
            },
            "spec": {
                "group": API_GROUP,
                "scope": "Namespaced",
                "names": {
                    "kind": kind,
                    "listKind": f"{kind}List",
                    "plural": plural,
                    "singular": singular,
                    "shortNames": [short],
                    "categories": ["echelon"],
                },
                "versions": [{
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _columns(kind),
                }],
            },
        }
    return out


_HEADER = "# Generated by `echelon crds` from the config model. Do not edit.\n"


def render(crd: dict[str, Any]) -> str:
    return _HEADER + yaml.safe_dump(crd, sort_keys=False, width=100)


def write_crds(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, crd in build_crds().items():
        path = directory / CRD_FILES[kind]
        path.write_text(render(crd), encoding="utf-8")
        written.append(path)
    return written


def check_crds(directory: Path) -> list[str]:
    """Names of the CRD files in ``directory`` that are missing or differ from the model."""
    stale = []
    for kind, crd in build_crds().items():
        path = directory / CRD_FILES[kind]
        if not path.exists() or path.read_text(encoding="utf-8") != render(crd):
            stale.append(str(path))
    return stale
