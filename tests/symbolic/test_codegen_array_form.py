"""The array-world rewrite of tanh (``symbolic.activations.array_form``) and the
shared-call code generation of σ, σ', σ'' (``d01_array``, ``d012_array``).

The rewrite is an identity proved with sympy (on each sign of the argument,
and with an explicit bound beyond the clamp); the generated functions are
checked against 40-digit references on a grid from subnormals to ±inf, with
every floating-point exception raised.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp

from symbolic import activation_functions
from symbolic.activations import (
    TANH_CLAMP,
    _derivative,
    array_form,
    copysign_function,
    sign_form,
    symbol,
    tanh_exp,
)
from symbolic.codegen import emit

U = 2.0 ** -53  # unit roundoff


# --------------------------------------------------------------------------
# the rewrite, symbolically


@pytest.mark.parametrize("assumption", ["positive", "negative"])
def test_tanh_exp_is_tanh_on_each_sign(assumption):
    a = sp.Symbol("a", **{assumption: True})
    assert sp.simplify((tanh_exp(a) - sp.tanh(a)).rewrite(sp.exp)) == 0


def test_tanh_exp_at_zero():
    assert tanh_exp(sp.Integer(0)) == 0 == sp.tanh(0)


def test_array_form_of_tanh_is_tanh_exp_with_a_clamped_modulus():
    a = sp.Symbol("a", real=True)
    for arg in (a, symbol(), 2 * symbol() + 1):
        clamped = sp.Min(sp.Abs(arg), TANH_CLAMP)
        assert sign_form(array_form(sp.tanh(arg))) == tanh_exp(arg, clamped)
        # with the clamp removed it is exactly tanh_exp, i.e. tanh
        assert sign_form(array_form(sp.tanh(arg))).subs(clamped, sp.Abs(arg)) == tanh_exp(arg)


def test_copysign_in_the_array_form_is_sign_times_its_magnitude():
    """array_form writes tanh as CopySign(R, a); that is sign(a)·R because R ≥ 0
    everywhere and R = 0 at a = 0 (IEEE copysign(R, ±0) = ±R)."""
    CopySign = copysign_function()
    a = sp.Symbol("a", real=True)
    (cs,) = array_form(sp.tanh(a)).atoms(CopySign)
    R, y = cs.args
    assert y == a
    # R = (1 − e)/(1 + e) with e = exp(−2 m), m = min(|a|, 40) ≥ 0: R = tanh(m) ≥ 0
    m = sp.Symbol("m", nonnegative=True)
    Rm = R.subs(sp.Min(sp.Abs(a), TANH_CLAMP), m)
    assert not Rm.has(a)
    assert sp.simplify((Rm - sp.tanh(m)).rewrite(sp.exp)) == 0
    assert sp.tanh(m).is_nonnegative
    assert R.subs(a, 0) == 0
    # the function itself: numbers evaluate to IEEE copysign (+0 counts as positive)
    assert CopySign(sp.Rational(-3, 2), 2) == sp.Rational(3, 2)
    assert CopySign(sp.Rational(3, 2), -2) == sp.Rational(-3, 2)
    assert CopySign(-5, 0) == 5
    x, yy = sp.symbols("x yy", real=True)
    pw = CopySign(x, yy).rewrite(sp.Piecewise)
    assert pw.subs({x: -2, yy: 3}) == 2 and pw.subs({x: 2, yy: -3}) == -2


def test_clamp_is_identity_inside_and_negligible_outside():
    C = TANH_CLAMP
    a = sp.Symbol("a", real=True)
    rewritten = array_form(sp.tanh(a))
    for v in (-C, sp.Rational(-7, 3), sp.Rational(-1, 10**10), 0, sp.Rational(1, 10**300), 5, C):
        assert sp.simplify(rewritten.subs(a, v) - sp.tanh(v).rewrite(sp.exp)) == 0, v
    for v in (C + 1, 10**6):
        assert sp.simplify(rewritten.subs(a, v) - sp.tanh(C).rewrite(sp.exp)) == 0
        assert sp.simplify(rewritten.subs(a, -v) + sp.tanh(C).rewrite(sp.exp)) == 0
    # tanh is increasing and odd, so beyond the clamp the rewrite is off by at
    # most 1 − tanh(C) = 2/(e^{2C} + 1): far below half an ulp of 1
    gap = 1 - sp.tanh(C)
    assert sp.simplify((gap - 2 / (sp.exp(2 * C) + 1)).rewrite(sp.exp)) == 0
    assert sp.N(gap, 30) < sp.Float("4e-35")
    assert sp.N(gap, 30) < U / 2 ** 50
    # and e^{−2C} is a normal double: no underflow (and e^{−2|a|} ≤ 1: no overflow)
    assert sp.N(sp.exp(-2 * C)) > 1e-300


@pytest.mark.parametrize("k", range(4))
def test_array_form_of_derivatives_is_exact_inside_the_clamp(k):
    z = symbol()
    dk = _derivative("tanh(z)", k)
    ak = array_form(dk)
    assert not ak.has(sp.tanh)
    for r in (-TANH_CLAMP, sp.Rational(-37, 2), sp.Rational(-7, 3), sp.Rational(-1, 10**10), 0,
              sp.Rational(1, 1000), sp.Rational(5, 2), 39):
        diff = (ak - dk).subs(z, r)
        assert abs(sp.N(diff, 80)) < sp.Float("1e-70", 80), (k, r, diff)


@pytest.mark.parametrize("source", ["1/(1 + exp(-z))", "exp(-z**2/2)", "sinh(z)/cosh(z)**2",
                                    "sin(z) + exp(-z**2)"])
def test_array_form_leaves_everything_but_tanh(source):
    for k in range(4):
        dk = _derivative(source, k)
        assert array_form(dk) == dk


def test_interval_world_is_not_rewritten():
    z = symbol()
    src = emit("f", ("z",), sp.tanh(z), "interval")
    assert "minimum" not in src and "sign" not in src and "ns.exp(2*z)" in src
    gen = Path(activation_functions("tanh").__file__).read_text()
    for k in range(4):
        body = gen.split(f"def d{k}_interval(z, ns):\n")[1].split("\n\n")[0]
        assert "minimum" not in body and "sign" not in body and "tanh" not in body


def test_generated_array_code_has_one_exp_and_no_tanh():
    gen = Path(activation_functions("tanh").__file__).read_text()
    for name in ("d0_array", "d1_array", "d2_array", "d3_array", "d01_array", "d012_array"):
        body = gen.split(f"def {name}(z, ns):\n")[1].split("\n\n")[0]
        assert body.count("ns.exp(") == 1 and "tanh" not in body, (name, body)
        assert "ns.exp(-2*ns.minimum(ns.abs(z), 40.0))" in body and ", z)" in body
        assert body.count("ns.copysign(") == 1 and "ns.sign(" not in body


# --------------------------------------------------------------------------
# the generated functions, numerically


class _Counting:
    """A namespace proxy counting elementwise calls."""

    def __init__(self, xp):
        self.xp, self.calls = xp, {}

    def __getattr__(self, name):
        f = getattr(self.xp, name)

        def counted(*a, **k):
            self.calls[name] = self.calls.get(name, 0) + 1
            return f(*a, **k)

        return counted


@pytest.mark.parametrize("act,fn,n_exp", [("tanh", "d01_array", 1), ("tanh", "d012_array", 1),
                                          ("logistic", "d01_array", 1),
                                          ("logistic", "d012_array", 1)])
def test_joint_functions_make_one_transcendental_call(act, fn, n_exp):
    ns = _Counting(np)
    out = getattr(activation_functions(act), fn)(np.linspace(-3, 3, 7), ns=ns)
    assert ns.calls.get("exp", 0) == n_exp and "tanh" not in ns.calls
    assert len(out) == (2 if fn == "d01_array" else 3)


@pytest.mark.parametrize("act", ["tanh", "logistic", "gaussian", "tanh(z) + sin(z)/3"])
def test_joint_functions_equal_the_single_ones(act):
    """σ, σ' bitwise; σ'' bitwise for polynomials in tanh, else to rounding."""
    gen = activation_functions(act)
    z = np.random.default_rng(3).standard_normal(1000) * 5
    d012 = gen.d012_array(z, ns=np)
    d01 = gen.d01_array(z, ns=np)
    for k in range(3):
        single = getattr(gen, f"d{k}_array")(z, ns=np)
        if k < 2 or act == "tanh":
            np.testing.assert_array_equal(d012[k], single)
        else:
            np.testing.assert_allclose(d012[k], single, rtol=0, atol=8 * U)
        if k < 2:
            np.testing.assert_array_equal(d01[k], single)


