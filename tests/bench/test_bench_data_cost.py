"""Benchmark: how the data-specific certificate's cost grows with n, T and d (issue #13).

A small grid around a base case (tanh, m = 16, n = 4, T = 4, d = 2, α₀ = 0.5,
ρ_w = ρ_u = 1; sphere data, seed 2; symmetric init, seed 1), one variable at a time:
n ∈ {4, 8, 16}, T ∈ {4, 8, 16}, d ∈ {1, 2, 4}.  Every point is certified by
:func:`certify.bounds.data_constants.certify_data_constants` on one core with the same
settings (rel_tol 0.15, box budget 2000, python-flint where installed, else
mpmath.iv), so that the tightness each one reaches is recorded next to its time.

``extra_info`` holds, per point, the wall time, its ratio to the base point measured in
the same run, and the worst certified/lower ratio with what stopped the refinement; and
the fitted cost exponents (least squares of log time against log n, log T, log d).  The
issue's targets are exponent ≤ 1 in n and in T and ≤ 2 in d; they are asserted, with
0.25 of slack for timing noise, unless ``RNN_BENCH_COST_TARGET=0`` (report only).

Run: ``pytest tests/bench/test_bench_data_cost.py --benchmark-only -o addopts=`` (or
``tox -e bench``).
"""

from __future__ import annotations

import importlib.util
import math
import os
import time

import numpy as np
import pytest

from certify.bounds.data_constants import Ball, BoundsSettings, certify_data_constants

pytestmark = pytest.mark.bench

BASE = {"n": 4, "T": 4, "d": 2}
GRID = {"n": (4, 8, 16), "T": (4, 8, 16), "d": (1, 2, 4)}
TARGETS = {"n": 1.0, "T": 1.0, "d": 2.0}
SLACK = 0.25
ASSERT = os.environ.get("RNN_BENCH_COST_TARGET", "1") != "0"
M = 16
ENGINE = "python-flint" if importlib.util.find_spec("flint") else "mpmath.iv"


def _certify(n, T, d):
    from certify.cases.data import sphere
    from certify.cases.init import symmetric_init

    X, init = sphere(n, T, d, 2), symmetric_init(M, d, 0.5, 1)
    settings = BoundsSettings(rel_tol=0.15, box_budget=2000, jobs=1, seed=0, engine=ENGINE)
    t0 = time.perf_counter()
    dc = certify_data_constants("tanh", X, init, Ball(M, "1", "1"), "0.75", T,
                                settings=settings)
    wall = time.perf_counter() - t0
    assert dc.checks() == []
    tight = dc.to_json().get("tightness") or {}
    return wall, tight


def fit_exponent(xs, ys) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    return float(np.polyfit(lx, ly, 1)[0])


def test_cost_exponents(benchmark):
    _certify(**BASE)  # warm-up: imports, the activation tables
    points = {}

    def measure():
        for var, values in GRID.items():
            for v in values:
                key = tuple(sorted((BASE | {var: v}).items()))
                if key not in points:
                    points[key] = _certify(**dict(key))

    benchmark.group = "data-specific-cost"
    benchmark.pedantic(measure, rounds=1, iterations=1)
    base_s = points[tuple(sorted(BASE.items()))][0]
    exps, rows = {}, []
    for var, values in GRID.items():
        secs = [points[tuple(sorted((BASE | {var: v}).items()))][0] for v in values]
        exps[var] = fit_exponent(values, secs)
    for key, (wall, tight) in points.items():
        rows.append({**dict(key), "seconds": round(wall, 3),
                     "over_base": round(wall / base_s, 3),
                     "worst_certified_over_lower": tight.get("worst"),
                     "stopped_by": tight.get("stopped_by")})
    benchmark.extra_info.update({"engine": ENGINE, "m": M, "points": rows,
                                 "exponents": {k: round(v, 3) for k, v in exps.items()},
                                 "targets": TARGETS, "slack": SLACK})
    print("\ncost exponents", exps, "\n" + "\n".join(map(str, rows)))
    assert all(math.isfinite(e) for e in exps.values())
    if ASSERT:
        bad = {k: e for k, e in exps.items() if e > TARGETS[k] + SLACK}
        assert not bad, f"cost exponents above the targets {TARGETS}: {bad}"
