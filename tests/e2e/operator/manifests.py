"""Small manifest builders for the e2e tests."""

from __future__ import annotations

from typing import Any

API = "echelon.dev/v1alpha1"


def global_config(models: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    import yaml

    body = {"models": models if models is not None else {
        "m-openai": {"provider": "openai", "model": "gpt-4o",
                     "api_key_secret": {"name": "llm", "key": "openai"}},
        "m-claude": {"provider": "anthropic", "model": "claude",
                     "api_key_secret": {"name": "llm", "key": "anthropic"}},
    }, **sections}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "echelon-global-config",
                         "labels": {"echelon.dev/config": "global"}},
            "data": {"config.yaml": yaml.safe_dump(body)}}


def task_group(name: str, models: list[str] | None = None, fallback: list[str] | None = None,
               **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"echelons": {"echelon1": {
        "models": models or ["m-openai", "m-claude"], "priority": 1, "rpmLimit": 60,
        "concurrencyLimit": 10}}}
    if fallback is not None:
        body["fallbackConfig"] = {"fallbackGroups": fallback}
    body.update(spec)
    return {"apiVersion": API, "kind": "TaskGroup", "metadata": {"name": name}, "spec": body}


def polling_pool(name: str, groups: list[str], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "PollingPool", "metadata": {"name": name},
            "spec": {"taskGroups": groups, **spec}}


def deployment(name: str, pool: str | None = None, replicas: int = 1,
               **labels: str) -> dict[str, Any]:
    meta_labels = {"app": name, **labels}
    if pool is not None:
        meta_labels["echelon.dev/pool"] = pool
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": meta_labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1",
                                         "env": [{"name": "A", "value": "1"}]}]},
            },
        },
    }


def _pod(name: str, restart: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}
    if restart:
        spec["restartPolicy"] = restart
    return {"metadata": {"labels": {"app": name}}, "spec": spec}


def _meta(name: str, pool: str | None) -> dict[str, Any]:
    labels = {"app": name}
    if pool is not None:
        labels["echelon.dev/pool"] = pool
    return {"name": name, "labels": labels}


def statefulset(name: str, pool: str | None = None, replicas: int = 1) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta(name, pool),
            "spec": {"replicas": replicas, "serviceName": name,
                     "selector": {"matchLabels": {"app": name}}, "template": _pod(name)}}


def job(name: str, pool: str | None = None, parallelism: int = 1,
        template: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(name, pool),
            "spec": {"parallelism": parallelism, "completions": parallelism,
                     "template": template or _pod(name, "Never")}}


def cronjob(name: str, pool: str | None = None, parallelism: int = 1,
            suspend: bool = True) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": _meta(name, pool),
            "spec": {"schedule": "0 3 * * *", "suspend": suspend, "jobTemplate": {"spec": {
                "parallelism": parallelism, "template": _pod(name, "Never")}}}}
