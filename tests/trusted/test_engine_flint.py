"""The second trusted engine: Arb ball arithmetic through python-flint
(certify.trusted.engine_flint), behind the interface of certify.trusted.engine_iv.IVEngine.

Soundness against the naive 50-digit reference (tests/mp_reference.py, no
sensitivity template involved), agreement with mpmath.iv on every shipped case
(every entry overlaps; widths compared), the data-specific certifier end to end
with ``engine="python-flint"``, and the error paths.  Skipped when python-flint
is not installed.
"""

from __future__ import annotations

import math
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from mpmath import iv, mpf

flint = pytest.importorskip("flint")

from certify.trusted.engine import norm_bounds as iv_norm_bounds  # noqa: E402
from certify.trusted.engine import spectral_upper_exact  # noqa: E402
from certify.trusted.engine_flint import (  # noqa: E402
    FlintEngine,
    adapt,
    arb_to_iv,
    ipow,
    iv_to_arb,
    precision,
    spectral_int,
    spectral_int_sym,
    spectral_upper,
)
from certify.trusted.engine_iv import IVEngine  # noqa: E402
from certify.trusted.engines import (  # noqa: E402
    ENGINES,
    EngineUnavailable,
    canonical_engine,
    engine_unavailable,
    get_engine,
)
from certify.trusted.intervals import hi, lo  # noqa: E402
from symbolic import cell_functions  # noqa: E402
from tests.trusted.test_engine import reference, small_case  # noqa: E402

arb = flint.arb
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "cases").glob("*.toml"))
SETTINGS = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLACK = mpf(10) ** -30  # numerical differentiation error of the reference


def _iv(x):
    return x if hasattr(x, "_mpi_") else arb_to_iv(x)


def _contains(x, v, slack=0) -> bool:
    x = _iv(x)
    return lo(x) - slack <= v <= hi(x) + slack


def _overlap(a, b) -> bool:
    a, b = _iv(a), _iv(b)
    return not (hi(a) < lo(b) or hi(b) < lo(a))


def _width(x) -> float:
    x = _iv(x)
    return float(hi(x) - lo(x))


@pytest.fixture(scope="module")
def engines():
    return {act: (get_engine("mpmath.iv", act), get_engine("python-flint", act))
            for act in ("tanh", "logistic", "gaussian")}


# --------------------------------------------------------------------------
# registry, names, errors


def test_registry_and_names():
    for name in ("python-flint", "flint", "arb", "  Flint "):
        assert canonical_engine(name) == "python-flint"
        assert get_engine(name, "tanh").name == "python-flint"
    for name in ("mpmath.iv", "iv", "mpmath", None, ""):
        assert canonical_engine(name) == "mpmath.iv"
    assert isinstance(get_engine("flint", "tanh"), FlintEngine)
    assert isinstance(get_engine("mpmath.iv", "tanh"), IVEngine)
    assert engine_unavailable("python-flint") is None
    assert set(ENGINES) >= {"mpmath.iv", "python-flint", "flint", "arb"}


def test_bad_engine_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown interval engine 'nope'.*python-flint"):
        get_engine("nope", "tanh")
    with pytest.raises(ValueError, match="unknown interval engine"):
        canonical_engine("arb-ball")


def test_missing_python_flint_is_a_clear_error(monkeypatch):
    import importlib.util
    import sys

    import certify.trusted.engines as engine_mod

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "flint" else real(name, *a))
    why = engine_unavailable("flint")
    assert why and "python-flint" in why and "not installed" in why and "\n" not in why
    assert engine_unavailable("mpmath.iv") is None
    monkeypatch.delitem(sys.modules, "certify.trusted.engine_flint", raising=False)
    monkeypatch.setitem(sys.modules, "flint", None)  # `import flint` fails
    with pytest.raises(EngineUnavailable, match="python-flint package"):
        engine_mod._flint_engine("tanh")


def test_an_import_error_of_ours_is_not_reported_as_a_missing_package(monkeypatch):
    """Only a failing ``import flint`` means "not installed"; any other ImportError
    (a defect in certify.trusted.engine_flint) keeps its traceback."""
    import sys

    import certify.trusted.engines as engine_mod

    monkeypatch.setitem(sys.modules, "certify.trusted.engine_flint", None)
    with pytest.raises(ImportError):  # EngineUnavailable is a ValueError
        engine_mod._flint_engine("tanh")


