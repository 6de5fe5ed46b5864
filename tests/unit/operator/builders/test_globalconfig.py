"""parse_global_configmap and merge_global_configs: the global config (model catalog, nodes,
limits) from ConfigMaps, namespace over operator, with problems naming the key and field."""

from __future__ import annotations

import yaml

from echelon_operator.builders import merge_global_configs, parse_global_configmap


def test_namespace_global_config_wins_by_id_over_the_operators() -> None:
    operator_cfg, _ = parse_global_configmap("echelon-system", "g", {"config.yaml": yaml.safe_dump({
        "models": {"a": {"provider": "openai", "model": "gpt-4"},
                   "b": {"provider": "openai", "model": "gpt-4"}},
        "rate_limiting": {"algorithm": "token_bucket", "bucket_size": 1, "refill_rate": 1},
    })})
    ns_cfg, _ = parse_global_configmap("team", "g", {"config.yaml": yaml.safe_dump({
        "models": {"b": {"provider": "anthropic", "model": "claude"}},
    })})
    merged = merge_global_configs([operator_cfg, ns_cfg])
    assert merged.models["a"]["provider"] == "openai"
    assert merged.models["b"]["provider"] == "anthropic"
    assert merged.rate_limiting["bucket_size"] == 1
    assert merged.sources == ("ConfigMap echelon-system/g", "ConfigMap team/g")


def test_global_configmap_problems_name_the_configmap_key_and_field() -> None:
    _, problems = parse_global_configmap("ns", "g", {
        "a.yaml": "models: {x: {provider: nope, model: m}}\ntask_groups: {}\n",
        "b.yaml": "models: [1, 2\n",
        "notes.txt": "ignored: not yaml by name",
    })
    assert any("ConfigMap ns/g, key a.yaml: models.x.provider" in p for p in problems)
    assert any("section 'task_groups' is not global config" in p for p in problems)
    assert any("key b.yaml" in p and "not valid YAML" in p for p in problems)
