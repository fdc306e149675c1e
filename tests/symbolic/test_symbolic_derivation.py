"""The sympy-derived sensitivity templates (THEORY §4).

* structure equals the spec's formulas (v_t = e_t + w g_{t-1}, H_t = σ''vvᵀ + σ'(…));
* generated g_t and H_t agree with central finite differences of the naive
  forward recursion at 50+ digits (relative error < 1e-25), T up to 30.
"""

from __future__ import annotations

import mpmath
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbolic import cell_functions
from symbolic.cell import derive, structure
from tests.mp_reference import hidden_states, sigma_mp


def test_structure_matches_theory_section_4():
    s = structure()
    gw, gu, hprev, x, w = sp.symbols("gw gu hprev x w", real=True)
    assert sp.expand(s["v_w"] - (hprev + w * gw)) == 0
    assert sp.expand(s["v_u"] - (x + w * gu)) == 0
    # S = e_w gᵀ + g e_wᵀ has blocks (2 g_w, g_u, 0)
    assert s["S_ww"] == 2 * gw and s["S_wu"] == gu and s["S_uu"] == 0


def test_templates_declare_exactly_their_symbols():
    for t in derive().values():
        assert {str(a) for a in t.expr.free_symbols} <= set(t.args), t.name


def _sens_mp(name, w, u, X):
    """g_t and H_t from the generated templates, evaluated in mpmath."""
    cf = cell_functions()
    d = len(u)
    s0, s1f, s2f = (sigma_mp(name, k) for k in range(3))
    h = mpmath.mpf(0)
    gw, gu = mpmath.mpf(0), [mpmath.mpf(0)] * d
    Hww, Hwu = mpmath.mpf(0), [mpmath.mpf(0)] * d
    Huu = [[mpmath.mpf(0)] * d for _ in range(d)]
    out = []
    for x in X:
        s = mpmath.fsum(ui * xi for ui, xi in zip(u, x, strict=True))
        z = cf.z(w, h, s, ns=mpmath)
        s1, s2 = s1f(z), s2f(z)
        nHuu = [[cf.H_uu(s1, s2, w, x[a], x[b], gu[a], gu[b], Huu[a][b], ns=mpmath)
                 for b in range(d)] for a in range(d)]
        nHwu = [cf.H_wu(s1, s2, w, h, x[a], gw, gu[a], Hwu[a], ns=mpmath) for a in range(d)]
        nHww = cf.H_ww(s1, s2, w, h, gw, Hww, ns=mpmath)
        ngu = [cf.g_u(s1, w, x[a], gu[a], ns=mpmath) for a in range(d)]
        ngw = cf.g_w(s1, w, h, gw, ns=mpmath)
        h = s0(z)
        gw, gu, Hww, Hwu, Huu = ngw, ngu, nHww, nHwu, nHuu
        g = [gw] + gu
        H = [[Hww] + Hwu] + [[Hwu[a]] + Huu[a] for a in range(d)]
        out.append((h, g, H))
    return out


def _rel(diff, ref):
    num = max(abs(v) for v in diff)
    den = max(max(abs(v) for v in ref), mpmath.mpf(1e-30))
    return num / den


vec = st.floats(-1.0, 1.0, allow_nan=False)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["tanh", "logistic", "gaussian"]),
       T=st.integers(1, 30), w=st.floats(-1.4, 1.4), u=st.lists(vec, min_size=3, max_size=3),
       seed=st.integers(0, 2**32 - 1))
def test_generated_sensitivities_match_finite_differences(name, T, w, u, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(T, 3))
    X /= np.maximum(1.0, np.linalg.norm(X, axis=1))[:, None]
    with mpmath.workdps(90):
        W = mpmath.mpf(w)
        U = [mpmath.mpf(v) for v in u]
        XX = [[mpmath.mpf(float(v)) for v in row] for row in X]
        sens = _sens_mp(name, W, U, XX)
        theta = [W] + U

        def h_at(th):
            return hidden_states(name, th[0], th[1:], XX)

        def shifted(*moves):
            th = list(theta)
            for idx, delta in moves:
                th[idx] += delta
            return h_at(th)

        eps1, eps2 = mpmath.mpf("1e-30"), mpmath.mpf("1e-18")
        P = len(theta)
        g_fd = [[(p - m) / (2 * eps1) for p, m in zip(shifted((a, eps1)), shifted((a, -eps1)),
                                                     strict=True)] for a in range(P)]
        for t in range(T):
            h, g, H = sens[t]
            ref_g = [g_fd[a][t] for a in range(P)]
            err = _rel([g[a] - ref_g[a] for a in range(P)], ref_g)
            assert err < mpmath.mpf("1e-25"), (name, T, w, u, seed, t, "g", err)
        for a in range(P):
            for b in range(a, P):
                pp, pm = shifted((a, eps2), (b, eps2)), shifted((a, eps2), (b, -eps2))
                mp_, mm = shifted((a, -eps2), (b, eps2)), shifted((a, -eps2), (b, -eps2))
                for t in range(T):
                    fd = (pp[t] - pm[t] - mp_[t] + mm[t]) / (4 * eps2 * eps2)
                    Hab = sens[t][2][a][b]
                    scale = max(max(abs(v) for row in sens[t][2] for v in row), mpmath.mpf(1))
                    assert abs(Hab - fd) / scale < mpmath.mpf("1e-25"), (
                        name, T, w, u, seed, t, (a, b), Hab, fd)


def test_reverse_mode_templates_through_the_pre_activation():
    """dz_* are sympy's partials of the z template; adj_z is the chain rule through
    σ and z_{t+1}, and agrees with the independently derived dh_* partials."""
    t = derive()
    w, hprev, s, s1 = sp.symbols("w hprev s s1", real=True)
    pnext, cot = sp.symbols("pnext cot", real=True)
    z = t["z"].expr
    assert sp.expand(z - (w * hprev + s)) == 0
    for name, var in (("dz_dhprev", hprev), ("dz_dw", w), ("dz_ds", s)):
        assert sp.expand(t[name].expr - sp.diff(z, var)) == 0, name
    # p_t = ∂L/∂z_t with L = cot·h_t + pnext·z_{t+1}: dh_t/dz_t = σ' = dh_ds, and
    # ∂z_{t+1}/∂z_t = dh_dhprev (h_t seen by the next step through w)
    adj = t["adj_z"].expr
    ref = cot * t["dh_ds"].expr + pnext * t["dh_dhprev"].expr
    assert sp.expand(adj - ref) == 0
    # kept factored: one product by σ' per element
    assert adj.is_Mul and s1 in adj.args
    # the generated in-place twins compute the same numbers
    import numpy as np

    cf = cell_functions()
    rng = np.random.default_rng(0)
    A = {a: rng.standard_normal((3, 5)) for a in ("s1", "w", "pnext", "cot", "hprev", "s")}
    for name in ("adj_z", "z"):
        args = [A[a] for a in t[name].args]
        out = (np.empty((3, 5)),)
        f = getattr(cf, f"{name}_into")
        f(*args, out=out, tmp=[np.empty((3, 5)) for _ in range(f.ntmp)], ns=np)
        np.testing.assert_allclose(out[0], getattr(cf, name)(*args, ns=np), rtol=1e-15,
                                   atol=1e-15)
