"""Benchmark: how the data-specific certificate's cost grows with n, T and d (issue #13).

A small grid around a base case (tanh, m = 16, n = 4, T = 4, d = 2, α₀ = 0.5,
ρ_w = ρ_u = 1; sphere data, seed 2; symmetric init, seed 1), one variable at a time:
n ∈ {4, 8, 16}, T ∈ {4, 8, 16}, d ∈ {1, 2, 4}.  Every point is certified by
:func:`certify.bounds.data_constants.certify_data_constants` on one core with the same
settings (rel_tol 0.15, box budget 2000, python-flint where installed, else
mpmath.iv), so that the tightness each one reaches is recorded next to its time.

Each point is certified twice in the same run: with the current refinement (the
defaults of :class:`~certify.bounds.settings.BoundsSettings`) and with the landed one it
replaced (:data:`LANDED`: widest-coordinate bisection, combined selection, no bounds
inherited from ancestors, full AD at every 4th level only, every cover box evaluated by
the trusted engine).
``extra_info`` holds, per point and refinement, the wall time, its ratio to the base
point, the worst certified/lower ratio with what stopped the refinement, and the
current-over-landed ratios of time and of worst certified/lower; and the fitted cost
exponents of both (least squares of log time against log n, log T, log d).  The
issue's targets are exponent ≤ 1 in n and in T and ≤ 2 in d; they are asserted
for the current refinement, with 0.25 of slack for timing noise, unless
``RNN_BENCH_COST_TARGET=0`` (report only).

``test_against_the_landed_refinement``: three cases past the memory cutoff (tanh,
gaussian, logistic; q > 1, where the landed refinement stalled) at the default
settings, both refinements in the same run: the current one must be at least as
tight (worst certified/lower) on each; times and ratios are recorded.

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


#: the refinement that the current one replaced (issue #13), kept for this comparison
LANDED = {"split": "widest", "selection": "combined", "inherit": False, "trusted_all": True,
          "anchor_levels": 4}
ALGOS = {"current": {}, "landed": LANDED}


def _run(act, m, n, T, d, alpha0, alpha_m, algo, **settings):
    from certify.cases.data import sphere
    from certify.cases.init import symmetric_init

    X, init = sphere(n, T, d, 2), symmetric_init(m, d, alpha0, 1)
    s = BoundsSettings(jobs=1, seed=0, engine=ENGINE, **settings, **ALGOS[algo])
    t0 = time.perf_counter()
    dc = certify_data_constants(act, X, init, Ball(m, "1", "1"), alpha_m, T, settings=s)
    wall = time.perf_counter() - t0
    assert dc.checks() == []
    tight = dc.to_json().get("tightness") or {}
    return wall, tight


def _certify(n, T, d, algo="current"):
    return _run("tanh", M, n, T, d, 0.5, "0.75", algo, rel_tol=0.15, box_budget=2000)


def _worst(tight) -> float:
    w = tight.get("worst") or {}
    vals = [(w.get(k) or {}).get("ratio") for k in ("L", "beta")]
    return max(v if v is not None else math.inf for v in vals)


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
                    points[key] = {a: _certify(**dict(key), algo=a) for a in ALGOS}

    benchmark.group = "data-specific-cost"
    benchmark.pedantic(measure, rounds=1, iterations=1)
    base = points[tuple(sorted(BASE.items()))]
    exps = {a: {} for a in ALGOS}
    for a in ALGOS:
        for var, values in GRID.items():
            secs = [points[tuple(sorted((BASE | {var: v}).items()))][a][0] for v in values]
            exps[a][var] = fit_exponent(values, secs)
    rows = []
    for key, res in points.items():
        row = dict(key)
        for a, (wall, tight) in res.items():
            row[a] = {"seconds": round(wall, 3), "over_base": round(wall / base[a][0], 3),
                      "worst_certified_over_lower": tight.get("worst"),
                      "stopped_by": tight.get("stopped_by")}
        row["current_over_landed"] = {
            "seconds": round(res["current"][0] / res["landed"][0], 3),
            "worst_ratio": round(_worst(res["current"][1]) / _worst(res["landed"][1]), 3)}
        rows.append(row)
    benchmark.extra_info.update({"engine": ENGINE, "m": M, "points": rows,
                                 "exponents": {a: {k: round(v, 3) for k, v in e.items()}
                                               for a, e in exps.items()},
                                 "targets": TARGETS, "slack": SLACK})
    print("\ncost exponents", exps, "\n" + "\n".join(map(str, rows)))
    assert all(math.isfinite(e) for e in exps["current"].values())
    if ASSERT:
        bad = {k: e for k, e in exps["current"].items() if e > TARGETS[k] + SLACK}
        assert not bad, f"cost exponents above the targets {TARGETS}: {bad}"


#: (activation, m, n, T, d, α₀) past the cutoff; α_m from the case's init (None)
PAST_CUTOFF = [("tanh", 16, 4, 10, 2, 1.2), ("gaussian", 8, 4, 8, 2, 1.6),
               ("logistic", 8, 4, 10, 2, 4.4)]


def test_against_the_landed_refinement(benchmark):
    res = {}

    def measure():
        for case in PAST_CUTOFF:
            res[case] = {a: _run(*case, None, a) for a in ALGOS}

    benchmark.group = "data-specific-refinement"
    benchmark.pedantic(measure, rounds=1, iterations=1)
    rows = []
    for case, r in res.items():
        cur, old = _worst(r["current"][1]), _worst(r["landed"][1])
        rows.append({"case": "{} m={} n={} T={} d={} alpha0={}".format(*case),
                     "seconds": {a: round(v[0], 2) for a, v in r.items()},
                     "worst_certified_over_lower": {"current": cur, "landed": old},
                     "current_over_landed": {"seconds": round(r["current"][0] / r["landed"][0], 3),
                                             "worst_ratio": round(cur / old, 3)},
                     "stopped_by": {a: v[1].get("stopped_by") for a, v in r.items()}})
    benchmark.extra_info.update({"engine": ENGINE, "cases": rows})
    print("\n" + "\n".join(map(str, rows)))
    for row in rows:
        w = row["worst_certified_over_lower"]
        assert w["current"] <= w["landed"] * (1 + 1e-9), row
