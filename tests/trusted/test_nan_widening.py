"""A NaN endpoint means "anything", never "empty" (issue #11 §2).

The screening arithmetic (certify/screen.py) meets inf − inf, 0·inf and the
widening of an overflowed ±inf; the trusted engines' intersections meet NaN
endpoints of mpmath.  Each must widen, not crash and not read as empty.
"""

from __future__ import annotations

import numpy as np
import pytest
from mpmath import iv, mpf

from certify.trusted.intervals import hi, intersect, lo
from certify.trusted.screen import IA, activation_table, point_values, screen_bounds
from symbolic import activation_functions

INF = np.inf


def test_zero_times_unbounded_is_zero():
    """IEEE 1788: [−inf, inf]·[0, 0] = [0, 0] (every finite real times 0).
    (screen_bounds runs the arithmetic under np.errstate(invalid="ignore").)"""
    for a, b in ((-INF, INF), (0.0, INF), (-INF, 1.0)):
        with np.errstate(invalid="ignore"):
            p = IA(np.array([a]), np.array([b])) * IA(np.array([0.0]), np.array([0.0]) + 0.0)
            q = IA(np.array([a]), np.array([b])) * 0.0  # thin factor
        assert p.lo[0] <= 0.0 <= p.hi[0] and p.hi[0] - p.lo[0] < 1e-300, (a, b, p)
        assert q.lo[0] <= 0.0 <= q.hi[0] and q.hi[0] - q.lo[0] < 1e-300, (a, b, q)


def test_overflow_widens_to_the_whole_line():
    big = IA(np.array([1e300]), np.array([1e300]))
    with np.errstate(over="ignore", invalid="ignore"):
        p = big * big
        s = IA(np.array([-INF]), np.array([INF])) + IA(np.array([INF]), np.array([INF]))
    for v in (p, s):
        assert not np.isnan(v.lo).any() and not np.isnan(v.hi).any(), v
        assert not v.empty().any()
    assert p.hi[0] == INF


def test_nan_endpoints_are_never_empty():
    x = IA(np.array([np.nan, 0.0]), np.array([1.0, np.nan]))
    assert not x.empty().any()


def test_trusted_intersection_reads_nan_as_unbounded():
    nan_lo = iv.mpf([mpf("-inf"), 2])
    nan_lo._mpi_ = (mpf("nan")._mpf_, nan_lo._mpi_[1])  # a NaN lower endpoint
    r = intersect(nan_lo, iv.mpf([0, 1]))
    assert r is not None and lo(r) == 0 and hi(r) == 1


def test_unbounded_sigma3_tail_times_zero_derivative_does_not_crash():
    """The issue's case (gaussian, ρ_u/√m = 8, d = 3): at t = 0 the w-derivative of
    z is exactly 0 while σ''' over the tail is unbounded; the screening used to
    raise 'empty intersection of enclosures'.  Now it gives a sound bound."""
    tab = activation_table("gaussian")
    assert np.isinf(tab.d3_tails[0][1]) or np.isinf(tab.d3_tails[1][0])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    blo = np.array([[0.8, -8.0, -8.0, -8.0]])
    bhi = np.array([[1.0, 8.0, 8.0, 8.0]])
    UL, UB = screen_bounds(tab, x[None], [0], blo, bhi, np.zeros((1, 3)), 8.0)
    assert np.all(np.isfinite(UL)) and np.all(np.isfinite(UB))
    pts = blo + (bhi - blo) * rng.uniform(0, 1, (400, 4))
    pts = pts[np.linalg.norm(pts[:, 1:], axis=1) <= 8.0]
    nL, nB = point_values(activation_functions("gaussian"), x[None], np.zeros(len(pts), int), pts)
    assert np.all(UL[0] >= nL.max(axis=0)) and np.all(UB[0] >= nB.max(axis=0))


@pytest.mark.slow
def test_issue_case_certifies(tmp_path):
    """The issue's whole case (shrunk in n) runs to a verdict instead of crashing."""
    from certify.cases.case import load_case
    from certify.runner import run

    path = tmp_path / "nan.toml"
    path.write_text(NAN_CASE)
    cert = run(load_case(path))
    assert cert.verdict in ("pass", "unknown"), cert.data["reasons"]


NAN_CASE = """
name = "nan-repro"
[model]
activation = "gaussian"
width = 4
[init]
seed = 21
alpha0 = "0.9"
[ball]
rho_w = "0.2"
rho_u = "16"
[data]
kind = "sphere"
n = 4
steps = 4
dim = 3
seed = 22
[target]
kind = "transport"
nu_w = "0.1"
nu_u = "1.0"
mc_draws = 2000
seed = 23
[train]
algorithm = "pgd"
eta = "0.4"
iterations = 20
[certify]
delta = "0.05"
data_specific = true
rel_tol = 0.0005
"""
