"""Benchmark: a 32-point sweep on a LocalCluster with 2 workers against 1, same run.

Points: the tiny tanh case of tests/sweep at widths 16…40, n = 8, T = 4, 1000 iterations
(about a second each on one free core), 32 of them (width × seed): enough work that the
cluster's start and stop (a few seconds, in both measurements) do not cap the ratio.
Each sweep is timed end to end as the command runs it (cluster start, points, results,
report), each into a fresh folder (nothing resumed), with a warm-up sweep first so that
imports and the Monte Carlo target cache are not in the first measurement.
``extra_info`` records both wall times and the ratio; the issue's aim (≥ 1.8×) is
asserted unless ``RNN_BENCH_SWEEP_TARGET`` sets another (on a machine whose 2 cores are
shared with other work the ratio is lower).

Run: ``pytest tests/bench/test_bench_sweep.py --benchmark-only -o addopts=`` (or
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
"train.iterations" = [1000]
"""


def test_ratio_two_workers_over_one(benchmark, tmp_path):
    spec = write_spec(tmp_path / "spec", BODY)
    runs = iter(range(100))

    def sweep(jobs):
        out = tmp_path / f"out-{next(runs)}"
        t0 = time.perf_counter()
        res = run_sweep(spec, out, ClusterSettings(jobs=jobs))
        assert res.total == 32 and res.computed == 32 and not res.failed
        return time.perf_counter() - t0

    sweep(2)  # warm-up: imports, the target cache, the activation cache
    seconds = {}

    def measure():
        seconds[1] = sweep(1)
        seconds[2] = sweep(2)

    benchmark.group = "sweep-ratio"
    benchmark.pedantic(measure, rounds=1, iterations=1)
    ratio = seconds[1] / seconds[2]
    benchmark.extra_info.update({"points": 32, "seconds_1_worker": seconds[1],
                                 "seconds_2_workers": seconds[2],
                                 "ratio_1_over_2_workers": ratio, "target": RATIO_TARGET,
                                 "cpus": os.cpu_count()})
    assert ratio >= RATIO_TARGET, (f"2 workers are {ratio:.2f}x 1 worker (target ≥ "
                                   f"{RATIO_TARGET}x): {seconds}")
