"""σ-constants of bounded C² activations whose tails the monotone argument cannot
settle (oscillating: sin; algebraic: a softsign-like sigmoid), the soundness of
the enclosures beyond ±Z, and one-line errors for activations that cannot be
certified (unbounded σ, σ′ or σ″; a 20,000-term expression).

Reference values are computed here independently of the certifier: sin's
constants are exactly 1; the softsign-like σ(z) = z/(1 + √(1+z²)) has
σ₀ = 1 (its limit: |σ| < 1 and σ → 1), and σ₁, σ₂ are located by dense sampling
of mpmath's numerical derivatives at 50 digits and refined with findroot.
"""

from __future__ import annotations

import json
import time

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import iv

from certify.cli import main
from certify.trusted.activation_constants import certify_activation, check_certifiable
from certify.trusted.intervals import hi, lo
from symbolic.activations import ActivationError
from tests.case_util import tiny_case_toml
from tests.mp_reference import sigma_mp

SOFTSIGN_LIKE = "z/(1+sqrt(1+z**2))"


def _softsign_sups():
    """σ₀, σ₁, σ₂ of z/(1 + √(1+z²)) at 50 digits, without the certifier."""
    with mpmath.workdps(50):
        def f(z):
            return z / (1 + mpmath.sqrt(1 + z * z))

        def d(n):
            return lambda z: mpmath.diff(f, z, n)

        out = [mpmath.mpf(1)]  # sup |σ| = lim σ = 1 (|σ| < 1 everywhere)
        grid = [mpmath.mpf(i) / 50 for i in range(-400, 401)]  # |σ^{(k)}| < 0.1 beyond
        for k in (1, 2):
            best = max(grid, key=lambda z: abs(d(k)(z)))
            out.append(abs(d(k)(mpmath.findroot(d(k + 1), best))))
        return out


def test_sin_constants_are_enclosures_of_one():
    ac = certify_activation("sin(z)")
    for k, s in enumerate((ac.sigma0, ac.sigma1, ac.sigma2)):
        assert lo(s) <= 1 <= hi(s), (k, s)
        assert hi(s) - lo(s) < 1e-12, (k, s)
    # oscillating tails: enclosed, not monotone
    assert not any(d.monotone_tails for d in ac.enclosure.decomps.values())


def test_softsign_like_constants_contain_50_digit_sups():
    ac = certify_activation(SOFTSIGN_LIKE)
    ref = _softsign_sups()
    assert abs(ref[1] - mpmath.mpf(1) / 2) < mpmath.mpf(10) ** -40  # σ′(0) = 1/2
    with mpmath.workdps(50):
        for k, s in enumerate((ac.sigma0, ac.sigma1, ac.sigma2)):
            assert lo(s) <= ref[k] <= hi(s), (k, s, ref[k])
            assert hi(s) - lo(s) < 1e-12, (k, s)


@pytest.mark.parametrize("expr", ["sin(z)/(1+z**2)", "cos(z)+tanh(z)"])
def test_other_oscillating_activations_certify(expr):
    """Sums and quotients of oscillating and decaying parts; the sups are checked
    against 50-digit values at a dense grid (lower bounds of the sups)."""
    ac = certify_activation(expr)
    with mpmath.workdps(50):
        for k, s in enumerate((ac.sigma0, ac.sigma1, ac.sigma2)):
            f = sigma_mp(expr, k)
            seen = max(abs(f(mpmath.mpf(i) / 64)) for i in range(-64 * 40, 64 * 40 + 1))
            assert seen <= hi(s), (expr, k, s, seen)
            assert hi(s) - seen < 1e-3, (expr, k, s, seen)
            assert is_finite_interval(s)


def is_finite_interval(s) -> bool:
    return mpmath.isfinite(lo(s)) and mpmath.isfinite(hi(s))


# ---- soundness of the enclosures beyond ±Z ---------------------------------

far = st.one_of(st.floats(-1e7, 1e7), st.sampled_from([-1e300, 1e300, -200.0, 200.0]))


