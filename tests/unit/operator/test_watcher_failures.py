"""A kopf watcher that fails for good stops the operator (to be restarted), through kopf's own
task guard and log line -- so a kopf upgrade that changes either fails here."""

from __future__ import annotations

import logging
import threading

import pytest
from kopf._cogs.aiokits import aiotasks

from echelon_operator.watcher_failures import KOPF_ORCHESTRATION, WatcherFailures, run_and_exit_code


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


def _failed(failures: WatcherFailures) -> None:
    failures.failure = "Watcher for taskgroups.v1alpha1.echelon.dev@ns has failed: 404"


def test_kopfs_reraised_watcher_error_ends_in_one_line_and_exit_1(
        caplog: pytest.LogCaptureFixture) -> None:
    """As it stops, kopf re-raises the failed watcher's error out of kopf.run (CI saw the
    API server's 404 escape as a traceback): that is the expected end, exit 1, one line."""
    failures = WatcherFailures(stop=lambda: None)

    def run() -> None:
        _failed(failures)
        raise RuntimeError("404 page not found")

    with caplog.at_level(logging.ERROR, logger="echelon_operator"):
        assert run_and_exit_code(run, failures) == 1
    [record] = [r for r in caplog.records if r.name == "echelon_operator"]
    assert "a watch stream failed for good" in record.getMessage()
    assert "@ns has failed: 404" in record.getMessage() and record.exc_info is None


def test_a_stop_after_a_failed_watcher_exits_1_and_a_plain_stop_exits_0() -> None:
    failures = WatcherFailures(stop=lambda: None)
    assert run_and_exit_code(lambda: None, failures) == 0
    assert run_and_exit_code(lambda: _failed(failures), failures) == 1


def test_any_other_error_exits_1_with_what_it_was(caplog: pytest.LogCaptureFixture) -> None:
    def run() -> None:
        raise ValueError("something else")

    with caplog.at_level(logging.ERROR, logger="echelon_operator"):
        assert run_and_exit_code(run, WatcherFailures(stop=lambda: None)) == 1
    assert "unexpected error: ValueError: something else" in caplog.text


def test_ctrl_c_exits_130() -> None:
    def run() -> None:
        raise KeyboardInterrupt

    assert run_and_exit_code(run, WatcherFailures(stop=lambda: None)) == 130


def test_with_a_grace_the_watchdog_forces_the_exit_if_the_stop_hangs() -> None:
    """kopf's graceful stop once hung after a failed watcher (CI): the process must go."""
    forced = threading.Event()
    failures = WatcherFailures(stop=lambda: None, grace=0.01, force=forced.set)
    failures.emit(logging.LogRecord(KOPF_ORCHESTRATION, logging.ERROR, __file__, 0,
                                    "Watcher for pollingpools.v1alpha1.echelon.dev@ns has "
                                    "failed: 404", None, None))
    assert forced.wait(5)
    assert failures.watchdog is not None and failures.watchdog.daemon


def test_without_a_grace_no_watchdog_is_armed() -> None:
    failures = WatcherFailures(stop=lambda: None)
    failures.emit(logging.LogRecord(KOPF_ORCHESTRATION, logging.ERROR, __file__, 0,
                                    "Watcher for x has failed: 404", None, None))
    assert failures.failure is not None and failures.watchdog is None
