"""What the indexes keep per object: parsed specs, problems naming the field, selectors."""

from __future__ import annotations

from echelon_operator.entries import GlobalEntry, GroupEntry, PoolEntry, selector_string


def body(kind: str, spec: dict, **meta: object) -> dict:
    return {"apiVersion": "echelon.dev/v1alpha1", "kind": kind,
            "metadata": {"name": "x", "namespace": "ns", "uid": "u1", "generation": 2, **meta},
            "spec": spec, "status": {"ready": "True"}}


def test_group_entry_parses_once_and_copies_what_it_keeps() -> None:
    raw = body("TaskGroup", {"echelons": {"e1": {"models": ["m"], "rpmLimit": 5}}})
    entry = GroupEntry.from_body(raw)
    assert entry.model is not None and entry.problems == ()
    assert entry.model.echelons["e1"].rpm_limit == 5
    raw["spec"]["echelons"]["e1"]["rpmLimit"] = 6  # the event's body is not shared
    assert entry.spec["echelons"]["e1"]["rpmLimit"] == 5
    assert (entry.generation, entry.status) == (2, {"ready": "True"})
    assert entry.ref()["kind"] == "TaskGroup"


def test_a_spec_the_model_rejects_has_problems_naming_the_field() -> None:
    entry = GroupEntry.from_body(body("TaskGroup", {"echelons": {
        "e1": {"models": ["m"], "priority": 1}, "e2": {"models": ["n"], "priority": 1}}}))
    assert entry.model is None
    assert entry.problems[0].startswith("TaskGroup x spec: tiers 'e1' and 'e2' share priority 1")
    pool = PoolEntry.from_body(body("PollingPool", {"taskGroups": ["g"], "weights": "x"}))
    assert pool.model is None and "PollingPool x spec.weights" in pool.problems[0]


def test_global_entry_digest_changes_with_data() -> None:
    cm = {"metadata": {"name": "g", "namespace": "ns", "uid": "u"},
          "data": {"config.yaml": "models: {}\n"}}
    first = GlobalEntry.from_body(cm)
    cm["data"]["config.yaml"] = "models: {m: {provider: openai, model: x}}\n"
    assert GlobalEntry.from_body(cm).digest != first.digest


def test_selector_string_covers_labels_and_expressions() -> None:
    assert selector_string({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["x", "y"]},
        {"key": "env", "operator": "NotIn", "values": ["dev"]},
        {"key": "has", "operator": "Exists"},
        {"key": "not", "operator": "DoesNotExist"},
    ]}) == "a=1,b=2,tier in (x,y),env notin (dev),has,!not"
