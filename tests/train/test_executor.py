"""certify.executor, certify.train.projection, certify.train.comparator.

The drift inequality (THEORY §7) must hold with no violation in the three
regimes q < 1, q = 1, q > 1 (tanh, α_m = 0.6, 1, 1.3) with the closed-form β_t,
and the check must be able to fail (β_t set to 0 on a case where the
linearization error matters).  β_t, L_t here come from the derived recurrence
in floating point (``symbolic.recurrence.numeric_recurrence`` with ``mpmath.fp``),
which is fine for tests; the certifier uses certified upper endpoints.
"""

from __future__ import annotations

import dataclasses
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from certify.cases.init import symmetric_init
from certify.train import comparator, executor, projection, rnn
from symbolic.recurrence import numeric_recurrence

TANH_SIGMA = (1.0, 1.0, 4.0 / (3.0 * math.sqrt(3.0)))


def constants(alpha_m, T):
    L, B = numeric_recurrence(*TANH_SIGMA, float(alpha_m), T, ctx=mpmath.fp)
    return np.array(L, dtype=float), np.array(B, dtype=float)


def run_train(ini, X, Y, *, comparator, **kw):
    """``executor.train`` from the init ``ini``, the keywords split into its
    :class:`~certify.train.executor.TrainSettings` and
    :class:`~certify.train.executor.DriftConstants`."""
    names = {f.name for f in dataclasses.fields(executor.DriftConstants)}
    constants = executor.DriftConstants(**{k: v for k, v in kw.items() if k in names})
    settings = executor.TrainSettings(**{k: v for k, v in kw.items() if k not in names})
    return executor.train(ini.w0, ini.U0, ini.c, X, Y, comparator, settings, constants)


def data(seed, n, T, d):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, d))
    X /= np.linalg.norm(X, axis=-1, keepdims=True)
    return rng, X


def teacher_case(seed, alpha_m, m=32, n=8, T=5, d=3, alpha0=0.2, rho_u=2.0):
    """A realizable target: Y = f(Θ*), Θ* = transport comparator inside Ω_ρ."""
    rng, X = data(seed, n, T, d)
    rho_w = (alpha_m - alpha0) * math.sqrt(m)
    ini = symmetric_init(m, d, alpha0, seed)
    vw = rng.uniform(-1, 1, m) * rho_w
    vU = rng.standard_normal((m, d))
    vU *= rho_u * rng.uniform(0, 1, (m, 1)) / np.linalg.norm(vU, axis=1, keepdims=True)
    zero = np.zeros((n, T))
    cmp = comparator.transport_comparator(ini.w0, ini.U0, ini.c, (vw, vU), X, zero,
                                          comparator.ComparatorSettings(rho_w=rho_w, rho_u=rho_u))
    Y = rnn.forward(cmp.w, cmp.U, ini.c, X)
    return ini, X, Y, cmp, rho_w, rho_u


def permuted_case(seed, alpha_m, m=32, n=8, T=5, d=3, rho_u=30.0):
    """R̂(Θ̄) = 0 at a Θ̄ far from the run (a neuron permutation of the teacher):
    the convexity-type inequality fails without the linearization term E_k."""
    rng, X = data(seed, n, T, d)
    rho_w = alpha_m * math.sqrt(m)
    ini = symmetric_init(m, d, 0.0, seed)
    vw = rng.uniform(-1, 1, m) * rho_w
    vU = rng.standard_normal((m, d))
    tw = ini.w0 + ini.c * vw / math.sqrt(m)
    tU = ini.U0 + ini.c[:, None] * vU / math.sqrt(m)
    Y = rnn.forward(tw, tU, ini.c, X)
    perm = np.arange(m)
    for s in (1.0, -1.0):
        idx = np.nonzero(ini.c == s)[0]
        perm[idx] = idx[::-1]
    return ini, X, Y, (tw[perm], tU[perm]), rho_w, rho_u


# --------------------------------------------------------------------------
# projection (hypothesis)

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@st.composite
def points(draw):
    m = draw(st.integers(1, 6))
    d = draw(st.integers(1, 4))
    w0 = draw(arrays(np.float64, m, elements=finite))
    U0 = draw(arrays(np.float64, (m, d), elements=finite))
    pts = [(draw(arrays(np.float64, m, elements=finite)),
            draw(arrays(np.float64, (m, d), elements=finite))) for _ in range(2)]
    rw = draw(st.floats(0, 5))
    ru = draw(st.floats(0, 5))
    return w0, U0, pts, rw, ru


