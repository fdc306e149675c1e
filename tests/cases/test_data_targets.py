"""Data sources, symmetric initialization and targets."""

from __future__ import annotations

import importlib.util
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from certify.cases import data as D
from certify.cases import targets as TG
from certify.cases.case import DecimalValue
from certify.cases.init import ball_radius, float_below, symmetric_init
from certify.errors import FieldError

ACTIVATIONS = ("tanh", "logistic", "gaussian")


def exact_norm_sq(x) -> Fraction:
    return sum((Fraction(float(v)) ** 2 for v in x), Fraction(0))


def assert_in_unit_ball(X):
    assert X.dtype == np.float64 and np.isfinite(X).all()
    assert not D.norm_violations(X).any()
    s = np.sum(X * X, axis=-1)
    # spot-check the decision procedure in exact arithmetic on the largest vectors
    for idx in np.argsort(s, axis=None)[-5:]:
        j, t = np.unravel_index(idx, s.shape)
        assert exact_norm_sq(X[j, t]) <= 1


# --------------------------------------------------------------------------
# the unit-ball condition


def test_norm_violations_is_exact():
    X = np.zeros((1, 3, 3))
    X[0, 0] = [1.0, 2.0**-30, 0.0]  # ‖x‖² = 1 + 2⁻⁶⁰: float says 1, exact says > 1
    X[0, 1] = [1.0, 0.0, 0.0]  # exactly 1: allowed
    X[0, 2] = [0.6, 0.8, 0.0]  # float(0.6)² + float(0.8)²: decided exactly
    bad = D.norm_violations(X)
    assert bad[0, 0] and not bad[0, 1]
    assert bad[0, 2] == (exact_norm_sq(X[0, 2]) > 1)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
                  elements=st.floats(-4, 4, allow_nan=False, allow_subnormal=False)))
def test_into_unit_ball(X):
    Z = D.into_unit_ball(X)
    assert_in_unit_ball(Z)
    inside = np.sqrt(np.sum(X * X, axis=-1)) <= 1 - 1e-12
    assert np.array_equal(Z[inside], X[inside])  # vectors already inside are untouched
    # directions are kept
    nz = np.linalg.norm(X, axis=-1) > 1e-6
    cos = np.sum(Z * X, -1)[nz] / (np.linalg.norm(Z, axis=-1) * np.linalg.norm(X, axis=-1))[nz]
    assert np.allclose(cos, 1.0)


# --------------------------------------------------------------------------
# sources


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 10), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_sphere_and_gaussian_clipped(n, T, d, seed):
    X = D.sphere(n, T, d, seed)
    assert X.shape == (n, T, d)
    assert_in_unit_ball(X)
    assert np.allclose(np.linalg.norm(X, axis=-1), 1.0, rtol=0, atol=1e-14)
    G = D.gaussian_clipped(n, T, d, seed)
    assert G.shape == (n, T, d)
    assert_in_unit_ball(G)
    assert np.array_equal(X, D.sphere(n, T, d, seed))  # seeded


needs_statsmodels = pytest.mark.skipif(importlib.util.find_spec("statsmodels") is None,
                                       reason="statsmodels (the 'data' extra) not installed")
needs_scipy = pytest.mark.skipif(importlib.util.find_spec("scipy") is None,
                                 reason="scipy (the 'data' extra) not installed")


@needs_statsmodels
@pytest.mark.parametrize("series, size", [("sunspots", 309), ("co2", 2284)])
def test_statsmodels_series(series, size):
    v = D.series_values(series)
    assert v.shape == (size,) and np.isfinite(v).all()
    n, T, d, stride = 10, 6, 3, 7
    X, Y = D.statsmodels_series(series, n, T, d, stride)
    assert X.shape == (n, T, d) and Y.shape == (n, T)
    assert_in_unit_ball(X)
    assert np.abs(Y).max() <= 1
    # x_t = (v_t, v_{t-1}, …)/√d and y_t = v_{t+1}: the input's current value at
    # t+1 is the target at t, and lags shift by one step
    assert np.allclose(X[:, 1:, 0] * math.sqrt(d), Y[:, :-1], rtol=0, atol=1e-13)
    assert np.allclose(X[:, 1:, 1], X[:, :-1, 0], rtol=0, atol=1e-15)
    # windows start stride apart
    vs = (2 * v - (v.min() + v.max())) / (v.max() - v.min())
    assert np.allclose(Y[3, 0], vs[(d - 1) + 3 * stride + 1])


