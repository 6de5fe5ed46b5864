"""Test-run-wide settings.

pytest-xdist's ``--dist loadgroup`` (scripts/test) keeps tests marked ``xdist_group`` on one
worker by appending ``@<group>`` to their node ids; with pytest 9 (node ids are no longer
writable) that no longer happens and the groups are spread over the workers. The real-pods
tier (tests/e2e/pods) must run in order on one worker (one node per run, a story from
`helm install` to `helm uninstall`), so the scheduler below keeps every test under that folder
in one scope, whatever happens to the markers.
"""

from __future__ import annotations

from typing import Any

import pytest

#: node-id prefixes whose tests run together, in order, on one xdist worker
ONE_WORKER = {"tests/e2e/pods/": "real-pods"}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Scheduling(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            for prefix, group in ONE_WORKER.items():
                if nodeid.startswith(prefix):
                    return group
            return str(super()._split_scope(nodeid))

    return Scheduling(config, log)