def _points(a, b, fracs):
    """50-digit points of [a, b] (finite ones; for an infinite end a point 10^12 beyond the
    other end, which stays inside [a, b] even when that end is far out)."""
    fa = a if mpmath.isfinite(a) else (b - 10**12 if mpmath.isfinite(b) else -1e12)
    fb = b if mpmath.isfinite(b) else (a + 10**12 if mpmath.isfinite(a) else 1e12)
    A, B = mpmath.mpf(fa), mpmath.mpf(fb)
    return [A, B] + [min(max(A + (B - A) * mpmath.mpf(f), A), B) for f in fracs]


@settings(max_examples=60, deadline=None)
@given(expr=st.sampled_from(["sin(z)", SOFTSIGN_LIKE, "cos(z)+tanh(z)"]),
       k=st.integers(0, 2), a=far, b=far, inf_lo=st.booleans(), inf_hi=st.booleans(),
       fracs=st.lists(st.floats(0, 1), min_size=1, max_size=6))
def test_enclosure_contains_50_digit_values_on_the_tails(expr, k, a, b, inf_lo, inf_hi,
                                                         fracs):
    a, b = min(a, b), max(a, b)
    A = mpmath.mpf("-inf") if inf_lo else mpmath.mpf(a)
    B = mpmath.mpf("inf") if inf_hi else mpmath.mpf(b)
    Y = certify_activation(expr).enclosure(k, iv.mpf([A, B]))
    f = sigma_mp(expr, k)
    with mpmath.workdps(50):
        for z in _points(A, B, fracs):
            v = f(z)
            assert lo(Y) <= v <= hi(Y), (expr, k, A, B, z, Y, v)


def test_enclosure_beyond_Z_is_tight_for_narrow_intervals():
    """sin over [100, 103] (Z = 8): contains sin's maximum 1 (at 32.5π ≈ 102.1)
    and is no wider than the naive range, not the whole [−1, 1]."""
    enc = certify_activation("sin(z)").enclosure
    Y = enc(0, iv.mpf([100, 103]))
    assert lo(Y) <= mpmath.sin(100) and hi(Y) >= 1
    assert lo(Y) > -0.51
    Y = enc(0, iv.mpf([1000, 1000.5]))
    assert hi(Y) - lo(Y) < 0.6


@settings(max_examples=40, deadline=None)
@given(k=st.integers(0, 2), a=st.floats(-1e4, 1e4), w=st.floats(0, 50),
       fracs=st.lists(st.floats(0, 1), min_size=1, max_size=6))
def test_screen_table_is_sound_for_oscillating_tails(k, a, w, fracs):
    """The screening table (certify.trusted.screen) reads the decomposition as monotone
    between break points on [−Z, Z] and takes lim_± as the tails' values: with
    enclosed tails it must still contain every value."""
    from certify.trusted.screen import IA, activation_table

    t = activation_table("sin(z)")
    X = IA(np.array([a]), np.array([a + w]))
    Y = t.enclose(k, X)
    f = sigma_mp("sin(z)", k)
    with mpmath.workdps(50):
        for z in _points(mpmath.mpf(a), mpmath.mpf(a + w), fracs):
            v = f(z)
            assert Y.lo[0] <= v <= Y.hi[0], (k, a, w, z, Y.lo, Y.hi, v)


def test_flint_activation_is_sound_beyond_Z():
    pytest.importorskip("flint")
    from flint import arb

    from certify.trusted.engine_flint import ArbActivation

    A = ArbActivation(certify_activation("sin(z)").enclosure)
    Y = A(0, arb(100).union(arb(103)))
    assert Y.upper() >= 1  # sin(32.5π) = 1 with 32.5π ∈ [100, 103]


def test_decomposition_survives_the_disk_cache():
    from certify.trusted import activation_constants as m

    first = certify_activation("sin(z)")
    m.certify_activation.cache_clear()
    m.enclosure_for.cache_clear()
    again = certify_activation("sin(z)")
    assert again.enclosure.decomps == first.enclosure.decomps
    for x, y in zip((first.sigma0, first.sigma1, first.sigma2),
                    (again.sigma0, again.sigma1, again.sigma2), strict=True):
        assert (lo(x), hi(x)) == (lo(y), hi(y))


# ---- activations that cannot be certified ---------------------------------