def test_case_file_engine_key(tmp_path, monkeypatch):
    from certify.cases.case import load_case
    from certify.errors import UserError
    from tests.cases.test_case import mutate, write

    case = load_case(write(tmp_path, mutate(**{"certify.engine": "flint"})), build=False)
    assert case.certify.engine == "python-flint"
    assert load_case(write(tmp_path, mutate()), build=False).certify.engine == "mpmath.iv"
    for bad, needle in (("nope", "unknown interval engine"), (3, "expected a string")):
        p = write(tmp_path, mutate(**{"certify.engine": bad}), "bad_engine.toml")
        with pytest.raises(UserError) as ei:
            load_case(p, build=False)
        msg = str(ei.value)
        assert msg.startswith(f"{p}: [certify].engine: ") and needle in msg and "\n" not in msg
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "flint" else real(name, *a))
    p = write(tmp_path, mutate(**{"certify.engine": "python-flint"}), "no_flint.toml")
    with pytest.raises(UserError, match=r"\[certify\]\.engine: .*not installed"):
        load_case(p, build=False)


def test_cli_engine_option_errors(capsys):
    from certify.cli import main

    assert main(["run", "cases", "--engine", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--engine" in err and "nope" in err and err.count("\n") == 1


# --------------------------------------------------------------------------
# building blocks


def test_precision_is_set_and_restored(engines):
    _, fe = engines["tanh"]
    saved = flint.ctx.prec
    try:
        flint.ctx.prec = 113
        fe.box([0.1, 0.2, -0.3], [0.12, 0.25, -0.28], [[0.3, 0.4], [0.5, -0.1]], None, None, 2)
        fe.point_lower([0.1, 0.2, -0.3], [[0.3, 0.4], [0.5, -0.1]], 2)
        assert flint.ctx.prec == 113
        with precision(53):
            assert flint.ctx.prec == 53
        assert flint.ctx.prec == 113
    finally:
        flint.ctx.prec = saved


def test_integer_powers_avoid_arb_pow():
    """arb_pow gives NaN for a ball with midpoint exactly 0; ipow must not."""
    with precision(53):
        x = arb(0, 1)  # [-1, 1]
        assert not (x**2).is_finite()  # the python-flint behaviour being avoided
        for n in (2, 3, 4, 5):
            y = ipow(x, n)
            assert y.is_finite() and _contains(y, mpf(1)) and _contains(y, mpf(0))
        sq = arb_to_iv(ipow(x, 2))
        assert lo(sq) >= 0  # even powers clamped to [0, ∞)
        assert _contains(ipow(arb(3), -2), mpf(1) / 9)


def test_adapted_templates_are_the_generated_formulas(rng):
    """The ball form of the generated templates (x**n → ns.ipow) computes the same
    polynomials: equal to the generated functions on floats."""
    cf = cell_functions()
    ad = adapt(cf)

    class FloatNS:
        @staticmethod
        def ipow(x, n):
            return x**n

    for _ in range(20):
        args = rng.standard_normal(8).tolist()
        assert ad.H_ww(*args[:6], ns=FloatNS) == pytest.approx(cf.H_ww(*args[:6], ns=None))
        assert ad.H_wu(*args[:8], ns=FloatNS) == pytest.approx(cf.H_wu(*args[:8], ns=None))
        assert ad.H_uu(*args[:8], ns=FloatNS) == pytest.approx(cf.H_uu(*args[:8], ns=None))
        assert ad.g_w(*args[:4], ns=FloatNS) == cf.g_w(*args[:4], ns=None)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 5), st.floats(1e-6, 2.0), st.booleans())