def _grid():
    tiny = np.nextafter(0.0, 1.0)
    big = np.finfo(np.float64).max
    special = [0.0, tiny, 1e-300, 1e-200, 1e-17, 1e-10, 1e-8, 1e-3, 0.1, 0.5, 0.54930614433405,
               1.0, 2.0, np.log(3) / 2, 5.0, 10.0, 18.0, 18.4, 18.715, 19.06, 20.0, 22.0, 25.0,
               39.999, 40.0, 40.001, 100.0, 354.0, 355.0, 400.0, 710.0, 1e5, 1e300, big, np.inf]
    rng = np.random.default_rng(20261123)
    vals = np.concatenate([np.array(special), -np.array(special),
                           np.linspace(-30, 30, 6001), rng.uniform(-25, 25, 4000),
                           rng.standard_normal(3000), rng.standard_normal(2000) * 1e-6,
                           np.nextafter(np.array([18.4, 19.06, 0.0]), np.inf)])
    return vals


def _reference(z):
    """tanh and its derivatives (as polynomials in t) to 40 digits, rounded to float."""
    out = np.empty((4, z.size))
    with mpmath.workdps(40):
        for i, v in enumerate(z):
            t = mpmath.tanh(mpmath.mpf(float(v)))
            s1 = 1 - t * t
            out[:, i] = [float(t), float(s1), float(-2 * t * s1),
                         float(-2 * s1 * (1 - 3 * t * t))]
    return out