@pytest.mark.parametrize("expr,constant,why", [
    ("z", "sigma0", "unbounded"),
    ("z**2", "sigma0", "unbounded"),
    ("exp(z)", "sigma0", "unbounded"),
    ("log(1+exp(z))", "sigma0", "unbounded"),   # softplus
    ("z*sin(z)", "sigma0", "not certified finite"),
    ("sin(z**2)", "sigma1", "not certified finite"),  # σ′ = 2z·cos(z²)
])
def test_uncertifiable_activation_names_the_constant(expr, constant, why):
    with pytest.raises(ActivationError) as info:
        certify_activation(expr)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) <= 400, msg
    assert f"activation {expr!r}: {constant} = sup over R of" in msg, msg
    assert why in msg, msg


def test_huge_expression_error_is_one_short_line():
    """A 20,000-term expression (389 KB) that sympy cannot parse: the message
    quotes 80 characters of it, not all of it, and comes in seconds."""
    expr = "+".join(f"tanh(z+{k})/20000" for k in range(20000))
    assert len(expr) > 100_000
    t0 = time.perf_counter()
    with pytest.raises(ActivationError) as info:
        certify_activation(expr)
    assert time.perf_counter() - t0 < 60
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 300, len(msg)
    assert f"({len(expr)} characters)" in msg


def test_long_unbounded_expression_error_is_short():
    """An expression that parses (4,005 characters) and is unbounded: the
    certifier's own message quotes it cut to 80 characters."""
    expr = "z*1." + "0" * 4000 + "1"
    with pytest.raises(ActivationError) as info:
        certify_activation(expr)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400, len(msg)
    assert "sigma0" in msg and "unbounded" in msg and "(4005 characters)" in msg


def test_foreign_message_is_prefixed_and_cut():
    """The code generator's "power …" message (it quotes the whole power) gets
    the activation's name and is cut to MESSAGE_LIMIT characters."""
    expr = "(1 + 0." + "0" * 4000 + "1*z**2)**(1/3)"
    with pytest.raises(ActivationError) as info:
        certify_activation(expr)
    msg = str(info.value)
    assert msg.startswith("activation '(1 + 0.000") and "\n" not in msg
    assert len(msg) <= 400


def test_check_certifiable_returns_the_activation():
    from symbolic import resolve

    act = resolve("sin(z)")
    assert check_certifiable(act) is act
    with pytest.raises(ActivationError, match="sigma0"):
        check_certifiable(resolve("z"))


# ---- end to end, command line ----------------------------------------------


def _tiny_case(path, activation: str, data_specific: bool) -> None:
    path.write_text(tiny_case_toml(activation=activation, width=4, n=3, dim=3, mc_draws=200,
                                   iterations=5, data_specific=data_specific,
                                   certify_extra="rel_tol = 0.5\nbox_budget = 4\n"))


@pytest.mark.parametrize("activation,data_specific", [("sin(z)", True),
                                                      (SOFTSIGN_LIKE, False)])
def test_run_succeeds_for_bounded_activations(tmp_path, capsys, activation, data_specific):
    case = tmp_path / "tiny.toml"
    _tiny_case(case, activation, data_specific)
    out = tmp_path / "out"
    rc = main(["run", str(case), "--out", str(out), "--quiet", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 0, err
    cert = json.loads((out / "tiny.json").read_text())
    assert cert["activation"]["expression"] == activation
    ref = [1, 1, 1] if activation == "sin(z)" else _softsign_sups()
    for k in range(3):
        a, b = cert["activation"][f"sigma{k}"]
        assert mpmath.mpf(a) <= ref[k] <= mpmath.mpf(b), (k, a, b, ref[k])


def test_constants_command_for_sin(capsys):
    assert main(["constants", "--activation", "sin(z)", "--alpha", "0.5", "--steps", "3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for k in range(3):
        a, b = out["activation"][f"sigma{k}"]
        assert mpmath.mpf(a) <= 1 <= mpmath.mpf(b)


def test_unbounded_activation_in_a_case_file_is_a_user_error(tmp_path, capsys):
    case = tmp_path / "tiny.toml"
    _tiny_case(case, "z", True)
    out = tmp_path / "out"
    assert main(["run", str(case), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{case}: [model].activation:" in err and "sigma0" in err and "unbounded" in err
    assert not out.exists()


def test_unbounded_activation_on_the_command_line_is_a_user_error(capsys):
    assert main(["constants", "--activation", "exp(z)", "--alpha", "1", "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--activation" in err and "sigma0" in err
