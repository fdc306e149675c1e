"""Boxes at the edge of the ball: the narrowing of s_t to the ball's slabs is sound.

Every trusted kernel narrows s_t = ⟨u, x_t⟩ over a box to ⟨u0, x_t⟩ ± r‖x_t‖;
its enclosures then hold on box ∩ slabs only, and each mean-value form must
expand about a point of that set (certify/expansion.py).  These tests draw
boxes whose centre lies outside the ball (d = 3…6, where that is common), for
every built-in activation and a custom one, and check at random points of
box ∩ ball against 50-digit evaluations (tests/mp_reference.py):

* both trusted engines (mpmath.iv and python-flint/Arb): h_t, g_t, H_t
  contain the exact values, the norm bounds (vertex forms included) dominate
  the exact norms, and so do the cheap forms from a superset's ∂H;
* the screening stage (it prunes boxes, so it is part of the trusted base):
  its norm bounds dominate the exact norms, full and cheap form.

Issue #11 reproducer: ``test_issue_reproducer_gaussian_d3``.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpmath import iv, mpf

from certify.trusted.engine import enclose_box_from
from certify.trusted.engines import engine_unavailable, get_engine
from certify.trusted.intervals import hi, lo
from certify.trusted.screen import activation_table, screen_bounds
from symbolic.activations import BUILTIN_SOURCES
from tests.mp_reference import reference

ACTIVATIONS = sorted(BUILTIN_SOURCES) + ["tanh(z) + sin(z)/3", "z/(1+sqrt(1+z**2))"]
ENGINES = ["mpmath.iv"] + ([] if engine_unavailable("python-flint") else ["python-flint"])
SETTINGS = settings(max_examples=10, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLACK = mpf(10) ** -28  # numerical differentiation error of the 50-digit reference


@st.composite
def edge_case(draw):
    """(xs, blo, bhi, u0, r, points): a box whose centre is outside the ball
    ‖u − u0‖ ≤ r but which meets it; ``points``: θ in box ∩ ball (exact floats)."""
    d = draw(st.integers(3, 6))
    T = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    xs = rng.standard_normal((T, d))
    xs *= rng.uniform(0.3, 1.0, (T, 1)) / np.linalg.norm(xs, axis=1, keepdims=True)
    u0 = rng.standard_normal(d) * draw(st.sampled_from([0.3, 1.0, 3.0]))
    r = float(draw(st.sampled_from([0.5, 2.0, 8.0])))
    e = rng.standard_normal(d)
    e /= np.linalg.norm(e)
    half_u = r * rng.uniform(0.15, 0.6, d)
    cu = u0 + r * draw(st.floats(0.9, 1.2)) * e + half_u * rng.uniform(-0.3, 0.3, d)
    cw = rng.uniform(-0.9, 0.9)
    blo = np.concatenate([[cw - 0.05], cu - half_u])
    bhi = np.concatenate([[cw + 0.05], cu + half_u])
    points = _points_in_ball(rng, blo, bhi, u0, r, 3)
    if not points or np.linalg.norm(cu - u0) <= r:
        # the box misses the ball, or its centre is inside: not an edge box
        from hypothesis import assume

        assume(False)
    return xs, blo, bhi, u0, r, points


def _points_in_ball(rng, blo, bhi, u0, r, k):
    """k random points of box ∩ ball, certainly inside (checked in intervals)."""
    q = np.clip(u0, blo[1:], bhi[1:])  # the box's nearest point to u0
    out = []
    for _ in range(4000):
        th = blo + (bhi - blo) * rng.uniform(0, 1, len(blo))
        if rng.uniform() < 0.3:  # towards the nearest point: deep in box ∩ ball
            th[1:] = q + (th[1:] - q) * rng.uniform(0, 1)
        acc = iv.mpf(0)
        for a, b in zip(th[1:], u0, strict=True):
            acc += (iv.mpf(a) - iv.mpf(b)) ** 2
        if hi(acc) <= r * r:
            out.append(th)
            if len(out) == k:
                break
    return out


def _check_step(st_, act, theta, xs, t):
    """Enclosures of st_ (either engine) contain the exact values at θ; returns (g, H)."""
    val = reference(act, theta, xs, t, 0)
    g = reference(act, theta, xs, t, 1)
    H = reference(act, theta, xs, t, 2)
    p = len(theta)
    where = f"act={act!r} θ={theta.tolist()} t={t}"
    assert _contains(st_.h, val), f"h: {st_.h} ∌ {val} ({where})"
    for a in range(p):
        assert _contains(st_.g[a], g[a], SLACK), f"g[{a}]: {st_.g[a]} ∌ {g[a]} ({where})"
        for b in range(p):
            assert _contains(st_.H[a][b], H[a][b], SLACK), (
                f"H[{a}][{b}]: {st_.H[a][b]} ∌ {H[a][b]} ({where})")
    return g, H


def _contains(x, v, slack=0) -> bool:
    if type(x).__name__ == "arb":
        from certify.trusted.engine_flint import lower_mpf, upper_mpf

        a, b = lower_mpf(x), upper_mpf(x)
    else:
        a, b = lo(x), hi(x)
    return a - slack <= v <= b + slack


def _exact_norms(g, H):
    nL = float(mpmath.sqrt(sum(v * v for v in g)))
    Hm = np.array([[float(v) for v in row] for row in H])
    return nL, float(np.max(np.abs(np.linalg.eigvalsh(Hm))))


def _dominates(uL, uB, nL, nB, where):
    assert float(uL) >= nL * (1 - 1e-12), f"‖g‖ bound {float(uL)} < {nL} ({where})"
    assert float(uB) >= nB * (1 - 1e-12), f"‖H‖ bound {float(uB)} < {nB} ({where})"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("act", ACTIVATIONS)
@SETTINGS
@given(case=edge_case())
def test_trusted_edge_boxes_contain_50_digit_values(engine, act, case):
    xs, blo, bhi, u0, r, points = case
    eng = get_engine(engine, act)
    T = len(xs)
    sts = eng.box(blo.tolist(), bhi.tolist(), xs.tolist(), u0.tolist(), iv.mpf(r), T)
    # the cheap form: this box as the superset of a sub-box towards the ball
    q = np.concatenate([[blo[0]], np.clip(u0, blo[1:], bhi[1:])])
    a = blo + (q - blo) * 0.5
    b = bhi + (q - bhi) * 0.5
    sub = enclose_box_from(eng.system,
                           a.tolist(), b.tolist(), xs.tolist(), [s.dH for s in sts], T,
                           u0.tolist(), iv.mpf(r))
    for theta in points:
        t = T - 1
        where = f"{engine} act={act!r} box=({blo.tolist()}, {bhi.tolist()}) θ={theta.tolist()}"
        g, H = _check_step(sts[t], act, theta, xs, t)
        _dominates(*eng.norm_bounds(sts[t]), *_exact_norms(g, H), where)
        if np.all((a <= theta) & (theta <= b)):
            _check_step(sub[t], act, theta, xs, t)
            _dominates(*eng.norm_bounds(sub[t]), *_exact_norms(g, H), where + " (cheap)")


@pytest.mark.parametrize("act", ACTIVATIONS)
@SETTINGS
@given(case=edge_case())
def test_screening_edge_boxes_dominate_50_digit_norms(act, case):
    xs, blo, bhi, u0, r, points = case
    tab = activation_table(act)
    X = xs[None]
    T = len(xs)
    UL, UB, dH = screen_bounds(tab, X, [0], blo[None], bhi[None], u0[None], r, return_dH=True)
    q = np.concatenate([[blo[0]], np.clip(u0, blo[1:], bhi[1:])])
    a = blo + (q - blo) * 0.5
    b = bhi + (q - bhi) * 0.5
    UL2, UB2 = screen_bounds(tab, X, [0], a[None], b[None], u0[None], r, dH_sup=dH)
    for theta in points:
        for t in range(T):
            nL, nB = _exact_norms(reference(act, theta, xs, t, 1),
                                  reference(act, theta, xs, t, 2))
            where = f"screen act={act!r} box=({blo.tolist()}, {bhi.tolist()}) θ={theta.tolist()}"
            _dominates(UL[0, t], UB[0, t], nL, nB, where)
            if np.all((a <= theta) & (theta <= b)):
                _dominates(UL2[0, t], UB2[0, t], nL, nB, where + " (cheap)")


def _issue_box():
    R, s0 = 10.0, -12.4
    c = s0 / math.sqrt(3)
    u0 = [c] * 3
    lo_ = [-1e-3] + [c + 5] * 3
    hi_ = [1e-3] + [c + math.sqrt(50)] * 3
    x = [1 / math.sqrt(3)] * 3
    return R, s0, u0, lo_, hi_, x


@pytest.mark.parametrize("engine", ENGINES)
def test_issue_reproducer_gaussian_d3(engine):
    """Issue #11 §1: H_1[w,w] at θ = (0, c+5, c+5, c+5) ∈ box ∩ ball was excluded."""
    R, s0, u0, lo_, hi_, x = _issue_box()
    eng = get_engine(engine, "gaussian")
    st_ = eng.box(lo_, hi_, [x, x], u0, iv.mpf(R), 2)[1]
    with mpmath.workdps(50):
        s = mpmath.mpf(s0) + 5 * mpmath.sqrt(3)
        exact = (s * s - 1) * mpmath.exp(-1.5 * s * s)
    assert _contains(st_.H[0][0], exact), f"{st_.H[0][0]} ∌ {exact}"


def test_issue_reproducer_screening():
    R, s0, u0, lo_, hi_, x = _issue_box()
    X = np.array([[x, x]])
    UL, UB = screen_bounds(activation_table("gaussian"), X, [0], np.array([lo_]),
                           np.array([hi_]), np.array([u0]), R)
    theta = np.array([0.0] + [u0[0] + 5] * 3)
    nL, nB = _exact_norms(reference("gaussian", theta, X[0], 1, 1),
                          reference("gaussian", theta, X[0], 1, 2))
    _dominates(UL[0, 1], UB[0, 1], nL, nB, "issue box")
