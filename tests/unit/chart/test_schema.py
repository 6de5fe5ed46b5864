"""values.schema.json: typos, wrong types and credentials are refused, with the key's path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from echelon_sidecar.config import (
    ConcurrencyControl,
    ModelEntry,
    RateLimiting,
    SlidingWindowParams,
    TokenBucketParams,
    WorkflowNode,
)
from echelon_sidecar.config.catalog import SecretKeyRef
from echelon_sidecar.config.nodes import TaskConfig
from echelon_sidecar.config.tiers import ConcurrencySetting, ThinkingConfig

from .helm import CHART, render, render_error

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFS = SCHEMA["definitions"]
MODEL = "globalConfig.models.gpt"
GOOD_MODEL = {f"{MODEL}.provider": "openai", f"{MODEL}.model": "gpt-4o"}


@pytest.mark.parametrize(("key", "value", "named"), [
    ("image.reposiotry", "x", "'reposiotry'"),
    ("watchNamespace", "x", "'watchNamespace'"),
    ("operator.pollIntervall", 3, "'pollIntervall'"),
    ("crds.kep", True, "'kep'"),
    ("metrics.podMonitor.enable", True, "'enable'"),
    ("sidecar.image.pullpolicy", "Always", "'pullpolicy'"),
    ("operator.securityContext.readOnlyRootFileSystem", True, "'readOnlyRootFileSystem'"),
])
def test_a_misspelt_key_is_refused_by_name(key: str, value: Any, named: str) -> None:
    error = render_error(sets={key: value})
    assert "additional properties" in error and named in error, error
    parent = "/" + "/".join(key.split(".")[:-1])
    assert f"at '{parent if parent != '/' else ''}'" in error, error


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("operator.pollInterval", "fast", "want number"),
    ("operator.pollInterval", 0, "exclusiveMinimum"),
    ("operator.livenessPort", 70000, "maximum"),
    ("sidecar.dataPort", "8080", "want integer"),
    ("operator.logLevel", "TRACE", "must be one of"),
    ("rbac.scope", "all", "must be one of"),
    ("crds.keep", "yes", "want boolean"),
    ("watchNamespaces", "team-a", "want array"),
    ("sidecar.image.pullPolicy", "Sometimes", "must be one of"),
    ("metrics.prometheusRule.circuitOpenFor", "5 minutes", "pattern"),
    ("metrics.prometheusRule.fallbackSuccessRate", 90, "maximum"),
])
def test_a_bad_type_or_value_is_refused(key: str, value: Any, expected: str) -> None:
    error = render_error(sets={key: value})
    assert "/" + key.replace(".", "/") in error and expected in error, error


@pytest.mark.parametrize("field", ["apiKey", "api_key", "apiKeyValue", "apiKeyEnv",
                                   "apiKeyFile", "secret", "token"])
def test_a_credential_in_a_model_is_refused(field: str) -> None:
    error = render_error(sets={**GOOD_MODEL, f"{MODEL}.{field}": "sk-live-123"})
    assert f"'{field}' not allowed" in error, error
    assert "/globalConfig/models/gpt" in error


@pytest.mark.parametrize("header", ["Authorization", "x-api-key", "X-Goog-Api-Key", "Cookie"])
def test_a_credential_header_is_refused(header: str) -> None:
    error = render_error(sets={**GOOD_MODEL, f"{MODEL}.headers.{header}": "Bearer sk-1"})
    assert f"invalid propertyName '{header}'" in error, error


def test_a_model_names_a_secret_key_not_a_value() -> None:
    docs = render(sets={**GOOD_MODEL, f"{MODEL}.apiKeySecret.name": "llm-credentials",
                        f"{MODEL}.apiKeySecret.key": "openai",
                        f"{MODEL}.headers.X-Tenant": "a"})
    assert docs
    error = render_error(sets={**GOOD_MODEL, f"{MODEL}.apiKeySecret.name": "llm-credentials"})
    assert "missing property 'key'" in error, error


def test_a_model_needs_a_known_provider_and_openai_compatible_a_base_url() -> None:
    error = render_error(sets={f"{MODEL}.provider": "azure", f"{MODEL}.model": "x"})
    assert "/globalConfig/models/gpt/provider" in error
    error = render_error(sets={f"{MODEL}.provider": "openai_compatible", f"{MODEL}.model": "x"})
    assert "baseUrl" in error, error
    error = render_error(sets={**GOOD_MODEL, f"{MODEL}.baseUrl": "api.openai.com"})
    assert "/globalConfig/models/gpt/baseUrl" in error


def test_workflow_nodes_and_limits_are_checked_too() -> None:
    node = "globalConfig.workflowNodes.n"
    error = render_error(sets={f"{node}.llmGroup": "g", f"{node}.llm_group": "g"})
    assert "'llm_group' not allowed" in error
    error = render_error(sets={f"{node}.llmGroup": "g", f"{node}.concurrencyConfig.limit": 0})
    assert "/globalConfig/workflowNodes/n/concurrencyConfig/limit" in error
    error = render_error(sets={"globalConfig.rateLimiting.algorithm": "leaky_bucket"})
    assert "/globalConfig/rateLimiting/algorithm" in error
    error = render_error(sets={"globalConfig.concurrencyControl.levels.tier.limit": 3})
    assert "'tier' not allowed" in error


def _objects(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            out.append((path, node))
        for key, value in node.items():
            if key not in ("if", "then", "not", "propertyNames"):  # conditions, not objects
                out += _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _objects(value, f"{path}[{index}]")
    return out


#: objects whose inside is Kubernetes' (the API server validates it) or Helm's own
FREE_FORM = {"/properties/global", "/definitions/affinity/properties/nodeAffinity",
             "/definitions/affinity/properties/podAffinity",
             "/definitions/affinity/properties/podAntiAffinity"}


def test_every_object_in_the_schema_refuses_unknown_keys() -> None:
    objects = _objects(SCHEMA)
    assert len(objects) > 40
    for path, node in objects:
        if path in FREE_FORM:
            continue
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{path or '/'} accepts any key"
        else:  # a map: every value is checked
            assert isinstance(node.get("additionalProperties"), dict), f"{path}: free-form"


@pytest.mark.parametrize(("definition", "model", "left_out"), [
    ("model", ModelEntry, {"apiKeyEnv", "apiKeyFile"}),
    ("workflowNode", WorkflowNode, set()),
    ("thinkingConfig", ThinkingConfig, set()),
    ("concurrencySetting", ConcurrencySetting, set()),
    ("concurrencyControl", ConcurrencyControl, set()),
    ("rateLimiting", RateLimiting, set()),
])
def test_global_config_schema_has_the_config_models_fields(
    definition: str, model: type[BaseModel], left_out: set[str]
) -> None:
    """The values of globalConfig follow the config model (camelCase): no field missing or
    invented. apiKeyEnv/apiKeyFile are left out: in Kubernetes the credential is a Secret."""
    fields = {f.alias or name for name, f in model.model_fields.items()}
    assert set(DEFS[definition]["properties"]) == fields - left_out


def test_nested_global_config_definitions_have_the_config_models_fields() -> None:
    def names(model: type[BaseModel]) -> set[str]:
        return {f.alias or n for n, f in model.model_fields.items()}

    model = DEFS["model"]["properties"]
    assert set(model["apiKeySecret"]["properties"]) == names(SecretKeyRef)
    node = DEFS["workflowNode"]["properties"]
    assert set(node["taskConfig"]["properties"]) == names(TaskConfig)
    rate = DEFS["rateLimiting"]["properties"]
    assert set(rate["tokenBucket"]["properties"]) == names(TokenBucketParams)
    assert set(rate["slidingWindow"]["properties"]) == names(SlidingWindowParams)
    levels = DEFS["concurrencyControl"]["properties"]["levels"]["properties"]
    assert set(levels) == {"group", "echelon", "model", "node"}
