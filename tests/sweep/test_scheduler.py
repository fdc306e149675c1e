"""A real scheduler on 127.0.0.1 (``dask scheduler`` + ``dask worker``, started here as
processes): the sweep gives the same rows as on a LocalCluster, and a bad address is one
line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import rows_without_times, sweep

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _dask(*args, log: Path) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES":
                        "0", "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
    exe = BIN / "dask"
    cmd = [str(exe), *args] if exe.exists() else [sys.executable, "-m", "distributed.cli."
                                                  f"dask_{args[0]}", *args[1:]]
    with log.open("w") as fh:  # the child has its own copy of the descriptor
        return subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)


@pytest.fixture
def scheduler(tmp_path):
    """The address of a scheduler with 2 single-thread workers; stopped afterwards."""
    sched_file = tmp_path / "scheduler.json"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(sched_file),
                   log=tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sched_file.exists(), (tmp_path / "scheduler.log").read_text()
        procs.append(_dask("worker", "--scheduler-file", str(sched_file), "--nworkers", "2",
                           "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                           log=tmp_path / "worker.log"))
        import json

        from distributed import Client

        address = json.loads(sched_file.read_text())["address"]
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck process
                p.kill()
                p.wait()


def test_same_rows_on_a_scheduler_and_on_a_local_cluster(spec, tmp_path, capsys, scheduler):
    rc, stdout, err = sweep(capsys, spec, "--out", tmp_path / "remote", "--scheduler",
                            scheduler)
    assert rc == 0, err
    assert "4 computed now, 0 failed" in stdout
    rc, _, _ = sweep(capsys, spec, "--out", tmp_path / "local", "--jobs", "2")
    assert rc == 0
    remote, local = rows_without_times(tmp_path / "remote"), rows_without_times(tmp_path /
                                                                                 "local")
    assert remote == local and len(remote) == 4


def test_no_scheduler_at_the_address_is_one_line(spec, tmp_path, capsys):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        rc, _, err = sweep(capsys, spec, "--out", tmp_path / "o", "--scheduler",
                           "tcp://127.0.0.1:9")
    assert rc == 2 and err.count("\n") == 1
    assert "argument --scheduler: cannot connect to tcp://127.0.0.1:9" in err
