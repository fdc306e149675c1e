"""Trusted per-neuron kernels (certify.trusted.engine, engine_iv) and the screening path
(certify.trusted.screen).

Soundness is checked against the naive 50-digit reference of tests/mp_reference.py:
h_t recomputed from the definition, its θ-derivatives by mpmath's high-precision
numerical differentiation (no sensitivity template involved).
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpmath import iv, mpf

from certify.trusted.engine import (
    Dual,
    enclose_box,
    enclose_box_from,
    enclose_point,
    norm_bounds,
    point_lower,
    spectral_upper_exact,
)
from certify.trusted.engine_iv import IVEngine
from certify.trusted.engines import get_engine
from certify.trusted.intervals import hi, lo
from certify.trusted.screen import IA, activation_table, point_values, screen_bounds
from certify.trusted.screen import spectral_upper as screen_spectral
from symbolic import activation_functions
from tests.mp_reference import reference

SETTINGS = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _contains(x, v, slack=0) -> bool:
    return lo(x) - slack <= v <= hi(x) + slack


@st.composite
def small_case(draw, max_d=2, max_T=3):
    d = draw(st.integers(1, max_d))
    T = draw(st.integers(1, max_T))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((T, d))
    xs *= rng.uniform(0, 1, (T, 1)) / np.maximum(np.linalg.norm(xs, axis=1, keepdims=True), 1e-9)
    centre = np.concatenate([rng.uniform(-0.9, 0.9, 1), rng.standard_normal(d)])
    half = rng.uniform(0.0, 0.15, d + 1)
    return xs, centre - half, centre + half, rng


@pytest.fixture(scope="module")
def tanh_engine():
    return IVEngine("tanh")


# --------------------------------------------------------------------------
# trusted engine


@SETTINGS
@given(small_case())
def test_box_enclosures_contain_50_digit_values(case):
    xs, blo, bhi, rng = case
    eng = get_engine("mpmath.iv", "tanh")
    T = len(xs)
    sts = enclose_box(eng.system, list(blo), list(bhi), xs.tolist(), steps=T)
    p = len(blo)
    for _ in range(2):
        theta = blo + (bhi - blo) * rng.uniform(0, 1, p)
        t = int(rng.integers(0, T))
        st_ = sts[t]
        assert _contains(st_.h, reference("tanh", theta, xs, t, 0))
        g = reference("tanh", theta, xs, t, 1)
        H = reference("tanh", theta, xs, t, 2)
        slack = mpf(10) ** -30  # numerical differentiation error of the reference
        for a in range(p):
            assert _contains(st_.g[a], g[a], slack)
            for b in range(p):
                assert _contains(st_.H[a][b], H[a][b], slack)
        # norm bounds dominate the point norms
        uL, uB = norm_bounds(st_)
        Hm = np.array([[float(v) for v in row] for row in H])
        assert float(uL) >= float(mpmath.sqrt(sum(v * v for v in g))) * (1 - 1e-15)
        assert float(uB) >= np.max(np.abs(np.linalg.eigvalsh(Hm))) * (1 - 1e-12)


def test_third_derivative_enclosure_by_ad(tanh_engine):
    """∂H over the box (interval forward-mode AD through the templates) is sound."""
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((3, 2)) * 0.5
    c = np.array([0.3, 0.4, -0.7])
    blo, bhi = c - 0.05, c + 0.05
    sts = tanh_engine.box(list(blo), list(bhi), xs.tolist(), None, None, 3)
    theta = blo + (bhi - blo) * rng.uniform(0, 1, 3)
    t = 2
    D = reference("tanh", theta, xs, t, 3)
    for a in range(3):
        for b in range(3):
            for k in range(3):
                assert _contains(sts[t].dH[a][b][k], D[a][b][k], mpf(10) ** -20)


@SETTINGS
@given(small_case())
def test_cheap_enclosure_from_superset_is_sound(case):
    xs, blo, bhi, rng = case
    eng = get_engine("mpmath.iv", "tanh")
    T = len(xs)
    sup = eng.box(list(blo), list(bhi), xs.tolist(), None, None, T)
    # a sub-box
    a = blo + (bhi - blo) * rng.uniform(0, 0.5, len(blo))
    b = a + (bhi - a) * rng.uniform(0, 1, len(blo))
    sts = enclose_box_from(eng.system, list(a), list(b), xs.tolist(), [s_.dH for s_ in sup], T)
    theta = a + (b - a) * rng.uniform(0, 1, len(a))
    t = T - 1
    g = reference("tanh", theta, xs, t, 1)
    H = reference("tanh", theta, xs, t, 2)
    for i in range(len(a)):
        assert _contains(sts[t].g[i], g[i], mpf(10) ** -30)
        for j in range(len(a)):
            assert _contains(sts[t].H[i][j], H[i][j], mpf(10) ** -30)


@pytest.mark.parametrize("act", ["tanh", "logistic", "gaussian"])
def test_point_enclosure_is_thin_and_contains_value(act):
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((3, 2)) * 0.6
    theta = [0.4, 0.8, -0.3]
    eng = get_engine("mpmath.iv", act)
    sts = enclose_point(eng.system, theta, xs.tolist(), 3)
    for t in range(3):
        assert _contains(sts[t].h, reference(act, theta, xs, t, 0))
        g = reference(act, theta, xs, t, 1)
        for a in range(3):
            assert hi(sts[t].g[a]) - lo(sts[t].g[a]) < 1e-13
            assert _contains(sts[t].g[a], g[a], mpf(10) ** -30)
        lL, lB = point_lower(sts[t])
        assert lL <= mpmath.sqrt(sum(v * v for v in g)) + mpf(10) ** -30


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 5), st.floats(1e-6, 2.0))
def test_spectral_bound_is_an_upper_bound(seed, p, scale):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((p, p))
    if seed % 2:
        A = A + A.T
    r = np.abs(rng.standard_normal((p, p))) * scale * rng.uniform(0, 0.3)
    Lo, Hi = A - r, A + r
    u = spectral_upper_exact([[mpf(v) for v in row] for row in Lo],
                             [[mpf(v) for v in row] for row in Hi])
    worst = max(np.linalg.norm(Lo + (Hi - Lo) * rng.integers(0, 2, (p, p)), 2)
                for _ in range(40))
    assert float(u) >= worst
    frob = np.sqrt(np.sum(np.maximum(np.abs(Lo), np.abs(Hi)) ** 2))
    assert float(u) <= frob * (1 + 1e-12)
    # the vectorized screening bound is also an upper bound
    s = screen_spectral(IA(Lo[None], Hi[None]))[0]
    assert s >= worst


def test_spectral_bound_is_tight_for_rank_one():
    v = np.array([1.0, -2.0, 0.5, 3.0])
    A = np.outer(v, v)
    u = spectral_upper_exact([[mpf(x) for x in row] for row in A],
                             [[mpf(x) for x in row] for row in A])
    assert float(u) <= np.dot(v, v) * (1 + 1e-12)


def test_dual_numbers_follow_the_chain_rule():
    x = Dual(iv.mpf([0.5, 0.5]), [iv.mpf(1), iv.mpf(0)])
    y = Dual(iv.mpf([2, 2]), [iv.mpf(0), iv.mpf(1)])
    f = 3 * x * x * y - y ** 2 + 1 - x
    assert _contains(f.v, mpf(-2))  # 1.5 - 4 + 1 - 0.5
    assert _contains(f.d[0], mpf(5))  # 6xy - 1
    assert _contains(f.d[1], mpf("-3.25"))  # 3x² - 2y


def test_unknown_engine_is_an_error():
    with pytest.raises(ValueError, match="unknown interval engine"):
        get_engine("nope", "tanh")


# --------------------------------------------------------------------------
# screening path


_finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(_finite, _finite, _finite, _finite, st.sampled_from(["+", "-", "*", "sqr"]))
def test_screening_arithmetic_rounds_outward(a, b, c, d, op):
    x = IA(np.array([min(a, b)]), np.array([max(a, b)]))
    y = IA(np.array([min(c, d)]), np.array([max(c, d)]))
    ex = [Fraction(v) for v in (min(a, b), max(a, b))]
    ey = [Fraction(v) for v in (min(c, d), max(c, d))]
    if op == "+":
        r, vals = x + y, [p + q for p in ex for q in ey]
    elif op == "-":
        r, vals = x - y, [p - q for p in ex for q in ey]
    elif op == "*":
        r, vals = x * y, [p * q for p in ex for q in ey]
    else:
        r = x.sqr()
        vals = [p * p for p in ex] + ([Fraction(0)] if ex[0] <= 0 <= ex[1] else [])
    assert Fraction(float(r.lo[0])) <= min(vals)
    assert Fraction(float(r.hi[0])) >= max(vals)


def test_activation_table_contains_50_digit_values():
    tab = activation_table("tanh")
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.uniform(-12, 12, 60), [-8.0, 8.0, 0.0, 1e-300]])
    with mpmath.workdps(50):
        f = [lambda v: mpmath.tanh(v), lambda v: mpmath.sech(v) ** 2,
             lambda v: -2 * mpmath.tanh(v) * mpmath.sech(v) ** 2]
        for k in range(3):
            P = tab.point(k, z)
            for i, v in enumerate(z):
                ex = f[k](mpmath.mpf(v))
                assert mpmath.mpf(P.lo[i]) <= ex <= mpmath.mpf(P.hi[i])
            a = rng.uniform(-3, 3, 20)
            b = a + rng.exponential(0.5, 20)
            E = tab.enclose(k, IA(a, b))
            for i in range(20):
                for q in np.linspace(a[i], b[i], 25):
                    ex = f[k](mpmath.mpf(q))
                    assert mpmath.mpf(E.lo[i]) <= ex <= mpmath.mpf(E.hi[i])


@SETTINGS
@given(small_case(max_d=3, max_T=4))
def test_screen_bounds_dominate_point_values(case):
    xs, blo, bhi, rng = case
    tab = activation_table("tanh")
    am = activation_functions("tanh")
    X = xs[None]
    UL, UB, (dlo, dhi) = screen_bounds(tab, X, [0], blo[None], bhi[None], None, 0.0,
                                       return_dH=True)
    pts = blo + (bhi - blo) * rng.uniform(0, 1, (300, len(blo)))
    nL, nB = point_values(am, X, np.zeros(300, int), pts)
    assert np.all(UL[0] >= nL.max(axis=0) * (1 - 1e-12))
    assert np.all(UB[0] >= nB.max(axis=0) * (1 - 1e-12))
    # the cheap form from the box's own ∂H (a superset of itself) is sound too
    a = blo + (bhi - blo) * 0.25
    b = blo + (bhi - blo) * 0.75
    UL2, UB2 = screen_bounds(tab, X, [0], a[None], b[None], None, 0.0, dH_sup=(dlo, dhi))
    pts = a + (b - a) * rng.uniform(0, 1, (200, len(a)))
    nL, nB = point_values(am, X, np.zeros(200, int), pts)
    assert np.all(UL2[0] >= nL.max(axis=0) * (1 - 1e-12))
    assert np.all(UB2[0] >= nB.max(axis=0) * (1 - 1e-12))
    # asking for ∂H on the cheap form returns the superset's, never unfilled memory
    UL3, UB3, (elo, ehi) = screen_bounds(tab, X, [0], a[None], b[None], None, 0.0,
                                         dH_sup=(dlo, dhi), return_dH=True)
    assert np.array_equal(UL3, UL2) and np.array_equal(UB3, UB2)
    assert np.array_equal(elo, dlo) and np.array_equal(ehi, dhi)
    # the smear weights: per coordinate k, the Frobenius norm of |∂H[..., k]|, the bounds
    # unchanged by asking for them
    UL4, UB4, (flo, fhi), W = screen_bounds(tab, X, [0], blo[None], bhi[None], None, 0.0,
                                            return_dH=True, dH_weights=True)
    mag = np.maximum(np.abs(flo), np.abs(fhi))
    assert np.allclose(W, np.sqrt(np.sum(mag * mag, axis=(2, 3))), rtol=1e-12)
    assert np.array_equal(UL4, UL) and np.array_equal(UB4, UB)
    UL5, UB5, W5 = screen_bounds(tab, X, [0], blo[None], bhi[None], None, 0.0,
                                 dH_weights=True)
    assert np.array_equal(W5, W) and np.array_equal(UL5, UL)


def test_screening_agrees_with_trusted_engine(tanh_engine):
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((4, 3))
    xs /= np.linalg.norm(xs, axis=1, keepdims=True)
    c = np.array([0.3, 0.5, -0.2, 0.9])
    blo, bhi = c - 0.02, c + 0.02
    UL, UB = screen_bounds(activation_table("tanh"), xs[None], [0], blo[None], bhi[None],
                           None, 0.0)
    sts = tanh_engine.box(list(blo), list(bhi), xs.tolist(), None, None, 4)
    for t in range(4):
        uL, uB = norm_bounds(sts[t])
        assert abs(float(uL) / UL[0, t] - 1) < 0.02
        assert abs(float(uB) / UB[0, t] - 1) < 0.05
