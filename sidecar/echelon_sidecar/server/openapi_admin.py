"""OpenAPI 3.0 description of the sidecar's admin port (probes, Prometheus metrics and the
``/v1/status`` the operator polls, as in docs/status-api.md); served at its ``GET /openapi.json``.
"""

from __future__ import annotations

from typing import Any

from .openapi import _NULLABLE_NUMBER, _NULLABLE_STRING, _json, _ref, _self_path, _spec

__all__ = ["admin_spec"]


_STATUS = {
    "type": "object",
    "required": ["config_version", "ready", "pool", "sidecars", "reload", "instances", "pools",
                 "limits"],
    "properties": {
        "config_version": _NULLABLE_STRING,
        "ready": {"type": "boolean"},
        "pool": _NULLABLE_STRING,
        "sidecars": {"type": "integer", "minimum": 1},
        "slot": {"type": "integer", "minimum": 0, "nullable": True},
        "reload": {"type": "object", "required": ["reloads", "failures", "last_error"],
                   "properties": {"reloads": {"type": "integer"},
                                  "failures": {"type": "integer"},
                                  "last_error": _NULLABLE_STRING,
                                  "last_attempt": _NULLABLE_NUMBER}},
        "instances": {"type": "array", "items": {
            "type": "object",
            "required": ["group", "model", "state", "consecutive_failures"],
            "properties": {
                "group": {"type": "string"},
                "model": {"type": "string"},
                "provider": _NULLABLE_STRING,
                "state": {"type": "string", "enum": ["closed", "open", "half_open"]},
                "consecutive_failures": {"type": "integer", "minimum": 0},
                "last_error": _NULLABLE_STRING,
                "open_since": _NULLABLE_NUMBER,
                "open_until": _NULLABLE_NUMBER,
            }}},
        "pools": {"type": "object", "additionalProperties": {"type": "array", "items": {
            "type": "object",
            "required": ["group", "tier", "model", "healthy", "consecutive_failures"],
            "properties": {
                "group": {"type": "string"}, "tier": {"type": "string"},
                "model": {"type": "string"}, "healthy": {"type": "boolean"},
                "on_probation": {"type": "boolean"},
                "consecutive_failures": {"type": "integer", "minimum": 0},
                "last_error": _NULLABLE_STRING, "circuit": _NULLABLE_STRING,
            }}}},
        "limits": {"type": "array", "items": {
            "type": "object", "required": ["level", "key", "kind"],
            "properties": {"level": {"type": "string"}, "key": {"type": "string"},
                           "kind": {"type": "string", "enum": ["concurrency", "rate", "tokens"]}}}},
        "sessions": {"type": "object"},
        "retry_after": {"type": "array", "items": {
            "type": "object", "required": ["model", "retry_in"],
            "properties": {"model": {"type": "string"}, "provider": _NULLABLE_STRING,
                           "retry_in": {"type": "number", "minimum": 0}}}},
    },
}


def admin_spec() -> dict[str, Any]:
    """The admin port's OpenAPI document."""
    probe = {"type": "object", "required": ["status"], "properties": {
        "status": {"type": "string"}, "reason": {"type": "string"},
        "config_version": {"type": "string"}}}
    paths = {
        "/healthz": {"get": {"summary": "Liveness: the process answers.", "responses": {
            "200": _json(probe, "Alive.")}}},
        "/readyz": {"get": {"summary": "Readiness: a valid config is loaded and not draining.",
                            "responses": {"200": _json(probe, "Ready."),
                                          "503": _json(probe, "Not ready, or draining.")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics.", "responses": {"200": {
            "description": "Text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/v1/status": {"get": {"summary": "Circuit, pool and limit state (docs/status-api.md); "
                               "no credential, prompt or response text.",
                               "responses": {"200": _json(_ref("Status"), "The state.")}}},
        "/openapi.json": _self_path(),
    }
    return _spec("Echelon sidecar: admin port", "Probes, Prometheus metrics and the status the "
                 "operator polls.", paths, {"Status": _STATUS})
