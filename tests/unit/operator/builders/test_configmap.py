"""The pool's ConfigMap and the patch that keeps it right (and leaves others' changes alone)."""

from __future__ import annotations

import json

from echelon_operator.builders import (
    SecretRef,
    configmap_patch,
    is_managed,
    render_configmap,
    secret_refs_of,
)
from echelon_operator.names import configmap_name

from ..conftest import merge_patch

REFS = [SecretRef("ECHELON_KEY_A", "creds", "a")]


def desired(text: str = "models: {}\n") -> dict:
    return render_configmap("ns", "thinking-pool", "uid-1", text, "v1", REFS)


def test_configmap_is_named_labelled_and_owned_by_its_pool() -> None:
    cm = desired()
    meta = cm["metadata"]
    assert meta["name"] == "echelon-pool-thinking-pool"
    assert meta["labels"] == {"app.kubernetes.io/managed-by": "echelon-operator",
                              "echelon.dev/pool": "thinking-pool"}
    assert meta["ownerReferences"] == [{
        "apiVersion": "echelon.dev/v1alpha1", "kind": "PollingPool", "name": "thinking-pool",
        "uid": "uid-1", "controller": True, "blockOwnerDeletion": True,
    }]
    assert cm["data"] == {"config.yaml": "models: {}\n"}
    assert is_managed(cm)
    assert secret_refs_of(cm) == REFS
    assert json.loads(meta["annotations"]["echelon.dev/secret-refs"]) == [
        {"env": "ECHELON_KEY_A", "name": "creds", "key": "a"}]


def test_no_patch_when_the_configmap_already_holds_the_content() -> None:
    live = desired()
    live["metadata"]["labels"]["team"] = "x"  # someone else's label
    live["metadata"]["resourceVersion"] = "7"
    assert configmap_patch(live, desired()) is None


def test_patch_rewrites_data_and_keeps_foreign_labels() -> None:
    live = desired("old\n")
    live["metadata"]["labels"]["team"] = "x"
    live["data"]["stray.yaml"] = "x"
    patch = configmap_patch(live, desired("new\n"))
    assert patch is not None
    after = merge_patch(live, patch)
    assert after["data"] == {"config.yaml": "new\n"}
    assert after["metadata"]["labels"]["team"] == "x"
    assert configmap_patch(after, desired("new\n")) is None


def test_patch_restores_a_missing_owner_reference() -> None:
    live = desired()
    live["metadata"]["ownerReferences"] = []
    patch = configmap_patch(live, desired())
    assert patch == {"metadata": {"ownerReferences": desired()["metadata"]["ownerReferences"]}}


def test_long_pool_names_give_valid_configmap_names() -> None:
    name = configmap_name("p" * 250)
    assert len(name) <= 253 and name.startswith("echelon-pool-")
