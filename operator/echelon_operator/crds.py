"""Generate the CRDs from the config model (one source of truth), and check they are fresh.

The pydantic JSON schema is turned into a Kubernetes structural schema: references inlined,
optional fields without their ``null`` branch, OpenAPI v3.0 exclusive bounds, no titles and no
defaults (the sidecar applies defaults; the API server must not rewrite users' specs).

The admission rules the config model carries (``x-kubernetes-validations``, see
``echelon_sidecar.config.admission``) need Kubernetes 1.25+; older API servers (and kubectl's
validation against them) refuse the field, so a copy without them is written to
``<dir>/pre-1.25/`` (the chart picks it by the cluster's version). On those servers the
operator still reports the same problems as an ``Invalid`` condition.

When the Helm chart sits beside the CRD directory (``<dir>/../charts/echelon/Chart.yaml``, as
in the repository), the chart's copies are generated and checked too: the CRDs under
``files/crds/`` (its ``templates/crd/`` include them) and the operator's RBAC rules from
:mod:`echelon_operator.rbac` in ``files/rbac-rules.yaml`` (its Roles render from them).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from echelon_sidecar.config import API_GROUP, PollingPoolSpec, TaskGroupSpec

from .status_model import PollingPoolStatus, TaskGroupStatus

__all__ = [
    "CHART_CRD_DIR",
    "CHART_DIR",
    "CHART_RBAC_FILE",
    "CRD_FILES",
    "RULES_DIR",
    "RULES_MIN_VERSION",
    "build_crds",
    "chart_dir_for",
    "check_crds",
    "generated_files",
    "rbac_rules_document",
    "structural_schema",
    "without_rules",
    "write_crds",
]

VERSION = "v1alpha1"
CRD_FILES = {
    "TaskGroup": "taskgroups.echelon.dev.yaml",
    "PollingPool": "pollingpools.echelon.dev.yaml",
}
_DROP = {"title", "default", "examples", "propertyNames"}
#: the Helm chart, relative to the parent of the CRD directory (the repository root)
CHART_DIR = Path("charts") / "echelon"
#: inside the chart: the CRD copies and the RBAC rule lists
CHART_CRD_DIR = Path("files") / "crds"
CHART_RBAC_FILE = Path("files") / "rbac-rules.yaml"
RBAC_SCOPES: tuple[Literal["cluster", "namespaced"], ...] = ("cluster", "namespaced")
#: the first Kubernetes release that evaluates x-kubernetes-validations (on by default)
RULES_MIN_VERSION = (1, 25)
#: beside the CRDs: the same CRDs without admission rules, for older API servers
RULES_DIR = Path("pre-1.25")
RULES_KEY = "x-kubernetes-validations"


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
    if "$ref" in node or "anyOf" in node:
        return _convert(_unwrap(node, defs), defs)
    out: dict[str, Any] = {}
    for key, value in _with_default_described(node).items():
        if key not in _DROP:
            _convert_keyword(out, key, value, defs)
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "description" in out:  # `kubectl explain` shows descriptions, not enums nor bounds
        out["description"] = _describe_constraints(out)
    if "properties" in out or "additionalProperties" in out:
        out.setdefault("type", "object")
    return out


def _unwrap(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A ``$ref`` inlined (the node's own keys win), or an ``X | None`` union as ``X``."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        return {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
    branches = [b for b in node["anyOf"] if b.get("type") != "null"]
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    if len(branches) == 1:
        return {**branches[0], **rest}
    raise ValueError(f"cannot express a union in a structural schema: {node}")


def _with_default_described(node: dict[str, Any]) -> dict[str, Any]:
    """The node with a scalar default named in its description (the CRDs carry no defaults)."""
    default = node.get("default")
    if default is not None and "description" in node and not isinstance(default, (dict, list)):
        shown = str(default).lower() if isinstance(default, bool) else default
        return {**node, "description": f"{node['description']} Default: {shown}."}
    return node


def _convert_keyword(out: dict[str, Any], key: str, value: Any, defs: dict[str, Any]) -> None:
    """Write one JSON-schema keyword of a node into ``out`` in its structural-schema form."""
    if key == "exclusiveMinimum" and not isinstance(value, bool):
        out["minimum"], out["exclusiveMinimum"] = value, True
    elif key == "exclusiveMaximum" and not isinstance(value, bool):
        out["maximum"], out["exclusiveMaximum"] = value, True
    elif key == "const":
        out["enum"] = [value]
    elif key == "properties":
        out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
    elif key == "additionalProperties":
        # False is left out: structural schemas prune unknown fields; kubectl validates them
        if value is not False:
            out[key] = _convert(value, defs) if isinstance(value, dict) else value
    elif key == "description":
        out[key] = " ".join(str(value).split())
    else:
        out[key] = _convert(value, defs)


def _describe_constraints(node: dict[str, Any]) -> str:
    text: str = node["description"]
    enum = node.get("enum")
    if enum and len(enum) > 1 and not all(str(v) in text for v in enum):
        text += " One of: " + ", ".join(str(v) for v in enum) + "."
    bounds = []
    if "minimum" in node:
        bounds.append((">" if node.get("exclusiveMinimum") else ">=") + f" {node['minimum']}")
    if "maximum" in node:
        bounds.append(("<" if node.get("exclusiveMaximum") else "<=") + f" {node['maximum']}")
    if bounds:
        text += " Must be " + " and ".join(bounds) + "."
    return text


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
PEERING_DIR = Path("peering")
_PEERING_HEADER = """\
# One of kopf's peering CRDs, needed only to run several operator replicas (`echelon-operator
# --peering NAME`, or the chart's peering.enabled). The operator creates the KopfPeering (or,
# cluster-wide, ClusterKopfPeering) object NAME itself. Generated by `echelon crds`.
"""


def peering_crds() -> list[dict[str, Any]]:
    """kopf's ``KopfPeering`` (namespaced) and ``ClusterKopfPeering`` CRDs (group kopf.dev)."""
    out = []
    for kind, plural, scope in (("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
                                ("KopfPeering", "kopfpeerings", "Namespaced")):
        out.append({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.kopf.dev",
                         "labels": {"app.kubernetes.io/part-of": "echelon"}},
            "spec": {
                "group": "kopf.dev",
                "scope": scope,
                "names": {"kind": kind, "plural": plural, "singular": plural[:-1]},
                "versions": [{
                    "name": "v1", "served": True, "storage": True,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "description": "The operator replicas of one peering group: kopf "
                        "keeps each replica's priority and last-seen time in status.",
                        "properties": {"status": {
                            "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    }},
                }],
            },
        })
    return out


def render(crd: dict[str, Any]) -> str:
    return _HEADER + yaml.safe_dump(crd, sort_keys=False, width=100)


_PRE_RULES_HEADER = """\
# Generated by `echelon crds` from the config model. Do not edit. For Kubernetes 1.20-1.24:
# the CRD without its admission rules (x-kubernetes-validations, which these API servers
# refuse); the operator reports the same problems as an Invalid condition.
"""


def without_rules(node: Any) -> Any:
    """A copy of a CRD (or any part of one) without ``x-kubernetes-validations``."""
    if isinstance(node, dict):
        return {k: without_rules(v) for k, v in node.items() if k != RULES_KEY}
    if isinstance(node, list):
        return [without_rules(v) for v in node]
    return node


_RBAC_HEADER = """\
# Generated by `echelon crds` from echelon_operator.rbac (the one source of the operator's
# RBAC rules). Do not edit. The chart picks the lists of `rbac.scope` and binds
# clusterRole cluster-wide, watchedNamespaceRole in each of `watchNamespaces`, and
# operatorNamespaceRole in the release namespace (its resourceNames become the name of the
# chart's global-config ConfigMap).
"""


def rbac_rules_document() -> dict[str, Any]:
    """scope (and ``<scope>-peering``) -> the rule lists of :func:`echelon_operator.rbac.rules`."""
    from . import rbac

    doc: dict[str, Any] = {scope: rbac.rules(scope) for scope in RBAC_SCOPES}
    doc.update({f"{scope}-peering": rbac.rules(scope, peering=True) for scope in RBAC_SCOPES})
    return doc


def chart_dir_for(directory: Path) -> Path | None:
    """The Helm chart beside the CRD directory ``directory``, if there is one."""
    chart = directory.parent / CHART_DIR
    return chart if (chart / "Chart.yaml").is_file() else None


def generated_files(directory: Path) -> dict[Path, str]:
    """Every generated file (path -> text) for the CRD directory ``directory``: the CRDs, and
    the chart's CRD copies and RBAC rules when the chart sits beside it."""
    built = build_crds()
    crds = {kind: render(crd) for kind, crd in built.items()}
    legacy = {RULES_DIR / CRD_FILES[kind]: _PRE_RULES_HEADER + yaml.safe_dump(
        without_rules(crd), sort_keys=False, width=100) for kind, crd in built.items()}
    out = {directory / CRD_FILES[kind]: text for kind, text in crds.items()}
    out.update({directory / name: text for name, text in legacy.items()})
    peering = {PEERING_DIR / f"{crd['metadata']['name']}.yaml":
               _PEERING_HEADER + yaml.safe_dump(crd, sort_keys=False, width=100)
               for crd in peering_crds()}
    out.update({directory / name: text for name, text in peering.items()})
    chart = chart_dir_for(directory)
    if chart is not None:
        out.update({chart / CHART_CRD_DIR / CRD_FILES[kind]: text for kind, text in crds.items()})
        out.update({chart / CHART_CRD_DIR / name: text for name, text in legacy.items()})
        out.update({chart / CHART_CRD_DIR / name: text for name, text in peering.items()})
        out[chart / CHART_RBAC_FILE] = _RBAC_HEADER + yaml.safe_dump(
            rbac_rules_document(), sort_keys=False, width=100)
    return out


def write_crds(directory: Path) -> list[Path]:
    """Write the CRDs to ``directory`` (and the chart's copies, see :func:`generated_files`)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for path, text in generated_files(directory).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check_crds(directory: Path) -> list[str]:
    """The generated files (CRDs in ``directory``, the chart's copies) missing or stale."""
    stale = []
    for path, text in generated_files(directory).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(str(path))
    return stale
