"""A kopf watcher that fails for good stops the operator (to be restarted), through kopf's own
task guard and log line -- so a kopf upgrade that changes either fails here."""

from __future__ import annotations

import logging
import threading

import pytest
from kopf._cogs.aiokits import aiotasks

from echelon_operator.deafness import KOPF_ORCHESTRATION, WatcherFailures


async def test_a_failed_watcher_sets_the_stop_flag_once() -> None:
    stop = threading.Event()
    failures = WatcherFailures(stop.set).install()
    logger = logging.getLogger(KOPF_ORCHESTRATION)

    async def watch() -> None:
        raise RuntimeError("404: the server could not find the requested resource")

    try:
        with pytest.raises(RuntimeError):
            await aiotasks.guard(watch(), name="watcher for taskgroups.v1alpha1.echelon.dev@ns",
                                 logger=logger, cancellable=True)
        assert stop.is_set()
        assert failures.failure is not None
        assert failures.failure.startswith("Watcher for taskgroups.v1alpha1.echelon.dev@ns")
        assert "could not find the requested resource" in failures.failure
    finally:
        logger.removeHandler(failures)


async def test_other_errors_and_cancellations_do_not_stop_the_operator() -> None:
    stop = threading.Event()
    failures = WatcherFailures(stop.set).install()
    logger = logging.getLogger(KOPF_ORCHESTRATION)
    try:
        logger.error("Peering observer for echelon@ns has failed: something")
        logger.warning("Watcher for x@y has finished unexpectedly.")
        assert not stop.is_set() and failures.failure is None
    finally:
        logger.removeHandler(failures)