@pytest.fixture(scope="module")
def grid_and_ref():
    z = _grid()
    return z, _reference(z)


def _eval_strict(f, z):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):  # no overflow, underflow, invalid, 0-division
            return f(z)


def test_generated_tanh_is_finite_and_accurate_on_a_wide_grid(grid_and_ref):
    z, ref = grid_and_ref
    gen = activation_functions("tanh")
    t, s1, s2 = _eval_strict(lambda z: gen.d012_array(z, ns=np), z)
    s3 = _eval_strict(lambda z: gen.d3_array(z, ns=np), z)
    for k, v in enumerate((t, s1, s2, s3)):
        assert np.all(np.isfinite(v)), k
    # σ: within 4e-16 of the true value and of NumPy's own tanh
    err = np.abs(t - ref[0])
    assert np.max(err) <= 4e-16, (np.max(err), z[np.argmax(err)])
    with np.errstate(all="ignore"):
        assert np.max(np.abs(t - np.tanh(z))) <= 4e-16
    assert np.all(np.abs(t) <= 1) and np.all(t[z > 0] >= 0) and np.all(t[z < 0] <= 0)
    assert np.all(t[z >= 1e-8] > 0) and np.all(t[z <= -1e-8] < 0)
    # odd, exactly
    np.testing.assert_array_equal(_eval_strict(lambda z: gen.d0_array(z, ns=np), -z), -t)
    # σ', σ'', σ''' are the derived polynomials 1 − t², −2t(1 − t²), … in this t:
    # each inherits t's error times the polynomial's slope on [−1, 1] (2, 4, 8),
    # plus a few roundings
    delta = float(np.max(err))
    for k, (v, slope) in enumerate(((s1, 2), (s2, 4), (s3, 8)), start=1):
        e = np.max(np.abs(v - ref[k]))
        assert e <= slope * delta + 8 * U, (k, e, delta)
    assert np.all(s1 >= 0) and np.all(s1 <= 1)
    # exact at 0, exactly saturated far out
    i0 = np.flatnonzero(z == 0)
    assert np.all(t[i0] == 0) and np.all(s1[i0] == 1) and np.all(s2[i0] == 0)
    far = np.abs(z) >= 40
    assert np.all(np.abs(t[far]) == 1) and np.all(s1[far] == 0) and np.all(s2[far] == 0)


def test_generated_tanh_absolute_error_matches_numpy_derivatives(grid_and_ref):
    """σ', σ'' within a few 1e-16 of the same polynomials evaluated at NumPy's tanh."""
    z, _ = grid_and_ref
    gen = activation_functions("tanh")
    t, s1, s2 = _eval_strict(lambda z: gen.d012_array(z, ns=np), z)
    with np.errstate(all="ignore"):
        T = np.tanh(z)
    assert np.max(np.abs(t - T)) <= 4e-16
    assert np.max(np.abs(s1 - (1 - T * T))) <= 8e-16
    assert np.max(np.abs(s2 - (-2 * T * (1 - T * T)))) <= 16e-16


