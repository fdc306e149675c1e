"""Certified data-specific constants (certify.bounds.data_constants).

Soundness: certified bounds ≥ 50-digit point evaluations at random points of Ω_ρ
(boundary included).  Monotone in ρ.  Structure: m/2 distinct neurons, jobs do
not change the result, checks name t, neuron and sample.  The tightness case of
the issue is ``slow``.
"""

from __future__ import annotations

import dataclasses
import json
import math

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpmath import iv

from certify.bounds.data_constants import Ball, BoundsSettings, certify_data_constants
from certify.trusted.intervals import hi
from tests.mp_reference import hidden_states


def sphere_data(n, T, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, d))
    X /= np.linalg.norm(X, axis=-1, keepdims=True)
    return X * (1 - 1e-12)


def symmetric(m, d, alpha0, seed):
    """THEORY §2 (the same draw order as certify.cases.init.symmetric_init)."""
    try:
        from certify.cases.init import symmetric_init

        return symmetric_init(m, d, alpha0, seed)
    except ImportError:  # pragma: no cover - certify.cases.init is written concurrently
        rng = np.random.default_rng(seed)
        h = m // 2
        c = 2.0 * rng.integers(0, 2, h) - 1
        U = rng.standard_normal((h, d))
        w = rng.uniform(-alpha0, alpha0, h)
        return (np.r_[w, w], np.r_[U, U], np.r_[c, -c])


def _w0U0(init):
    if isinstance(init, tuple):
        return init[0], init[1]
    return init.w0, init.U0


def point_norms(act, theta, xs):
    """50-digit ‖g_t‖₂ and ‖H_t‖₂ (t = 0..T−1) at θ from the naive reference."""
    p = len(theta)
    T = len(xs)
    outL, outB = [], []
    with mpmath.workdps(50):
        th = [mpmath.mpf(v) for v in theta]
        X = [[mpmath.mpf(v) for v in row] for row in xs]
        for t in range(T):
            def f(*a, t=t):
                return hidden_states(act, a[0], list(a[1:]), X[:t + 1])[t]

            g = [mpmath.diff(f, th, tuple(int(k == a) for k in range(p))) for a in range(p)]
            H = mpmath.matrix([[mpmath.diff(f, th, tuple(int(k == a) + int(k == b)
                                                          for k in range(p)))
                                for b in range(p)] for a in range(p)])
            outL.append(mpmath.sqrt(sum(v * v for v in g)))
            ev = mpmath.eigsy(H, eigvals_only=True)
            outB.append(max(abs(v) for v in ev))
    return outL, outB


def random_points(rng, w0, u0, rw, ru, k):
    """k points of the neuron's set, half of them on its boundary."""
    d = len(u0)
    pts = []
    for i in range(k):
        dw = rng.uniform(-rw, rw) if i % 2 else rw * rng.choice([-1, 1])
        du = rng.standard_normal(d)
        du /= np.linalg.norm(du)
        rad = ru if i % 2 == 0 else ru * rng.uniform() ** (1 / d)
        pts.append(np.r_[w0 + dw * (1 - 1e-9), u0 + du * rad * (1 - 1e-9)])
    return pts


FAST = dict(rel_tol=0.3, box_budget=400, lower_samples=8)


def fast(**kw):
    """The small tests' settings (``kw`` on top of FAST)."""
    return BoundsSettings(**{**FAST, **kw})


@pytest.fixture(scope="module")
def small():
    m, n, T, d = 4, 2, 3, 2
    X = sphere_data(n, T, d, 11)
    init = symmetric(m, d, 0.5, 7)
    dc = certify_data_constants("tanh", X, init, Ball(m, "0.6", "0.6"), "0.8", T,
                                settings=fast(seed=1))
    return dc, X, init, m