@needs_scipy
@pytest.mark.parametrize("system, d", [("van-der-pol", 2), ("lorenz", 3)])
def test_ode(system, d):
    X, Y = D.ode(system, 6, 8, d, seed=5, settings=D.OdeSettings(noise=0.01))
    assert X.shape == (6, 8, d) and Y.shape == (6, 8)
    assert_in_unit_ball(X)
    assert np.abs(Y).max() <= 1 and np.isclose(np.abs(Y).max(), 1.0)
    assert np.isclose(np.linalg.norm(X, axis=-1).max(), 1.0)
    X2, Y2 = D.ode(system, 6, 8, d, seed=5, settings=D.OdeSettings(noise=0.01))
    assert np.array_equal(X, X2) and np.array_equal(Y, Y2)
    # without noise the target is the next input's first coordinate, up to scale
    Xc, Yc = D.ode(system, 6, 8, d, seed=5, settings=D.OdeSettings(noise=0.0))
    ratio = Yc[:, :-1] / Xc[:, 1:, 0]
    assert np.allclose(ratio, ratio.flat[0], rtol=1e-9)
    with pytest.raises(FieldError, match="dim"):
        D.ode(system, 6, 8, d + 1, seed=5)


def test_missing_optional_packages(monkeypatch):
    real = importlib.util.find_spec

    def fake(name, *a, **k):
        if name in ("scipy", "statsmodels"):
            return None
        return real(name, *a, **k)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(FieldError, match="'data' extra"):
        D.series_values("sunspots")
    with pytest.raises(FieldError, match="'data' extra"):
        D.ode("van-der-pol", 2, 3, 2, seed=1)


# --------------------------------------------------------------------------
# symmetric initialization


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_symmetric_init_output_is_zero(activation):
    m, d = 16, 3
    init = symmetric_init(m, d, DecimalValue("0.7"), seed=4)
    X = D.sphere(5, 6, d, seed=6)
    H = TG.neuron_states(init.w0, init.U0, X, activation)  # (n, T, m)
    half = m // 2
    # the two copies have bit-identical states and opposite signs
    assert np.array_equal(H[..., :half], H[..., half:])
    pair = init.c[:half] * H[..., :half] + init.c[half:] * H[..., half:]
    assert np.all(pair == 0.0)
    f = H @ init.c / math.sqrt(m)
    assert np.max(np.abs(f)) <= 1e-14


def test_symmetric_init_law():
    m, d = 4000, 2
    init = symmetric_init(m, d, DecimalValue("0.1"), seed=9)
    half = m // 2
    assert np.array_equal(init.w0[:half], init.w0[half:])
    assert np.array_equal(init.U0[:half], init.U0[half:])
    assert np.array_equal(init.c[:half], -init.c[half:])
    assert set(np.unique(init.c)) == {-1.0, 1.0}
    # |w_i(0)| ≤ α₀ exactly although float(0.1) > 1/10
    assert Fraction(0.1) > Fraction(1, 10)
    assert max(Fraction(float(x)) for x in np.abs(init.w0)) <= Fraction(1, 10)
    assert float_below(DecimalValue("0.1")) < 0.1
    assert abs(init.U0[:half].mean()) < 0.1 and abs(init.U0[:half].std() - 1) < 0.05
    assert np.all(symmetric_init(8, 2, 0.0, seed=1).w0 == 0.0)
    again = symmetric_init(m, d, DecimalValue("0.1"), seed=9)
    assert np.array_equal(again.U0, init.U0) and np.array_equal(again.w0, init.w0)
    with pytest.raises(ValueError):
        symmetric_init(7, 2, 0.5, seed=1)