@settings(max_examples=150, deadline=None)
@given(points())
def test_projection_is_idempotent_inside_and_nonexpansive(p):
    w0, U0, ((wa, Ua), (wb, Ub)), rw, ru = p
    pa = projection.project(wa, Ua, w0, U0, rw, ru)
    pb = projection.project(wb, Ub, w0, U0, rw, ru)
    # lands in the ball, as tested with the same arithmetic
    assert projection.contains(*pa, w0, U0, rw, ru)
    # idempotent, bit for bit
    paa = projection.project(*pa, w0, U0, rw, ru)
    assert np.array_equal(paa[0], pa[0]) and np.array_equal(paa[1], pa[1])
    # nonexpansive (up to rounding)
    d_out = math.sqrt(np.sum((pa[0] - pb[0]) ** 2) + np.sum((pa[1] - pb[1]) ** 2))
    d_in = math.sqrt(np.sum((wa - wb) ** 2) + np.sum((Ua - Ub) ** 2))
    assert d_out <= d_in * (1 + 1e-12) + 1e-12
    # a point inside is left unchanged
    pin = projection.project(w0, U0, w0, U0, rw, ru)
    assert np.array_equal(pin[0], w0) and np.array_equal(pin[1], U0)


@settings(max_examples=60, deadline=None)
@given(points())
def test_projection_is_the_nearest_point(p):
    """Optimality: ⟨x − Πx, y − Πx⟩ ≤ 0 for every y in the ball."""
    w0, U0, ((wa, Ua), (wb, Ub)), rw, ru = p
    pw, pU = projection.project(wa, Ua, w0, U0, rw, ru)
    yw, yU = projection.project(wb, Ub, w0, U0, rw, ru)
    inner = float(np.sum((wa - pw) * (yw - pw)) + np.sum((Ua - pU) * (yU - pU)))
    scale = (np.sum(np.abs(wa - pw)) + np.sum(np.abs(Ua - pU))) * (
        np.max(np.abs(yw - pw), initial=0) + np.max(np.abs(yU - pU), initial=0) + 1)
    assert inner <= 1e-12 * scale + 1e-12


def test_radius_and_project_agree():
    rng = np.random.default_rng(0)
    m, d = 16, 3
    w0, U0 = rng.standard_normal(m), rng.standard_normal((m, d))
    w, U = w0 + rng.standard_normal(m), U0 + rng.standard_normal((m, d))
    rw, ru = projection.radius(w, U, w0, U0)
    assert projection.contains(w, U, w0, U0, rw, ru, rtol=1e-12)
    assert not projection.contains(w, U, w0, U0, rw * 0.9, ru)
    pw, pU = projection.project(w, U, w0, U0, 0.5 * rw, 0.5 * ru)
    r2 = projection.radius(pw, pU, w0, U0)
    assert r2[0] == pytest.approx(0.5 * rw, rel=1e-14) and r2[1] == pytest.approx(0.5 * ru,
                                                                                  rel=1e-14)
    with pytest.raises(ValueError):
        projection.project(w, U, w0, U0, -1.0, 1.0)


def test_projection_under_array_api_strict():
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(1)
    w0, U0 = rng.standard_normal(8), rng.standard_normal((8, 2))
    w, U = w0 + rng.standard_normal(8), U0 + rng.standard_normal((8, 2))
    ref = projection.project(w, U, w0, U0, 0.7, 0.3)
    a = [xps.asarray(x) for x in (w, U, w0, U0)]
    out = projection.project(*a, 0.7, 0.3)
    assert np.allclose(rnn.to_numpy(out[0]), ref[0], rtol=0, atol=1e-15)
    assert np.allclose(rnn.to_numpy(out[1]), ref[1], rtol=1e-15, atol=1e-15)


# --------------------------------------------------------------------------
# comparator


def test_transport_comparator_membership():
    ini = symmetric_init(16, 2, 0.1, 0)
    rng, X = data(0, 4, 3, 2)
    Y = np.zeros((4, 3))
    vw = np.full(16, 0.5)
    vU = np.tile([0.6, 0.8], (16, 1))  # ‖v_u‖ = 1
    inside = comparator.transport_comparator(ini.w0, ini.U0, ini.c, (vw, vU), X, Y,
                                             comparator.ComparatorSettings(rho_w=0.5, rho_u=1.0),
                                             nu_sq=0.25 + 1.0)
    assert inside.in_ball and inside.history["dist_within_nu"]
    assert inside.radius[0] == pytest.approx(0.5) and inside.radius[1] == pytest.approx(1.0)
    assert inside.dist_sq == pytest.approx(1.25)
    assert inside.loss == pytest.approx(rnn.loss(inside.w, inside.U, ini.c, X, Y))
    outside = comparator.transport_comparator(ini.w0, ini.U0, ini.c, (vw, vU), X, Y,
                                              comparator.ComparatorSettings(rho_w=0.5, rho_u=0.9))
    assert not outside.in_ball