@pytest.mark.parametrize("act", ["logistic", "gaussian"])
def test_other_builtins_still_accurate(act, grid_and_ref):
    z, _ = grid_and_ref
    z = z[np.abs(z) <= 30]
    gen = activation_functions(act)
    s0, s1, s2 = gen.d012_array(z, ns=np)
    with mpmath.workdps(40):
        zz = sp.Symbol("zz")
        exprs = [sp.lambdify(zz, _derivative(gen.SOURCE, k).subs(symbol(), zz), "mpmath")
                 for k in range(3)]
        for k, v in enumerate((s0, s1, s2)):
            ref = np.array([float(exprs[k](mpmath.mpf(float(x)))) for x in z])
            assert np.max(np.abs(v - ref)) <= 16 * U, (act, k)


def test_tanh_symmetry_and_monotonicity():
    gen = activation_functions("tanh")
    z = np.linspace(0, 25, 200001)
    t = gen.d0_array(z, ns=np)
    assert np.all(np.diff(t) >= 0)  # monotone
    np.testing.assert_allclose(gen.d0_array(-z, ns=np), -t, rtol=0, atol=4e-16)
    assert math.isclose(float(gen.d0_array(np.array(0.5), ns=np)), math.tanh(0.5), rel_tol=0,
                        abs_tol=4e-16)


