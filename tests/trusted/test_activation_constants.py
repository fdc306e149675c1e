"""Certified σ₀, σ₁, σ₂ and the tight interval extensions of σ, σ', σ''.

Containment of exact values, width < 1e-12, soundness of every interval
function against 50-digit point values at random points (hypothesis), and
agreement of the tight and naive extensions (the tight one is inside the naive
one whenever the naive one is finite).
"""

from __future__ import annotations

import mpmath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import iv

from certify.trusted.activation_constants import certify_activation
from certify.trusted.intervals import hi, interval, lo
from tests.mp_reference import sigma_mp

EXACT = {
    "tanh": (1, 1, lambda: 4 / (3 * mpmath.sqrt(3))),
    "logistic": (1, mpmath.mpf(1) / 4, lambda: 1 / (6 * mpmath.sqrt(3))),
    "gaussian": (1, lambda: mpmath.exp(mpmath.mpf(-1) / 2), 1),
}


def _val(v):
    return v() if callable(v) else mpmath.mpf(v)


@pytest.mark.parametrize("name", list(EXACT))
def test_sigma_constants_contain_exact_values_and_are_narrow(name):
    ac = certify_activation(name)
    with mpmath.workdps(50):
        for k, enc in enumerate((ac.sigma0, ac.sigma1, ac.sigma2)):
            exact = _val(EXACT[name][k])
            assert lo(enc) <= exact <= hi(enc), (name, k, enc, exact)
            assert hi(enc) - lo(enc) < mpmath.mpf("1e-12"), (name, k, enc)


def test_user_expression_softsign_like():
    """σ = z/√(1+z²): σ₀ = 1 (a limit), σ₁ = 1 (at 0), σ₂ = 48/(25√5) (at z = 1/2)."""
    ac = certify_activation("z/sqrt(1 + z**2)")
    with mpmath.workdps(50):
        exact = (mpmath.mpf(1), mpmath.mpf(1), 48 / (25 * mpmath.sqrt(5)))
        for k, enc in enumerate((ac.sigma0, ac.sigma1, ac.sigma2)):
            assert lo(enc) <= exact[k] <= hi(enc), (k, enc, exact[k])
            assert hi(enc) - lo(enc) < mpmath.mpf("1e-12")


endpoint = st.floats(-40, 40, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(list(EXACT)), k=st.integers(0, 2), a=endpoint, b=endpoint,
       fracs=st.lists(st.floats(0, 1), min_size=1, max_size=5))
def test_tight_enclosure_contains_50_digit_point_values(name, k, a, b, fracs):
    a, b = min(a, b), max(a, b)
    enc = certify_activation(name).enclosure
    X = interval(a, b)
    Y = enc(k, X)
    naive = enc.naive(k, X)
    f = sigma_mp(name, k)
    with mpmath.workdps(50):
        for fr in [0.0, 1.0, *fracs]:
            # a point of [a, b]: at 50 digits b − a may round (a = −1, b = −5e-190
            # gave z = 0, outside), so clamp; the endpoints themselves exactly
            z = mpmath.mpf(a) + (mpmath.mpf(b) - mpmath.mpf(a)) * mpmath.mpf(fr)
            z = mpmath.mpf(a) if fr == 0 else mpmath.mpf(b) if fr == 1 else \
                min(max(z, mpmath.mpf(a)), mpmath.mpf(b))
            v = f(z)
            assert lo(Y) <= v <= hi(Y), (name, k, a, b, fr, Y, v)
            if mpmath.isfinite(lo(naive)) and mpmath.isfinite(hi(naive)):
                assert lo(naive) <= v <= hi(naive), (name, k, a, b, fr, naive, v)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(list(EXACT)), k=st.integers(0, 3), a=endpoint, w=st.floats(0, 1e-3))
def test_generated_interval_code_is_sound_on_narrow_inputs(name, k, a, w):
    from certify.trusted.intervals import NS
    from symbolic import activation_functions

    gen = activation_functions(name)
    X = interval(a, a + w)
    Y = getattr(gen, f"d{k}_interval")(X, ns=NS)
    f = sigma_mp(name, k)
    with mpmath.workdps(50):
        for fr in (0, 0.5, 1):
            v = f(min(max(lo(X) + (hi(X) - lo(X)) * fr, lo(X)), hi(X)))  # a point of X
            assert lo(Y) <= v <= hi(Y), (name, k, a, w, fr, Y, v)


def test_tight_enclosure_is_much_tighter_than_naive():
    enc = certify_activation("tanh").enclosure
    X = iv.mpf([-3, 3])
    tight, naive = enc(2, X), enc.naive(2, X)
    assert hi(tight) - lo(tight) < 0.5 * (hi(naive) - lo(naive))


def test_tail_enclosure_uses_limits():
    enc = certify_activation("logistic").enclosure
    Y = enc(0, iv.mpf([0, "+inf"]))
    assert lo(Y) <= 0.5 and hi(Y) >= 1 and hi(Y) - 1 < 1e-15


@pytest.mark.parametrize("expr,msg", [
    ("z**2", "no finite limit"),
    ("exp(z)", "no finite limit"),
    ("log(z)", "not twice continuously differentiable"),
    ("sqrt(z)", "not twice continuously differentiable"),
    ("sin(z**2)", "sigma1 = sup over R of .* is not certified finite"),  # σ′ = 2z·cos(z²)
    ("import os", "unknown name"),
    ("z.real", "unexpected character"),
    ("foo(z)", "unknown name"),
    ("tanh(z", "does not parse"),
    ("3", "does not depend on z"),
])
def test_bad_activation_expressions_are_rejected(expr, msg):
    from symbolic.activations import ActivationError

    with pytest.raises(ActivationError, match=msg):
        certify_activation(expr)
