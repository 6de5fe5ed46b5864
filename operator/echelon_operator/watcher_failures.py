"""Exit when a kopf watch stream has failed for good, so that the operator is restarted.

kopf retries a watch through connection errors and 5xx answers, but some errors end the
watcher task: a 404 while a restarting API server has not registered the CRDs yet, or an
outage longer than kopf's error backoffs (~1 min). kopf logs "Watcher for ... has failed"
and runs on without it -- alive, answering its liveness probe, and deaf to that resource
forever. A restarted operator lists everything again and converges (it is idempotent), so
the operator stops instead, exits 1, and Kubernetes (restartPolicy Always) starts it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

__all__ = ["WatcherFailures", "exit_now", "run_and_exit_code"]

logger = logging.getLogger("echelon_operator")

#: the logger of kopf's orchestration, whose task guard reports a failed watcher
KOPF_ORCHESTRATION = "kopf._core.reactor.orchestration"


def _terminate() -> None:
    # kopf's own SIGTERM handling: a graceful stop (kopf.run's threading stop_flag would
    # leave an executor thread blocked on the flag, holding up the interpreter's exit)
    os.kill(os.getpid(), signal.SIGTERM)


def exit_now(code: int = 1) -> None:
    """End the process at once: no interpreter shutdown, which would wait for every executor
    thread (one may be blocked on the API server)."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # exiting anyway
            handler.flush()
    sys.stderr.flush()
    os._exit(code)


def _force() -> None:
    logger.error("exiting now: the operator did not stop after a watch stream failed for good")
    exit_now(1)


class WatcherFailures(logging.Handler):
    """Calls ``stop`` (default: SIGTERM to this process) at the first failed watcher;
    ``failure`` says which. With ``grace`` (seconds), ``force`` (default: exit 1 at once)
    follows if the process is still there by then: CI saw kopf's graceful stop hang after
    a failed watcher, an operator alive, deaf and never restarted."""

    def __init__(self, stop: Callable[[], None] = _terminate, *, grace: float | None = None,
                 force: Callable[[], None] = _force) -> None:
        super().__init__(level=logging.ERROR)
        self.stop = stop
        self.grace = grace
        self.force = force
        self.failure: str | None = None
        self.watchdog: threading.Timer | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Watcher for ") and " has failed" in message \
                and self.failure is None:
            self.failure = message
            if self.grace is not None:
                self.watchdog = threading.Timer(self.grace, self.force)
                self.watchdog.daemon = True
                self.watchdog.start()
            self.stop()

    def install(self) -> WatcherFailures:
        logging.getLogger(KOPF_ORCHESTRATION).addHandler(self)
        return self


def run_and_exit_code(run: Callable[[], None], failures: WatcherFailures) -> int:
    """Runs the operator (``kopf.run``) and says how the process should exit: 0 when it was
    stopped, 1 when a watch stream failed for good (to be restarted) or on any other error,
    130 on Ctrl-C. As it stops, kopf re-raises the failed watcher's error (e.g. the API
    server's 404): that is the expected end here, said in one line, not a traceback."""
    try:
        run()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if failures.failure is None:
            logger.error("the operator stopped on an unexpected error: %s: %s",
                         type(exc).__name__, exc, exc_info=exc)
            return 1
    if failures.failure is not None:
        logger.error("exiting so that the operator is restarted: a watch stream failed for "
                     "good (%s)", failures.failure)
        return 1
    return 0