def test_ball_radius():
    m = 16
    init = symmetric_init(m, 3, 0.5, seed=2)
    assert ball_radius(init.w0, init.U0, init, m) == (0.0, 0.0)
    w = init.w0.copy()
    U = init.U0.copy()
    w[3] += 0.25
    U[5] += np.array([0.3, 0.4, 0.0])
    rw, ru = ball_radius(w, U, init, m)
    assert rw == pytest.approx(0.25 * 4) and ru == pytest.approx(0.5 * 4)


# --------------------------------------------------------------------------
# transport target


def test_transport_map_bounds_are_exact():
    nu_w, nu_u = DecimalValue("0.3"), DecimalValue("0.7")
    tmap = TG.make_transport_map(3, nu_w, nu_u, seed=5)
    rng = np.random.default_rng(0)
    U0 = 3 * rng.standard_normal((500, 3))
    vw, vU = tmap(np.zeros(500), U0)
    assert vw.shape == (500,) and vU.shape == (500, 3)
    assert max(Fraction(float(x)) for x in np.abs(vw)) <= nu_w.exact
    assert max(exact_norm_sq(r) for r in vU) <= nu_u.exact ** 2
    assert np.abs(vw).max() > 0.9 * 0.3  # the bound is nearly attained
    # the map is a function of the seed only
    tmap2 = TG.make_transport_map(3, nu_w, nu_u, seed=5)
    assert np.array_equal(tmap2(np.zeros(500), U0)[1], vU)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_jvp_matches_central_difference(activation):
    rng = np.random.default_rng(7)
    d, B = 3, 4
    X = D.sphere(3, 6, d, seed=1)
    w = rng.uniform(-0.9, 0.9, B)
    U = rng.standard_normal((B, d))
    tmap = TG.make_transport_map(d, 0.8, 0.6, seed=2)
    vw, vU = tmap(w, U)
    H, J = TG.directional_states(w, U, vw, vU, X, activation)
    assert np.array_equal(H, TG.neuron_states(w, U, X, activation))
    eps = 1e-5
    Hp = TG.neuron_states(w + eps * vw, U + eps * vU, X, activation)
    Hm = TG.neuron_states(w - eps * vw, U - eps * vU, X, activation)
    fd = (Hp - Hm) / (2 * eps)
    rel = np.max(np.abs(fd - J)) / np.max(np.abs(J))
    assert rel < 1e-6


def test_transport_estimator_is_the_sample_mean():
    """The blocked/merged estimator equals the plain mean and stderr of the same draws."""
    X = D.sphere(3, 4, 2, seed=1)
    alpha0 = DecimalValue("0.5")
    tmap = TG.make_transport_map(2, 1.0, 1.0, seed=8)
    M = TG.DRAW_BLOCK + 904  # two blocks, the second partial
    mean, se = TG.transport_target(X, "tanh", alpha0, tmap, M, seed=8)
    _, mc_ss = np.random.SeedSequence(8).spawn(2)
    rng = np.random.default_rng(mc_ss)
    Js = []
    for B in (TG.DRAW_BLOCK, 904):
        w, U = TG._draw_theta(rng, B, 2, alpha0)
        vw, vU = tmap(w, U)
        Js.append(TG.directional_states(w, U, vw, vU, X, "tanh")[1])
    J = np.concatenate(Js, axis=2)
    assert np.allclose(mean, J.mean(axis=2), rtol=0, atol=1e-14)
    assert np.allclose(se, J.std(axis=2, ddof=1) / math.sqrt(M), rtol=1e-10)


def test_transport_stderr_scales_like_inverse_sqrt_draws():
    X = D.sphere(4, 4, 2, seed=3)
    tmap = TG.make_transport_map(2, 1.0, 1.0, seed=4)
    m1, s1 = TG.transport_target(X, "tanh", 0.5, tmap, 2000, seed=4)
    m2, s2 = TG.transport_target(X, "tanh", 0.5, tmap, 32000, seed=4)
    ratio = np.median(s1 / s2)
    assert 3.2 < ratio < 4.8  # √16 = 4
    z = np.abs(m1 - m2) / np.sqrt(s1**2 + s2**2)
    assert z.max() < 6