def test_generated_tanh_under_array_api_strict():
    xps = pytest.importorskip("array_api_strict")
    gen = activation_functions("tanh")
    z = np.array([-np.inf, -400.0, -1.0, 0.0, 1e-10, 0.5, 20.0, 400.0, np.inf])
    out = gen.d012_array(xps.asarray(z), ns=xps)
    ref = gen.d012_array(z, ns=np)
    for a, b in zip(out, ref, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


# --------------------------------------------------------------------------
# σ' as a polynomial in σ (the tape keeps σ alone)


def test_derivative_in_sigma_is_derived_and_proved():
    from symbolic.activations import derivative_in_sigma

    s0 = sp.Symbol("s0", real=True)
    assert sp.expand(derivative_in_sigma("tanh(z)") - (1 - s0**2)) == 0
    assert sp.expand(derivative_in_sigma("1/(1 + exp(-z))") - (s0 - s0**2)) == 0
    # σ' = −z·σ needs z; no single generator; not a polynomial in σ
    for src in ("exp(-z**2/2)", "tanh(z) + sin(z)/3", "sinh(z)/cosh(z)**2"):
        assert derivative_in_sigma(src) is None, src
    # the defining identity, independently: σ'(z) = P(σ(z)) on R
    z = symbol()
    for src in ("tanh(z)", "1/(1 + exp(-z))"):
        P = derivative_in_sigma(src)
        diff = _derivative(src, 1) - P.subs(s0, _derivative(src, 0))
        assert sp.simplify(diff.rewrite(sp.exp)) == 0
        for v in (sp.Rational(-7, 3), 0, sp.Rational(1, 5), 12):
            assert abs(sp.N(diff.subs(z, v), 50)) < 1e-45


@pytest.mark.parametrize("act,flag", [("tanh", True), ("logistic", True), ("gaussian", False),
                                      ("tanh(z) + sin(z)/3", False)])
def test_d1_of_d0_in_the_generated_module(act, flag):
    gen = activation_functions(act)
    assert gen.D1_OF_D0 is flag
    if not flag:
        assert not hasattr(gen, "d1_of_d0_array")
        return
    z = np.random.default_rng(5).standard_normal(4000) * 6
    s0, s1 = gen.d01_array(z, ns=np)
    r = gen.d1_of_d0_array(s0, ns=np)
    if act == "tanh":  # the same polynomial 1 − x0² of the same x0: bit for bit
        np.testing.assert_array_equal(r, s1)
    else:
        np.testing.assert_allclose(r, s1, rtol=0, atol=4 * U)
    out = np.empty_like(z)
    gen.d1_of_d0_into(s0, out=(out,), tmp=[np.empty_like(z)] * gen.d1_of_d0_into.ntmp, ns=np)
    np.testing.assert_array_equal(out, r)


# --------------------------------------------------------------------------
# the in-place ("into") form


def _scratch(f, like):
    return [np.empty_like(like) for _ in range(f.ntmp)]


@pytest.mark.parametrize("act", ["tanh", "logistic", "gaussian", "tanh(z) + sin(z)/3",
                                 "sinh(z)/cosh(z)**2", "E*tanh(z)/3 + exp(-z**2/pi)",
                                 "z/sqrt(1 + z**2)"])
def test_into_functions_equal_the_array_functions(act):
    gen = activation_functions(act)
    z = np.concatenate([np.random.default_rng(6).standard_normal(3000) * 8, [0.0, -0.0, 1e-300]])
    for name, k in (("d0", 1), ("d1", 1), ("d01", 2)):
        ref = getattr(gen, f"{name}_array")(z, ns=np)
        ref = ref if isinstance(ref, tuple) else (ref,)
        f = getattr(gen, f"{name}_into")
        out = tuple(np.full_like(z, np.nan) for _ in range(k))
        assert f(z, out=out, tmp=_scratch(f, z), ns=np) is out
        for a, b in zip(out, ref, strict=True):
            if act == "tanh":  # same calls in the same order
                np.testing.assert_array_equal(a, b)
            else:
                np.testing.assert_allclose(a, b, rtol=8 * U, atol=8 * U)


def test_into_tanh_is_finite_accurate_and_warning_free(grid_and_ref):
    z, ref = grid_and_ref
    gen = activation_functions("tanh")
    out = (np.empty_like(z), np.empty_like(z))
    _eval_strict(lambda z: gen.d01_into(z, out=out, tmp=_scratch(gen.d01_into, z), ns=np), z)
    t, s1 = out
    assert np.all(np.isfinite(t)) and np.all(np.isfinite(s1))
    assert np.max(np.abs(t - ref[0])) <= 4e-16
    assert np.max(np.abs(s1 - ref[1])) <= 2 * 4e-16 + 8 * U
    np.testing.assert_array_equal(t, gen.d0_array(z, ns=np))
    np.testing.assert_array_equal(s1, gen.d1_array(z, ns=np))


def test_into_tanh_makes_one_pass_per_operation_and_allocates_nothing():
    gen = activation_functions("tanh")
    ns = _Counting(np)
    z = np.linspace(-3, 3, 7)
    out = (np.empty_like(z),)
    gen.d0_into(z, out=out, tmp=_scratch(gen.d0_into, z), ns=ns)
    # |z|, min, ×(−2), exp, 1 − e, 1 + e, ÷, copysign: 8 passes, one exp
    assert ns.calls == {"absolute": 1, "minimum": 1, "multiply": 1, "exp": 1, "subtract": 1,
                        "add": 1, "divide": 1, "copysign": 1}
    src = Path(gen.__file__).read_text().split("def d0_into(")[1].split("\n\n")[0]
    assert src.count("out=") == 8 and gen.d0_into.ntmp == 2


def test_into_compiler_on_assorted_expressions():
    """Negated sums, coefficients, quotients, powers, lattice ops, CopySign, leaves only."""
    from symbolic.codegen import emit, emit_into

    x, y, w = (sp.Symbol(n, real=True) for n in ("x", "y", "w"))
    CopySign = copysign_function()
    exprs = [
        -x - y, 1 - x, -x, 3 * x, -2 * x * y, x / y, 1 / (x * y), (x + 1) / (y**2 + 2),
        x**3 - 2 * y**4, x**-2, sp.sqrt(x**2 + 1), sp.Min(x, y, 2) + sp.Max(x, -1),
        CopySign(x**2 + 1, y), sp.exp(-x**2 / 2) * (1 - x) * w, -(x + y) * (x - y),
        2 - x * y - sp.exp(x) / (1 + sp.exp(x)), sp.Tuple(x * y, x * y + 1, y), x, sp.Integer(3),
        sp.pi * x / sp.sqrt(2) + sp.E, sp.sinh(x) * sp.cosh(y), sp.Abs(x) ** sp.Rational(3, 2),
        sp.atan(x) + y,  # no ufunc rule for atan: the evaluate-and-copy fallback
    ]
    rng = np.random.default_rng(9)
    vals = {"x": rng.uniform(0.5, 2, 200) * rng.choice([-1, 1], 200),
            "y": rng.uniform(0.5, 2, 200) * rng.choice([-1, 1], 200),
            "w": rng.uniform(-1, 1, (200,))}
    for k, e in enumerate(exprs):
        args = ("x", "y", "w")
        scope: dict = {}
        exec(emit(f"f{k}", args, e, "array", share=True), scope)
        exec(emit_into(f"g{k}", args, e), scope)
        ref = scope[f"f{k}"](*vals.values(), ns=np)
        ref = ref if isinstance(ref, tuple) else (ref,)
        g = scope[f"g{k}"]
        out = tuple(np.full(200, np.nan) for _ in ref)
        with np.errstate(all="raise"):
            g(*vals.values(), out=out, tmp=[np.full(200, np.nan) for _ in range(g.ntmp)], ns=np)
        for a, b in zip(out, ref, strict=True):
            b = np.broadcast_to(b, (200,))  # a few roundings of the largest term
            np.testing.assert_allclose(a, b, rtol=8 * U, atol=16 * U * np.max(np.abs(b)),
                                       err_msg=str(e))


def test_unclamped_into_tanh_gives_the_same_bits_and_only_underflows(grid_and_ref):
    """``d0_into_noclamp`` (e = exp(−2|z|), no min(·, 40)) equals the clamped form bit
    for bit on every input; its only floating-point events are underflow (|z| > 354)
    and overflow of −2|z| (|z| > 2¹⁰²³)."""
    from symbolic.activations import TANH_UNDERFLOW

    z, _ = grid_and_ref
    z = np.concatenate([z, [353.9, 354.0, 354.5, 372.0, 745.2, 1e10, -1e10, np.nan]])
    gen = activation_functions("tanh")
    for name, k in (("d0", 1), ("d01", 2)):
        f, g = getattr(gen, f"{name}_into"), getattr(gen, f"{name}_into_noclamp")
        assert g.ntmp <= f.ntmp
        a = tuple(np.empty_like(z) for _ in range(k))
        b = tuple(np.empty_like(z) for _ in range(k))
        with np.errstate(all="raise"):
            f(z, out=a, tmp=_scratch(f, z), ns=np)
        with np.errstate(all="raise", under="ignore", over="ignore"):
            g(z, out=b, tmp=_scratch(g, z), ns=np)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
        inside = np.abs(z) <= TANH_UNDERFLOW
        with np.errstate(all="raise"):  # no event at all inside the bound
            g(z[inside], out=tuple(v[inside] for v in b), tmp=_scratch(g, z[inside]), ns=np)
    src = Path(gen.__file__).read_text().split("def d0_into_noclamp(")[1].split("\n\n")[0]
    assert "minimum" not in src and src.count("out=") == 7
    # e⁻⁸⁰ (the clamp) and beyond: 1 ∓ e round to 1, so both forms give ±1 exactly
    assert math.exp(-2 * TANH_CLAMP) < 2.0 ** -54
    assert math.exp(-2 * TANH_UNDERFLOW) > np.finfo(np.float64).tiny


@pytest.mark.parametrize("act", ["logistic", "gaussian"])
def test_unclamped_forms_are_the_clamped_ones_without_tanh(act):
    src = Path(activation_functions(act).__file__).read_text()
    for name in ("d0_into", "d01_into"):
        body = src.split(f"def {name}(")[1].split("\n\n")[0]
        assert src.split(f"def {name}_noclamp(")[1].split("\n\n")[0] == body


# --------------------------------------------------------------------------
# the scaled form σ(z) = F(k·z) of NumPy's forward pass


@pytest.mark.parametrize("source,expect", [
    ("tanh(z)", (2, "1 - 2/(exp(y) + 1)")),
    ("1/(1 + exp(-z))", (-1, "1/(exp(y) + 1)")),
    ("tanh(z/2)", (1, "1 - 2/(exp(y) + 1)")),
    ("exp(-z**2/2)", None),  # not one exp of a multiple of z
    ("tanh(3*z)", None),  # k = 6: k·w would not be exact
    ("tanh(z/4)", None),  # k = 1/2: k·w may lose bits of a subnormal
    ("z/(1 + exp(-z))", (-1, "-y/(exp(y) + 1)")),  # swish: z outside the exp is fine
    ("tanh(z) + tanh(2*z)", None),  # two exp atoms
])
def test_scaled_form_is_derived_and_proved(source, expect):
    from symbolic.activations import scaled_form

    got = scaled_form(source)
    if expect is None:
        assert got is None
        return
    k, F = got
    y = sp.Symbol("y", real=True)
    assert k == expect[0] and sp.simplify(F - sp.sympify(expect[1], locals={"y": y})) == 0
    z = symbol()
    # the identity, checked again by an independent route: numbers at 50 digits
    f = sp.lambdify(z, sp.sympify(source, locals={"z": z}), "mpmath")
    g = sp.lambdify(y, F, "mpmath")
    with mpmath.workdps(50):
        for v in ("-7.3", "-0.01", "0", "0.5", "3.25", "19"):
            a = mpmath.mpf(v)
            assert abs(f(a) - g(k * a)) < mpmath.mpf(10) ** -45


def test_z_template_is_linear_in_w_and_s():
    """What lets NumPy's forward pass form y = k·z from k·w and k·s."""
    from symbolic.cell import derive

    t = derive()["z"]
    k = sp.Symbol("k", real=True)
    syms = {str(s): s for s in t.expr.free_symbols}
    w, s = syms["w"], syms["s"]
    scaled = t.expr.subs({w: k * w, s: k * s}, simultaneous=True)
    assert sp.expand(scaled - k * t.expr) == 0


@pytest.mark.parametrize("act", ["tanh", "logistic"])
def test_scaled_into_is_accurate_finite_and_one_exp(act):
    gen = activation_functions(act)
    assert gen.Z_SCALE in (2.0, -1.0)
    src = Path(gen.__file__).read_text().split("def d0_into_scaled(")[1].split("\n\n")[0]
    assert src.count("ns.exp(") == 1 and src.count("ns.") == 4 - (act == "logistic")
    rng = np.random.default_rng(5)
    z = np.concatenate([np.linspace(-40, 40, 4001), rng.standard_normal(3000) * 1e-6,
                        [0.0, 5e-324, -5e-324, 1e-300, 400.0, -400.0, 1e300, -1e300,
                         np.inf, -np.inf]])
    y = z * gen.Z_SCALE
    out, tmp = np.empty_like(z), [np.empty_like(z) for _ in range(gen.d0_into_scaled.ntmp)]
    with np.errstate(over="ignore"):  # exp(y) → inf for y > 709: F is at its limit
        gen.d0_into_scaled(y, out=(out,), tmp=tmp, ns=np)
    assert np.all(np.isfinite(out))
    f = (lambda a: mpmath.tanh(a)) if act == "tanh" else (lambda a: 1 / (1 + mpmath.exp(-a)))
    with mpmath.workdps(40):
        ref = np.array([float(f(mpmath.mpf(float(v)))) if np.isfinite(v)
                        else float(np.sign(v)) if act == "tanh" else float(v > 0) for v in z])
    err = np.abs(out - ref)
    assert np.max(err) <= 4 * U, (np.max(err), z[np.argmax(err)])


def test_numpy_forward_uses_the_scaled_form_and_keeps_its_accuracy():
    """tanh: σ from F(2z) on NumPy's path, within a few roundings of the array-API path
    (the clamped form), for the outputs and the exact gradient alike."""
    from certify import rnn

    rng = np.random.default_rng(6)
    m, n, T, d = 40, 24, 9, 3
    w, Uw = rng.uniform(-1, 1, m), rng.standard_normal((m, d)) * 3
    c = rng.choice([-1.0, 1.0], m)
    X, Y = rng.standard_normal((n, T, d)) / 2, rng.standard_normal((n, T))
    ctx = rnn._Ctx(np, rnn._activation("tanh"), X)
    assert ctx.z_scale == 2.0
    xps = pytest.importorskip("array_api_strict")
    args = [xps.asarray(a) for a in (w, Uw, c, X, Y)]
    f = rnn.forward(w, Uw, c, X)
    f0 = rnn.to_numpy(rnn.forward(*args[:4]))
    assert np.max(np.abs(f - f0)) <= 4 * U * m / math.sqrt(m)
    R, gw, gU = rnn.loss_and_grad(w, Uw, c, X, Y)
    R0, gw0, gU0 = rnn.loss_and_grad(*args)
    assert R == pytest.approx(R0, rel=1e-13)
    assert np.max(np.abs(gw - rnn.to_numpy(gw0))) <= 1e-13 * np.max(np.abs(gw))
    # huge weights: no scaling (k·u would overflow), the unscaled form instead
    assert not rnn._scalable(2.0, w, Uw * 2.0**1000)
