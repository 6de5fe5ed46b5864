"""The kopf handlers: ``kopf run -m echelon_operator.handlers`` (what ``echelon-operator`` runs).

Each handler is a few lines: read from the indexes or the event, call a reconcile (which calls
the pure builders), apply. No handler needs a finalizer, so resources stay deletable when the
operator is gone.
"""

from . import globalconfig, indexes, lifecycle, pollingpools, taskgroups, workloads

__all__ = ["globalconfig", "indexes", "lifecycle", "pollingpools", "taskgroups", "workloads"]