def test_transport_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_CERTIFY_CACHE", str(tmp_path))
    X = D.sphere(3, 3, 2, seed=3)
    tmap = TG.make_transport_map(2, 1.0, 1.0, seed=4)
    a = TG.cached_transport_target(X, "tanh", DecimalValue("0.5"), tmap, 300, seed=4)
    files = list(tmp_path.rglob("*.npz"))
    assert len(files) == 1
    b = TG.cached_transport_target(X, "tanh", DecimalValue("0.5"), tmap, 300, seed=4)
    c = TG.transport_target(X, "tanh", DecimalValue("0.5"), tmap, 300, seed=4)
    for x, y, z in zip(a, b, c, strict=True):
        assert np.array_equal(x, y) and np.array_equal(x, z)
    # a different α₀ text is a different key
    TG.cached_transport_target(X, "tanh", DecimalValue("0.50000000000000001"), tmap, 300, 4)
    assert len(list(tmp_path.rglob("*.npz"))) == 2
    files[0].write_bytes(b"garbage")  # a corrupt entry is recomputed
    d = TG.cached_transport_target(X, "tanh", DecimalValue("0.5"), tmap, 300, seed=4)
    assert np.array_equal(d[0], a[0])


# --------------------------------------------------------------------------
# concept classes


@pytest.mark.parametrize("link", list(TG.LINKS))
def test_additive_target(link):
    X = D.gaussian_clipped(5, 6, 3, seed=1)
    Y = TG.additive_target(X, seed=2, link=link, decay=0.7, amplitude=0.8)
    assert Y.shape == (5, 6) and np.abs(Y).max() <= 0.8 + 1e-12
    # direct double sum
    beta = TG._unit_rows(np.random.default_rng(2), 6, 3)
    phi, phi_max = TG.LINKS[link]
    norm = phi_max * sum(0.7**k for k in range(6))
    j, t = 3, 4
    direct = sum(0.7 ** (t - l) * phi(X[j, l] @ beta[l]) for l in range(t + 1))
    assert Y[j, t] == pytest.approx(0.8 * direct / norm, rel=1e-12)


def test_multi_index_target():
    X = D.sphere(5, 7, 2, seed=1)
    lags = (0, 2, 5)
    Y = TG.multi_index_target(X, seed=3, lags=lags, link="sin", amplitude=0.5)
    assert Y.shape == (5, 7) and np.abs(Y).max() <= 0.5 + 1e-12
    beta = TG._unit_rows(np.random.default_rng(3), 1, 6)[0] / math.sqrt(3)
    j, t = 2, 4
    z = np.concatenate([X[j, t - l] if t - l >= 0 else np.zeros(2) for l in lags])
    assert Y[j, t] == pytest.approx(0.5 * np.sin(beta @ z) / math.sin(1.0), rel=1e-12)
    assert not np.allclose(Y[:, 5], Y[:, 4])


def test_linear_system_target():
    X = D.gaussian_clipped(6, 8, 3, seed=1)
    Y = TG.linear_system_target(X, seed=2, rho_A=0.8, state_dim=5, amplitude=0.9)
    assert Y.shape == (6, 8) and np.abs(Y).max() <= 0.9 + 1e-12
    # linear in X, causal (y_t depends on x_0..x_t only)
    Y2 = TG.linear_system_target(2 * X, seed=2, rho_A=0.8, state_dim=5, amplitude=0.9)
    assert np.allclose(Y2, 2 * Y)
    Xc = X.copy()
    Xc[:, 5:] = 0
    Y3 = TG.linear_system_target(Xc, seed=2, rho_A=0.8, state_dim=5, amplitude=0.9)
    assert np.allclose(Y3[:, :5], Y[:, :5])


def test_build_target_errors():
    X = D.sphere(2, 3, 2, seed=1)

    class Spec:
        kind = "data"

    with pytest.raises(FieldError, match="target"):
        TG.build_target(Spec(), X, activation="tanh", alpha0=0.5)
