"""Benchmark: a 32-point sweep on a LocalCluster with 2 workers against 1, same run.

Points: the tiny tanh case of tests/sweep at widths 16…40, n = 8, T = 4, 3000 iterations
(about three seconds each on one free core), 32 of them (width × seed): enough work that the
cluster's start and stop (a few seconds, in both measurements) do not cap the ratio.
Each sweep is timed end to end as the command runs it (cluster start, points, results,
report), each into a fresh folder (nothing resumed), with a warm-up sweep first so that
imports and the Monte Carlo target cache are not in the first measurement.

The two sweeps are measured twice, interleaved (1, 2, 1, 2 workers), and the shorter
time of each counts (the noise of a shared machine only adds time).  With t_k = W/k + F
(W the points' work, F what does not spread: cluster start, the first imports on each
worker, results and report), ``extra_info`` also records F ≈ 2·t_2 − t_1, which is what
keeps small sweeps from the ideal ratio.  The issue's aim (≥ 1.8×) is asserted unless
``RNN_BENCH_SWEEP_TARGET`` sets another (on a machine whose 2 cores are shared with
other work the ratio is lower).  Each point's executor uses the worker's cores
(``--threads`` unset), as a sweep does by default.

Run: ``pytest tests/bench/test_bench_sweep.py --benchmark-only -o addopts= -s`` (or
``tox -e bench``).
"""

from __future__ import annotations

import os
import time

import pytest

from certify.sweep.driver import run_sweep
from certify.sweep.execute import ClusterSettings
from tests.sweep.conftest import write_spec

pytestmark = pytest.mark.bench

RATIO_TARGET = float(os.environ.get("RNN_BENCH_SWEEP_TARGET", "1.8"))
BODY = """\
[grid]
"model.width" = [16, 24, 32, 40]
"init.seed" = [1, 2, 3, 4, 5, 6, 7, 8]
"data.n" = [8]
"data.steps" = [4]
"train.iterations" = [3000]
"""


def test_ratio_two_workers_over_one(benchmark, tmp_path):
    spec = write_spec(tmp_path / "spec", BODY)
    runs = iter(range(100))

    def sweep(jobs, threads):
        out = tmp_path / f"out-{next(runs)}"
        t0 = time.perf_counter()
        res = run_sweep(spec, out, ClusterSettings(jobs=jobs, threads=threads))
        assert res.total == 32 and res.computed == 32 and not res.failed
        return time.perf_counter() - t0

    sweep(2, None)  # warm-up: imports, the target cache, the activation cache
    seconds = {1: [], 2: []}

    def measure():
        for _ in range(2):
            for jobs in (1, 2):
                seconds[jobs].append(sweep(jobs, None))

    benchmark.group = "sweep-ratio"
    benchmark.pedantic(measure, rounds=1, iterations=1)
    t1, t2 = min(seconds[1]), min(seconds[2])
    ratio = t1 / t2
    info = {"points": 32, "target": RATIO_TARGET, "cpus": os.cpu_count(),
            "seconds_1_worker": seconds[1], "seconds_2_workers": seconds[2],
            "ratio_1_over_2_workers": ratio, "fixed_seconds_estimate": 2 * t2 - t1}
    benchmark.extra_info.update(info)
    print("\n" + "\n".join(f"  {k}: {v}" for k, v in info.items()))
    assert ratio >= RATIO_TARGET, (f"2 workers are {ratio:.2f}x 1 worker (target ≥ "
                                   f"{RATIO_TARGET}x): {seconds}")