def test_spectral_bound_is_an_upper_bound(seed, p, scale, symmetric):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((p, p))
    if symmetric:
        A = A + A.T
    r = np.abs(rng.standard_normal((p, p))) * scale * rng.uniform(0, 0.3)
    if symmetric:
        r = r + r.T
    Lo, Hi = A - r, A + r
    note(f"Lo={Lo.tolist()} Hi={Hi.tolist()}")
    with precision(53):
        M = [[arb(float(Lo[i, j])).union(arb(float(Hi[i, j]))) for j in range(p)]
             for i in range(p)]
        u = spectral_upper(M)
    worst = max(np.linalg.norm(Lo + (Hi - Lo) * rng.integers(0, 2, (p, p)), 2)
                for _ in range(40))
    assert float(u) >= worst
    # a ball's radius has 30 bits: [Lo, Hi] as a ball is wider by ~(Hi − Lo)·2^-30
    frob = np.sqrt(np.sum(np.maximum(np.abs(Lo), np.abs(Hi)) ** 2))
    assert float(u) <= frob * (1 + 1e-8)
    # the same bound as the mpmath.iv engine's, up to that and the last grid units
    ref = spectral_upper_exact([[mpf(v) for v in row] for row in Lo],
                               [[mpf(v) for v in row] for row in Hi])
    assert abs(float(u) / float(ref) - 1) < 1e-8
    if symmetric:  # the symmetric form used by the vertex loop is the same bound
        E = -40
        L = [math.floor(Lo[i, j] * 2**-E) for i in range(p) for j in range(p)]
        U = [math.ceil(Hi[i, j] * 2**-E) for i in range(p) for j in range(p)]
        tri = [(a, b) for a in range(p) for b in range(a, p)]
        pos = {ab: i for i, ab in enumerate(tri)}
        full = [pos[(min(a, b), max(a, b))] for a in range(p) for b in range(p)]
        Lt = [L[a * p + b] for a, b in tri]
        Ut = [U[a * p + b] for a, b in tri]
        W = [1 if a == b else 2 for a, b in tri]
        assert spectral_int_sym(Lt, Ut, W, full, p) == spectral_int(L, U, p)