def test_small_case_passes_its_checks(small):
    dc, X, init, m = small
    assert dc.checks() == []
    assert dc.engine == "mpmath.iv"
    assert dc.boxes["distinct_neurons"] == m // 2  # symmetric init: only m/2 distinct
    for kind in ("L", "beta"):
        up = dc.upper(kind)
        low = dc.lower_L if kind == "L" else dc.lower_beta
        closed = dc.closed_L if kind == "L" else dc.closed_beta
        for t in range(dc.steps):
            assert low[t] <= up[t] <= float(hi(closed[t]))
    json.dumps(dc.to_json())  # plain JSON
    assert "Frobenius" in dc.norm_method["beta"] or "‖" in dc.norm_method["beta"]


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**20))
def test_certified_bounds_dominate_50_digit_points(seed):
    rng = np.random.default_rng(seed)
    m, n, T = 4, 2, 2
    d = int(rng.integers(1, 3))
    X = sphere_data(n, T, d, seed)
    init = symmetric(m, d, 0.6, seed + 1)
    rho_w, rho_u = "0.5", "0.7"
    dc = certify_data_constants("tanh", X, init, Ball(m, rho_w, rho_u), None, T,
                                settings=fast(seed=seed))
    assert dc.checks() == []
    w0, U0 = _w0U0(init)
    rw, ru = 0.5 / math.sqrt(m), 0.7 / math.sqrt(m)
    UL, UB = dc.upper("L"), dc.upper("beta")
    for i in range(m):
        for j in range(n):
            for theta in random_points(rng, w0[i], U0[i], rw, ru, 2):
                nL, nB = point_norms("tanh", theta, X[j])
                for t in range(T):
                    assert UL[t] >= float(nL[t])
                    assert UB[t] >= float(nB[t])


def test_monotone_in_rho():
    m, n, T, d = 4, 2, 3, 2
    X = sphere_data(n, T, d, 3)
    init = symmetric(m, d, 0.5, 4)
    prev = None
    for rho in ("0.2", "0.45", "0.9"):
        dc = certify_data_constants("tanh", X, init, Ball(m, rho, rho), None, T,
                                    settings=BoundsSettings(rel_tol=0.2, box_budget=1000,
                                                            lower_samples=8))
        cur = (dc.upper("L"), dc.upper("beta"))
        if prev is not None:
            for k in range(2):
                assert all(c >= p_ for c, p_ in zip(cur[k], prev[k], strict=True))
        prev = cur


def test_jobs_do_not_change_the_result(small):
    dc, X, init, m = small
    dc2 = certify_data_constants("tanh", X, init, Ball(m, "0.6", "0.6"), "0.8", dc.steps,
                                 settings=fast(seed=1, jobs=2))
    assert [interval for interval in dc2.certified_L] == list(dc.certified_L)
    assert [interval for interval in dc2.certified_beta] == list(dc.certified_beta)
    assert dc2.settings["jobs"] == 2


def test_checks_name_t_neuron_and_sample(small):
    dc = small[0]
    tiny = tuple(iv.mpf([0, "1e-3"]) for _ in range(dc.steps))
    bad = dataclasses.replace(dc, closed_beta=tiny)
    reasons = bad.checks()
    assert len(reasons) == dc.steps
    nrn, smp = dc.argmax_beta[1]
    assert reasons[1].startswith("t=1: certified beta ")
    assert "> closed form" in reasons[1]
    assert f"(neuron {nrn}, sample {smp})" in reasons[1]


def test_bad_arguments():
    X = sphere_data(2, 2, 1, 0)
    init = symmetric(2, 1, 0.1, 0)
    with pytest.raises(ValueError, match="rel_tol"):
        certify_data_constants("tanh", X, init, Ball(2, "1", "1"), None, 2,
                               settings=BoundsSettings(rel_tol=0))
    with pytest.raises(ValueError, match="init shapes"):
        certify_data_constants("tanh", X, init, Ball(4, "1", "1"), None, 2)


@pytest.mark.slow
def test_tightness_reference_case():
    """m=64, n=16, T=16, d=3, tanh, α₀=0.5, ρ_w=ρ_u=1: certified/lower ≤ 1.25 at every t."""
    m, n, T, d = 64, 16, 16, 3
    try:
        from certify.cases.data import sphere

        X = sphere(n, T, d, 2)
    except ImportError:  # pragma: no cover
        X = sphere_data(n, T, d, 2)
    init = symmetric(m, d, 0.5, 1)
    dc = certify_data_constants("tanh", X, init, Ball(m, "1", "1"), "0.625", T,
                                settings=BoundsSettings(rel_tol=0.15, box_budget=20000))
    assert dc.checks() == []
    for kind in ("L", "beta"):
        r = dc.ratios(kind)
        assert max(r["certified/lower"]) <= 1.25, (kind, r)
        assert max(r["certified/closed"]) < 1


def test_settings_are_frozen_checked_and_normalized():
    s = BoundsSettings()
    assert (s.rel_tol, s.box_budget, s.jobs, s.engine, s.seed, s.samples) == (
        0.02, 2000, 1, "mpmath.iv", 0, 48)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.jobs = 2  # type: ignore[misc]
    s = BoundsSettings(rel_tol="0.5", box_budget=7.0, jobs=0, lower_samples=3)
    assert (s.rel_tol, s.box_budget, s.jobs, s.samples) == (0.5, 7, 1, 3)
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="rel_tol must be > 0"):
            BoundsSettings(rel_tol=bad)