@pytest.mark.parametrize("loss", ["all-steps", "final-step"])
def test_linearized_comparator_solves_the_convex_problem(loss):
    ini = symmetric_init(24, 3, 0.3, 2)
    rng, X = data(2, 6, 4, 3)
    Y = rng.standard_normal((6, 4))
    res = comparator.linearized_comparator(
        ini.w0, ini.U0, ini.c, X, Y, comparator.ComparatorSettings(rho_w=1.0, rho_u=1.0, loss=loss),
        comparator.SolverSettings(max_iter=3000, tol=1e-10))
    R0 = rnn.loss(ini.w0, ini.U0, ini.c, X, Y, loss=loss)
    assert res.in_ball
    assert res.objective < R0
    assert 0 <= res.gap < 1e-8 and res.pg_norm < 1e-6
    assert res.L_lin >= res.L_power > 0
    # the Frank–Wolfe gap bounds suboptimality: no feasible random point does better
    lin = rnn.linearize(ini.w0, ini.U0, ini.c, X)
    omega = comparator.loss_weights(np, 6, 4, loss, ini.w0)
    for _ in range(20):
        pw, pU = projection.project(ini.w0 + rng.standard_normal(24),
                                    ini.U0 + rng.standard_normal((24, 3)),
                                    ini.w0, ini.U0, 1.0, 1.0)
        r = lin.f0 + lin.jvp(pw - ini.w0, pU - ini.U0) - Y
        assert 0.5 * np.sum(omega * r * r) >= res.objective - res.gap - 1e-12
    assert res.loss == pytest.approx(rnn.loss(res.w, res.U, ini.c, X, Y, loss=loss))


# --------------------------------------------------------------------------
# the drift inequality


REGIMES = [(0.6, "q<1"), (1.0, "cutoff"), (1.3, "q>1")]


@pytest.mark.parametrize("alpha_m,regime", REGIMES)
def test_drift_inequality_holds_projected_gd(alpha_m, regime):
    ini, X, Y, cmp, rho_w, rho_u = teacher_case(1, alpha_m)
    L, B = constants(alpha_m, X.shape[1])
    res = run_train(ini, X, Y, eta=0.5, iterations=60, rho_w=rho_w,
                    rho_u=rho_u, comparator=cmp, beta=B, L=L)
    assert res.violations == [] and res.not_checked == [] and res.passed
    assert res.checked.all() and res.min_slack > 0
    assert res.exit_time is None
    assert np.all(res.radius_w <= rho_w * (1 + 1e-12))
    assert np.all(res.radius_u <= rho_u * (1 + 1e-12))
    assert res.loss[-1] < res.loss[0]
    # the record is consistent with its definition
    k = 7
    eta = res.eta
    assert res.rhs[k] == pytest.approx(res.psi[k] - 2 * eta * (res.loss[k] - res.loss_comparator)
                                       + 2 * eta * res.E[k] + eta**2 * res.grad_sq[k])
    assert res.slack[k] == pytest.approx(res.rhs[k] - res.lhs[k])
    assert res.lhs[k] == res.psi[k + 1]
    assert res.psi[0] == pytest.approx(cmp.dist_sq)
    assert np.all(res.fp_allowance > 0) and "2^-53" in res.fp_formula
    assert res.loss_comparator == pytest.approx(0, abs=1e-25)


@pytest.mark.parametrize("alpha_m,regime", REGIMES)
def test_drift_check_can_fail(alpha_m, regime):
    """Same machinery, permuted-teacher comparator: holds with β_t, fails with β_t = 0."""
    ini, X, Y, bar, rho_w, rho_u = permuted_case(0, alpha_m)
    L, B = constants(alpha_m, X.shape[1])
    kw = dict(eta=0.5, iterations=40, rho_w=rho_w, rho_u=rho_u, comparator=bar, L=L)
    ok = run_train(ini, X, Y, beta=B, **kw)
    assert ok.violations == [] and ok.checked.all()
    bad = run_train(ini, X, Y, beta=0 * B, **kw)
    assert bad.violations, "β = 0 must break the inequality here"
    assert bad.min_slack < -np.max(bad.fp_allowance)
    assert not bad.passed and bad.argmin_slack in bad.violations