_num = st.one_of(st.floats(-4, 4, allow_nan=False), st.just(0.0),
                 st.floats(-1e-6, 1e-6, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(_num, _num, _num, _num)
def test_tight_product_contains_every_product(a, b, c, d):
    """tmul/hull_mul (the products of wide balls) contain every product, exactly
    checked in rationals, and are no wider than the interval product (+ rounding)."""
    from fractions import Fraction

    from certify.trusted.engine_flint import hull_mul, lower_mpf, tmul, upper_mpf
    from certify.trusted.intervals import _mpf_fraction

    a, b = sorted((a, b))
    c, d = sorted((c, d))
    prods = [Fraction(p) * Fraction(q) for p in (a, b) for q in (c, d)]
    with precision(53):
        x = arb(a).union(arb(b))
        y = arb(c).union(arb(d))
        for r in (hull_mul(x, y), tmul(x, y), tmul(y, x)):
            L, H = _mpf_fraction(lower_mpf(r)), _mpf_fraction(upper_mpf(r))
            assert L <= min(prods) and H >= max(prods), (a, b, c, d, r)
        r = hull_mul(x, y)
        L, H = _mpf_fraction(lower_mpf(r)), _mpf_fraction(upper_mpf(r))
        slack = (max(prods) - min(prods) + max(abs(p) for p in prods)) * Fraction(1, 10**7)
        assert H - L <= max(prods) - min(prods) + slack + Fraction(1, 10**300)


def test_ball_dual_follows_the_chain_rule():
    from certify.trusted.engine_flint import BallDual

    with precision(53):
        x = BallDual(arb(0.5), [arb(1), arb(0)])
        y = BallDual(arb(2), [arb(0), arb(1)])
        f = 3 * x * x * y - y**2 + 1 - x
        assert _contains(f.v, mpf(-2))  # 1.5 - 4 + 1 - 0.5
        assert _contains(f.d[0], mpf(5))  # 6xy - 1
        assert _contains(f.d[1], mpf("-3.25"))  # 3x² - 2y
        assert type(f) is BallDual


def test_conversions_are_outward():
    x = iv.mpf(["0.1", "0.3"])
    with precision(53):
        b = iv_to_arb(x)
        y = arb_to_iv(b)
    assert lo(y) <= lo(x) and hi(y) >= hi(x)
    assert hi(y) - lo(y) <= (hi(x) - lo(x)) * (1 + 1e-8)
    with precision(53):
        z = arb_to_iv(arb(1) / 3)
    assert lo(z) <= mpf(1) / 3 <= hi(z)
    assert lo(arb_to_iv(arb("nan"))) == mpf("-inf")


# --------------------------------------------------------------------------
# soundness against the 50-digit reference


@SETTINGS
@given(small_case(), st.sampled_from(["tanh", "logistic", "gaussian"]), st.booleans())
def test_box_enclosures_contain_50_digit_values(case, act, ball):
    xs, blo, bhi, rng = case
    eng = get_engine("python-flint", act)
    T = len(xs)
    p = len(blo)
    u0 = ru = None
    if ball:  # a ball around the box centre that contains the whole box
        c = (blo + bhi) / 2
        u0 = c[1:].tolist()
        ru = float(np.linalg.norm((bhi - blo)[1:] / 2)) * 1.01 + 1e-12
    sts = eng.box(list(blo), list(bhi), xs.tolist(), u0, ru, T)
    note(f"act={act} box_lo={blo.tolist()} box_hi={bhi.tolist()} xs={xs.tolist()} "
         f"u0={u0} ru={ru}")
    for _ in range(2):
        theta = blo + (bhi - blo) * rng.uniform(0, 1, p)
        t = int(rng.integers(0, T))
        where = f"theta={theta.tolist()} t={t}"
        s = sts[t]
        hv = reference(act, theta, xs, t, 0)
        assert _contains(s.h, hv), f"h: {where} {hv} not in {_iv(s.h)}"
        g = reference(act, theta, xs, t, 1)
        H = reference(act, theta, xs, t, 2)
        for a in range(p):
            assert _contains(s.g[a], g[a], SLACK), f"g[{a}]: {where}"
            for b in range(p):
                assert _contains(s.H[a][b], H[a][b], SLACK), f"H[{a}][{b}]: {where}"
        uL, uB = eng.norm_bounds(s)
        Hm = np.array([[float(v) for v in row] for row in H])
        nL = float(mpmath.sqrt(sum(v * v for v in g)))
        nB = float(np.max(np.abs(np.linalg.eigvalsh(Hm))))
        assert float(uL) >= nL * (1 - 1e-15), f"‖g‖: {where} {uL} < {nL}"
        assert float(uB) >= nB * (1 - 1e-12), f"‖H‖: {where} {uB} < {nB}"


@SETTINGS
@given(small_case(), st.sampled_from(["tanh", "logistic"]))
def test_cheap_enclosure_from_superset_is_sound(case, act):
    xs, blo, bhi, rng = case
    eng = get_engine("python-flint", act)
    T = len(xs)
    sup = eng.box(list(blo), list(bhi), xs.tolist(), None, None, T)
    a = blo + (bhi - blo) * rng.uniform(0, 0.5, len(blo))
    b = a + (bhi - a) * rng.uniform(0, 1, len(blo))
    sts = eng.box_from(list(a), list(b), xs.tolist(), [s.dH for s in sup], T)
    theta = a + (b - a) * rng.uniform(0, 1, len(a))
    t = T - 1
    note(f"act={act} sub_lo={a.tolist()} sub_hi={b.tolist()} theta={theta.tolist()} "
         f"xs={xs.tolist()}")
    g = reference(act, theta, xs, t, 1)
    H = reference(act, theta, xs, t, 2)
    for i in range(len(a)):
        assert _contains(sts[t].g[i], g[i], SLACK)
        for j in range(len(a)):
            assert _contains(sts[t].H[i][j], H[i][j], SLACK)
    uL, uB = eng.norm_bounds(sts[t])
    assert float(uL) >= float(mpmath.sqrt(sum(v * v for v in g))) * (1 - 1e-15)
    Hm = np.array([[float(v) for v in row] for row in H])
    assert float(uB) >= np.max(np.abs(np.linalg.eigvalsh(Hm))) * (1 - 1e-12)


def test_third_derivative_enclosure_by_ad(engines):
    _, fe = engines["tanh"]
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((3, 2)) * 0.5
    c = np.array([0.3, 0.4, -0.7])
    blo, bhi = c - 0.05, c + 0.05
    sts = fe.box(list(blo), list(bhi), xs.tolist(), None, None, 3)
    theta = blo + (bhi - blo) * rng.uniform(0, 1, 3)
    D = reference("tanh", theta, xs, 2, 3)
    for a in range(3):
        for b in range(3):
            for k in range(3):
                assert _contains(sts[2].dH[a][b][k], D[a][b][k], mpf(10) ** -20), \
                    f"dH[{a}][{b}][{k}] theta={theta.tolist()}"


@pytest.mark.parametrize("act", ["tanh", "logistic", "gaussian"])
def test_point_enclosure_is_thin_and_lower_bounds_hold(act, engines):
    ie, fe = engines[act]
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((3, 2)) * 0.6
    theta = [0.4, 0.8, -0.3]
    sts = fe.point(theta, xs.tolist(), 3)
    vecs = [rng.standard_normal(3) for _ in range(3)]
    lows = fe.point_lower(theta, xs.tolist(), 3, vecs)
    lows_iv = ie.point_lower(theta, xs.tolist(), 3, vecs)
    for t in range(3):
        assert _contains(sts[t].h, reference(act, theta, xs, t, 0))
        g = reference(act, theta, xs, t, 1)
        H = reference(act, theta, xs, t, 2)
        for a in range(3):
            assert _width(sts[t].g[a]) < 1e-13
            assert _contains(sts[t].g[a], g[a], SLACK)
        lL, lB = lows[t]
        assert lL <= mpmath.sqrt(sum(v * v for v in g)) + SLACK
        ev = mpmath.eigsy(mpmath.matrix(H), eigvals_only=True)
        assert lB <= max(abs(v) for v in ev) + SLACK
        # the same certified lower bounds as mpmath.iv, to rounding
        assert float(lL) == pytest.approx(float(lows_iv[t][0]), rel=1e-12)
        assert float(lB) == pytest.approx(float(lows_iv[t][1]), rel=1e-12)


def test_membership_agrees_with_mpmath(engines):
    ie, fe = engines["tanh"]
    rw = iv.mpf("0.125")
    ru = iv.mpf("0.25")
    w0, u0 = 0.3, [0.1, -0.2]
    rng = np.random.default_rng(4)
    for _ in range(200):
        th = [w0 + rng.uniform(-0.15, 0.15)] + (np.array(u0) + rng.uniform(-0.2, 0.2, 2)).tolist()
        assert fe.membership(th, w0, u0, rw, ru) == ie.membership(th, w0, u0, rw, ru), th
    assert fe.membership([w0] + u0, w0, u0, rw, ru)
    assert not fe.membership([w0 + 0.126] + u0, w0, u0, rw, ru)


# --------------------------------------------------------------------------
# agreement with mpmath.iv on every shipped case


def _entries(s):
    yield "h", s.h
    yield "hc", s.hc
    for a, v in enumerate(s.g):
        yield f"g[{a}]", v
    for a, v in enumerate(s.gc):
        yield f"gc[{a}]", v
    for a, row in enumerate(s.H):
        for b, v in enumerate(row):
            yield f"H[{a}][{b}]", v
            yield f"Hc[{a}][{b}]", s.Hc[a][b]
            for k, dv in enumerate(s.dH[a][b]):
                yield f"dH[{a}][{b}][{k}]", dv


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_cases_engines_overlap(path, record_property):
    """On boxes around a few neurons and samples of each shipped case (the root box
    of the neuron's set and a quarter of it), every enclosure of python-flint overlaps
    mpmath.iv's; the widths and norm bounds are comparable (ratios recorded)."""
    from certify.cases.case import load_case

    case = load_case(path)
    ie = get_engine("mpmath.iv", case.activation)
    fe = get_engine("python-flint", case.activation)
    X = case.data.X
    n, T, d = X.shape
    steps = min(T, 5)
    m = case.width
    rw = float(case.ball.rho_w) / math.sqrt(m)
    ru = float(case.ball.rho_u) / math.sqrt(m)
    ratios, nratio = [], []
    for i in (0, m // 3):
        for j in (0, n - 1):
            c = np.r_[case.init.w0[i], case.init.U0[i]]
            for frac in (1.0, 0.25):
                half = np.r_[rw, np.full(d, ru)] * frac
                blo, bhi = (c - half).tolist(), (c + half).tolist()
                args = (X[j].tolist(), case.init.U0[i].tolist(), ru, steps)
                a = ie.box(blo, bhi, *args)
                b = fe.box(blo, bhi, *args)
                for t in range(steps):
                    for (name, x), (_, y) in zip(_entries(a[t]), _entries(b[t]), strict=True):
                        assert _overlap(x, y), (f"{path.stem} neuron {i} sample {j} box "
                                                f"{blo}..{bhi} t={t} {name}: "
                                                f"{_iv(x)} vs {_iv(y)}")
                        wx = _width(x)
                        if wx > 1e-12:
                            ratios.append(_width(y) / wx)
                    for u, v in zip(ie.norm_bounds(a[t]), fe.norm_bounds(b[t]), strict=True):
                        nratio.append(float(v) / float(u))
    ratios = np.array(ratios)
    nratio = np.array(nratio)
    summary = {"width_ratio_median": float(np.median(ratios)),
               "width_ratio_p90": float(np.quantile(ratios, 0.9)),
               "width_ratio_max": float(ratios.max()),
               "norm_ratio_median": float(np.median(nratio)),
               "norm_ratio_max": float(nratio.max()), "norm_ratio_min": float(nratio.min())}
    record_property("flint_vs_iv", summary)
    print(path.stem, summary)
    # comparable (measured: median width ratio ≈ 1.0001, max ≤ 1.04; norm bounds
    # within 1e-3): Arb's radii have 30 bits, and products of wide balls are interval
    # products (engine_flint.tmul)
    assert summary["width_ratio_median"] < 1.01
    assert summary["width_ratio_max"] < 1.25
    assert summary["norm_ratio_max"] < 1.01


# --------------------------------------------------------------------------
# the data-specific certifier with engine="python-flint"


FAST = dict(rel_tol=0.3, box_budget=400, lower_samples=8)


@pytest.fixture(scope="module")
def small_runs():
    from certify.bounds.data_constants import Ball, BoundsSettings, certify_data_constants
    from tests.bounds.test_data_constants import sphere_data, symmetric

    m, n, T, d = 4, 2, 3, 2
    X = sphere_data(n, T, d, 11)
    init = symmetric(m, d, 0.5, 7)
    out = {}
    for engine in ("mpmath.iv", "python-flint"):
        out[engine] = certify_data_constants(
            "tanh", X, init, Ball(m, "0.6", "0.6"), "0.8", T,
            settings=BoundsSettings(seed=1, engine=engine, **FAST))
    return out


def test_certifier_with_flint_engine(small_runs):
    import json

    dc = small_runs["python-flint"]
    ref = small_runs["mpmath.iv"]
    assert dc.engine == "python-flint" and ref.engine == "mpmath.iv"
    assert dc.checks() == []
    json.dumps(dc.to_json())
    for kind in ("L", "beta"):
        up, up_ref = dc.upper(kind), ref.upper(kind)
        low = dc.lower_L if kind == "L" else dc.lower_beta
        closed = dc.closed_L if kind == "L" else dc.closed_beta
        cert = dc.certified_L if kind == "L" else dc.certified_beta
        cert_ref = ref.certified_L if kind == "L" else ref.certified_beta
        for t in range(dc.steps):
            assert low[t] <= up[t] <= float(hi(closed[t]))
            assert lo(cert[t]) <= hi(cert[t])
            # both engines bound the same sup: the certified intervals overlap
            assert lo(cert[t]) <= hi(cert_ref[t]) and lo(cert_ref[t]) <= hi(cert[t])
            assert up[t] == pytest.approx(up_ref[t], rel=0.05), (kind, t)


def test_runner_records_the_engine(tmp_path):
    """The case key [certify].engine and the CLI option --engine reach the certifier;
    the certificate names the engine."""
    import json

    import certify
    from certify.cli import main
    from certify.output.certificate import validate
    from tests.schema_util import assert_matches_schema
    from tests.test_runner import write_case

    p = write_case(tmp_path, ds="true")
    p.write_text(p.read_text().replace("box_budget = 200", 'box_budget = 200\nengine = "flint"'))
    cert = certify.run(certify.load_case(p)).data
    assert cert["constants"]["certified"]["engine"] == "python-flint"
    assert "python-flint" in cert["environment"]["interval_engine"]
    assert cert["verdict"] in ("pass", "unknown"), cert["reasons"]
    q = write_case(tmp_path, name="cli", ds="true")  # no engine key: the option decides
    out = tmp_path / "out"
    assert main(["run", str(q), "--out", str(out), "--quiet", "--no-report",
                 "--engine", "arb"]) in (0, 1)
    cert = json.loads((out / "cli.json").read_text())
    assert validate(cert) == []
    assert_matches_schema(cert)
    assert cert["constants"]["certified"]["engine"] == "python-flint"


def test_iv_norm_bounds_dispatch_balls(engines):
    """certify.trusted.engine.norm_bounds given ball enclosures uses the Arb version (it never
    reads a ball's midpoint as a number)."""
    _, fe = engines["tanh"]
    sts = fe.box([0.1, 0.2, -0.3], [0.15, 0.25, -0.2], [[0.3, 0.4], [0.5, -0.1]], None, None, 2)
    assert iv_norm_bounds(sts[1]) == fe.norm_bounds(sts[1])
