"""Running points on dask.distributed: the client, the futures, resume and failures.

Without a scheduler address a :class:`distributed.LocalCluster` is started with N
worker processes of one thread each; with one, the sweep uses that cluster (started by
``dask scheduler`` / ``dask worker``, dask-jobqueue, Kubernetes, …).  Workers only
compute: each returns its point's certificate, and the client writes
``DIR/points/ID.json`` atomically, so no shared file system is needed and results do
not depend on where the sweep ran.

Failures.  A point whose worker dies is *failed* (its row says so, with the reason);
the others go on.  For that, the sweep's scheduler runs with
``distributed.scheduler.allowed-failures = 0`` (a task on a dying worker is not
retried elsewhere) and ``distributed.scheduler.worker-saturation = 1.0`` (a worker
holds only the task it runs, so its death takes no queued point with it).  An
external scheduler must be started with the same settings (e.g. the environment
variables ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0`` and
``DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0``); otherwise a dying point is
retried up to the scheduler's allowance before it is marked failed.

Ctrl-C.  The LocalCluster's workers ignore SIGINT (:mod:`.worker_setup`, a worker
preload), so the client alone acts on it: it cancels the points in flight and closes the
cluster; the command exits 130 with one line.

Resume.  A point whose certificate already is in ``DIR/points/`` (a readable JSON
certificate) is not recomputed; failed points are retried by the next run.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

#: the extra that installs dask.distributed (pyproject.toml)
INSTALL_HINT = "pip install 'rnn-certify[dask]'"
#: test hook: a worker that reaches the point with this ID exits at once (os._exit)
KILL_ENV = "RNN_CERTIFY_TEST_KILL_POINT"
SWEEP_CONFIG = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.scheduler.worker-saturation": 1.0,
}


@dataclass(frozen=True)
class ClusterSettings:
    """Where a sweep runs: ``scheduler`` (an address) or a LocalCluster of ``jobs``
    worker processes (None: the machine's cores); ``backend`` of the executor;
    ``threads``: NumPy threads of each point's executor and comparator (None: the
    worker's cores; results do not depend on it)."""

    jobs: int | None = None
    scheduler: str | None = None
    backend: str = "numpy"
    threads: int | None = None


@dataclass(frozen=True)
class PointTask:
    """What travels to a worker: everything needed to build and certify one point."""

    id: str
    sha256: str
    base_path: str
    doc: dict
    values: dict
    backend: str = "numpy"
    threads: int | None = None


@dataclass
class Outcome:
    """A point's result: its certificate (done) or why it failed, and its wall time."""

    status: str  # "done" | "already" | "failed"
    certificate: dict | None = None
    reason: str = ""
    seconds: float | None = None


@dataclass
class Tally:
    """Counts for the progress line and the final message."""

    total: int
    already: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0
    failures: list = field(default_factory=list)


def import_distributed():
    """``distributed``, or a one-line :class:`UserError` saying what to install."""
    try:
        import distributed
    except ImportError:
        raise UserError(f"sweep: needs dask.distributed, which is not installed: "
                        f"{INSTALL_HINT}") from None
    return distributed


@contextmanager
def open_client(settings: ClusterSettings):
    """A :class:`distributed.Client` on a LocalCluster or on ``settings.scheduler``;
    client and cluster are closed on the way out (also on Ctrl-C or an error)."""
    distributed = import_distributed()
    import dask

    with dask.config.set(SWEEP_CONFIG):
        cluster = None
        if settings.scheduler:
            client = _connect(distributed, settings.scheduler)
        else:
            n = settings.jobs or _cores()
            # no dashboard; the scheduler's HTTP routes (health, metrics) on a free port,
            # not on 8787, which another cluster on this machine may hold (a warning)
            cluster = distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                preload=["certify.sweep.worker_setup"],  # the workers ignore SIGINT
                host="127.0.0.1", silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _connect(distributed, address: str):
    """A client of the scheduler at ``address``; waits ``distributed.comm.timeouts.connect``
    (dask config, 30 s by default) for it."""
    import dask

    try:
        return distributed.Client(address,
                                  timeout=dask.config.get("distributed.comm.timeouts.connect"))
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(f"argument --scheduler: cannot connect to {address}: "
                        f"{type(exc).__name__}: {exc}") from None


def run_point(task: PointTask) -> dict:
    """On a worker: build and certify one point like ``run`` does; returns
    ``{"certificate": ..., "seconds": ...}`` (nothing is written here)."""
    if os.environ.get(KILL_ENV) == task.id:
        os._exit(17)  # the test hook: this worker dies in this point
    from ..cases.case import case_from_doc
    from ..runner import run

    t0 = time.perf_counter()
    case = case_from_doc(task.base_path, task.doc, task.sha256)
    load_s = time.perf_counter() - t0
    cert = run(case, backend=task.backend, threads=task.threads).data
    cert["timings"] = {"load": load_s, **cert["timings"]}
    cert["sweep_point"] = {"id": task.id, "values": json_values(task.values)}
    return {"certificate": cert, "seconds": time.perf_counter() - t0}


def json_values(values: dict) -> dict:
    """Varied values as JSON (a decimal as its text, as written)."""
    from ..cases.case import DecimalValue

    def one(v):
        if isinstance(v, DecimalValue):
            return v.text
        if isinstance(v, list | tuple):
            return [one(x) for x in v]
        if isinstance(v, dict):
            return {k: one(x) for k, x in v.items()}
        return v

    return {k: one(v) for k, v in values.items()}


def read_done(points_dir: Path, point_id: str) -> dict | None:
    """The certificate already in ``points_dir`` for this point, or None (missing or not
    a readable certificate: then it is computed again)."""
    path = points_dir / f"{point_id}.json"
    try:
        cert = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return cert if isinstance(cert, dict) and "verdict" in cert else None


def failure_reason(exc: BaseException) -> str:
    """One line: why a point failed (a dead worker, or the exception it raised)."""
    if type(exc).__name__ == "KilledWorker":
        return "worker died while certifying this point (KilledWorker)"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ != "UserError" else text


def work_estimate(doc: dict) -> float:
    """A rough relative cost of a point's case (only its place in the queue depends
    on it): width × n × T × (iterations + (d + 1)³ per step of the data-specific
    bounds' screening where they are asked for); 1 where a value is missing."""
    def num(section, key, default=1):
        v = doc.get(section, {}).get(key, default)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else default

    per_step = num("train", "iterations")
    if doc.get("certify", {}).get("data_specific") is True:
        per_step += (num("data", "dim") + 1) ** 3
    return num("model", "width") * num("data", "n") * num("data", "steps") * per_step


def run_points(client, tasks: list[PointTask], points_dir: Path, tally: Tally,
               progress=None) -> dict[str, Outcome]:
    """Certify the tasks on the cluster; each certificate is written as it arrives.

    Points already in ``points_dir`` are not submitted; the others go largest first
    (:func:`work_estimate`: the longest points do not end the sweep on one worker while
    the others idle; results do not depend on the order).  At most one point per worker
    thread is with the scheduler at a time (more are submitted as points finish), so a
    worker holds only the point it runs and its death fails that point alone.  On
    Ctrl-C (or any error) the futures in flight are cancelled; what was written stays
    (each file whole)."""
    from collections import deque

    from distributed import as_completed

    out: dict[str, Outcome] = {}
    todo = []
    for task in tasks:
        cert = read_done(points_dir, task.id)
        if cert is not None:
            out[task.id] = Outcome("already", cert, seconds=_seconds(cert))
            tally.already += 1
        else:
            todo.append(task)
    todo = deque(sorted(todo, key=lambda t: -work_estimate(t.doc)))  # stable: ties in order
    flying: dict = {}
    pending = as_completed()
    try:
        _submit(client, todo, flying, pending)
        tally.running = len(flying)
        _show(progress, tally)
        for fut in pending:
            task = flying.pop(fut)
            out[task.id] = _collect(fut, task, points_dir, tally)
            fut.release()
            _submit(client, todo, flying, pending)
            tally.running = len(flying)
            _show(progress, tally)
    except BaseException:
        client.cancel(list(flying))
        raise
    return out


def _submit(client, todo, flying: dict, pending) -> None:
    """Submit queued tasks until each worker thread of the cluster has one."""
    slots = max(1, sum(client.nthreads().values())) - len(flying)
    for _ in range(min(slots, len(todo))):
        task = todo.popleft()
        fut = client.submit(run_point, task, key=f"point-{task.id}-{uuid.uuid4().hex[:8]}",
                            pure=False)
        flying[fut] = task
        pending.add(fut)
    if todo and not flying:  # no worker at all yet: wait for one, then go on
        client.wait_for_workers(1)
        _submit(client, todo, flying, pending)


def _collect(fut, task: PointTask, points_dir: Path, tally: Tally) -> Outcome:
    """The outcome of a finished future; a certificate is written (atomically)."""
    from ..output.certificate import Certificate

    if fut.status == "finished":
        res = fut.result()
        Certificate(res["certificate"]).write(points_dir / f"{task.id}.json")
        tally.done += 1
        return Outcome("done", res["certificate"], seconds=res["seconds"])
    reason = failure_reason(fut.exception())
    tally.failed += 1
    tally.failures.append((task.id, reason))
    return Outcome("failed", reason=reason)


def _seconds(cert: dict) -> float | None:
    t = cert.get("timings") or {}
    vals = [v for v in t.values() if isinstance(v, int | float)]
    return float(sum(vals)) if vals else None


def _show(progress, tally: Tally) -> None:
    if progress is not None:
        progress.points(tally.already + tally.done, tally.total, tally.running, tally.failed)
