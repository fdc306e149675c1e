"""Dask worker preload of the sweep's LocalCluster: the worker ignores SIGINT.

Ctrl-C on a terminal reaches the whole process group, the worker processes too; only
the client acts on it (it cancels the points in flight and closes the cluster, which
stops the workers), so a worker must not turn it into a traceback of its own.  The
same rule as the ``run --jobs`` pool (:func:`certify.runner._ignore_sigint`).
"""

from __future__ import annotations

import signal


def dask_setup(worker=None) -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # pragma: no cover - not the main thread: leave it
        pass