def test_apriori_bound_applies_with_small_step():
    ini, X, Y, cmp, rho_w, rho_u = teacher_case(3, 0.6)
    L, B = constants(0.6, X.shape[1])
    eta = 0.5 / float(np.mean(L**2))
    res = run_train(ini, X, Y, eta=eta, iterations=30, rho_w=rho_w,
                    rho_u=rho_u, comparator=cmp, beta=B, L=L, comparator_loss_bound=1e-3)
    ap = res.apriori
    assert ap["applicable"] and ap["holds"]
    assert ap["bound"] >= ap["observed"] == pytest.approx(np.mean(res.loss))
    assert ap["ratio"] >= 1
    assert ap["bound_certified_comparator"] > ap["bound"]
    big = run_train(ini, X, Y, eta=2 / float(np.mean(L**2)),
                    iterations=3, rho_w=rho_w, rho_u=rho_u, comparator=cmp, beta=B, L=L)
    assert not big.apriori["applicable"] and big.apriori["bound"] is None


def test_gd_tracks_radius_exit_time_and_ball_constants():
    ini, X, Y, cmp, rho_w, rho_u = teacher_case(4, 0.6, alpha0=0.2)
    m, T = ini.width, X.shape[1]
    small = (0.3, 0.3)  # a case ball the run leaves (its radius reaches ≈ 0.43 by k = 40)

    def beta_for_radius(rw, ru):
        return constants(0.2 + rw / math.sqrt(m), T)[1]

    def L_for_radius(rw, ru):
        return constants(0.2 + rw / math.sqrt(m), T)[0]

    calls = []
    _, Bs = constants(0.2 + small[0] / math.sqrt(m), T)
    wbar, Ubar = projection.project(cmp.w, cmp.U, ini.w0, ini.U0, *small)
    res = run_train(ini, X, Y, algorithm="gd", eta=1.0, iterations=40,
                    rho_w=small[0], rho_u=small[1], comparator=(wbar, Ubar), beta=Bs,
                    beta_for_radius=beta_for_radius, L_for_radius=L_for_radius,
                    progress=lambda k, n: calls.append((k, n)))
    assert calls == [(k, 40) for k in range(1, 41)]
    assert res.exit_time is not None and res.exit_time >= 1
    assert res.radius_w[res.exit_time] > small[0] or res.radius_u[res.exit_time] > small[1]
    assert res.checked.all() and res.violations == []
    k = res.exit_time
    assert res.ball_w[k - 1] == pytest.approx(max(res.radius_w[k - 1], res.radius_w[k],
                                                  res.comparator_radius[0]))
    # without a ball → constants map, steps outside the case ball are not checked
    res2 = run_train(ini, X, Y, algorithm="gd", eta=1.0, iterations=40,
                     rho_w=small[0], rho_u=small[1], comparator=(wbar, Ubar), beta=Bs)
    assert res2.not_checked and res2.not_checked[0] == res2.exit_time - 1
    assert not res2.apriori["applicable"]
    assert np.array_equal(res2.loss, res.loss)


def test_bad_arguments():
    ini, X, Y, cmp, rho_w, rho_u = teacher_case(5, 0.6)
    kw = dict(iterations=2, rho_w=rho_w, rho_u=rho_u, comparator=cmp)
    with pytest.raises(ValueError, match="algorithm"):
        run_train(ini, X, Y, eta=0.1, algorithm="adam", **kw)
    with pytest.raises(ValueError, match="eta"):
        run_train(ini, X, Y, eta=-1.0, **kw)
    with pytest.raises(ValueError, match="backend"):
        run_train(ini, X, Y, eta=0.1, backend="jax", **kw)
    res = run_train(ini, X, Y, eta=0.1, beta=[np.inf] * X.shape[1], **kw)
    assert res.not_checked == [0, 1] and res.min_slack is None


def test_summary_is_plain_json():
    import json

    ini, X, Y, cmp, rho_w, rho_u = teacher_case(6, 1.0)
    L, B = constants(1.0, X.shape[1])
    res = run_train(ini, X, Y, eta=0.3, iterations=5, rho_w=rho_w,
                    rho_u=rho_u, comparator=cmp, beta=B, L=L)
    text = json.dumps(res.summary(), allow_nan=False)
    back = json.loads(text)
    assert back["drift"]["violations"] == [] and len(back["radius"]["w"]) == 6


@pytest.mark.parametrize("backend", ["array_api_strict", "torch"])
def test_backends_give_the_numpy_run(backend):
    pytest.importorskip(backend)
    ini, X, Y, cmp, rho_w, rho_u = teacher_case(7, 1.3)
    L, B = constants(1.3, X.shape[1])
    kw = dict(eta=0.5, iterations=8, rho_w=rho_w, rho_u=rho_u, comparator=cmp, beta=B, L=L)
    ref = run_train(ini, X, Y, **kw)
    res = run_train(ini, X, Y, backend=backend, **kw)
    assert res.backend == backend
    np.testing.assert_allclose(res.loss, ref.loss, rtol=1e-12)
    np.testing.assert_allclose(res.slack, ref.slack, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.w_final, ref.w_final, rtol=1e-12, atol=1e-14)
    assert res.violations == ref.violations == []


@pytest.mark.gpu
def test_torch_cuda_backend_run():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda unavailable)")
    ini, X, Y, cmp, rho_w, rho_u = teacher_case(8, 1.0)
    L, B = constants(1.0, X.shape[1])
    kw = dict(eta=0.5, iterations=8, rho_w=rho_w, rho_u=rho_u, comparator=cmp, beta=B, L=L)
    ref = run_train(ini, X, Y, **kw)
    res = run_train(ini, X, Y, backend="torch", device="cuda", **kw)
    assert "cuda" in res.device
    np.testing.assert_allclose(res.loss, ref.loss, rtol=1e-11)
    assert res.violations == []


@pytest.mark.slow
@pytest.mark.parametrize("alpha_m", [0.6, 1.0, 1.3])
def test_drift_holds_at_case_size_with_linearized_comparator(alpha_m):
    """The INTERFACE example's size (m = 512, n = 32, T = 8, d = 3), a target outside
    the class (random Y), the best linearized comparator, 300 projected-GD steps."""
    m, n, T, d = 512, 32, 8, 3
    rng, X = data(11, n, T, d)
    Y = 0.5 * rng.standard_normal((n, T))
    alpha0 = 0.3
    rho_w, rho_u = (alpha_m - alpha0) * math.sqrt(m), 1.0
    ini = symmetric_init(m, d, alpha0, 11)
    cmp = comparator.linearized_comparator(
        ini.w0, ini.U0, ini.c, X, Y, comparator.ComparatorSettings(rho_w=rho_w, rho_u=rho_u),
        comparator.SolverSettings(max_iter=500))
    assert cmp.in_ball
    L, B = constants(alpha_m, T)
    res = run_train(ini, X, Y, eta=0.2, iterations=300, rho_w=rho_w,
                    rho_u=rho_u, comparator=cmp, beta=B, L=L)
    assert res.passed and res.min_slack > 0 and res.exit_time is None
    assert res.loss[-1] < res.loss[0]


def test_final_step_loss_run():
    ini, X, Y, cmp, rho_w, rho_u = teacher_case(9, 1.0)
    L, B = constants(1.0, X.shape[1])
    res = run_train(ini, X, Y, eta=0.5, iterations=20, rho_w=rho_w,
                    rho_u=rho_u, comparator=cmp, beta=B, L=L, loss="final-step")
    assert res.passed and res.loss_kind == "final-step"
    assert res.loss[0] == pytest.approx(0.5 * np.mean(Y[:, -1] ** 2), rel=1e-12)
    # E_k only sees t = T−1
    r = rnn.forward(ini.w0, ini.U0, ini.c, X) - Y
    E0 = np.mean(np.abs(r[:, -1])) * B[-1] * res.psi[0] / (2 * math.sqrt(ini.width))
    assert res.E[0] == pytest.approx(E0, rel=1e-12)
    assert res.apriori["eta_L2"] == pytest.approx(0.5 * L[-1] ** 2)


def test_projection_onto_a_ball_of_a_few_ulps():
    """Found by hypothesis: ru = 3.3e-15 around u0 = 9 (ulp 1.8e-15) — no shrink of a
    far point rounds inside; the projection still lands inside (on the centre)."""
    w0, U0 = np.zeros(1), np.full((1, 4), 9.0)
    for Ua in (np.zeros((1, 4)), np.full((1, 4), 1e6), U0 + 1e-14):
        pw, pU = projection.project(w0, Ua, w0, U0, 0.0, 3.2930143420368975e-15)
        assert projection.contains(pw, pU, w0, U0, 0.0, 3.2930143420368975e-15)
        assert np.max(np.abs(pU - U0)) <= 4e-15
        again = projection.project(pw, pU, w0, U0, 0.0, 3.2930143420368975e-15)
        assert np.array_equal(again[1], pU)
