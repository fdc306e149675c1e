"""Bound recurrences L_t, β_t (THEORY §5): derivation, closed forms, regimes."""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy as sp

from symbolic import bounds


def test_recurrences_equal_theory_section_5():
    s0, s1, s2, a, K, t = bounds._syms()
    L_next, b_next, Lp, Bp = bounds.recurrences()
    assert sp.expand(L_next - s1 * (K + a * Lp)) == 0
    Lt = s1 * (K + a * Lp)
    assert sp.expand(b_next - (s2 * (Lt / s1) ** 2 + s1 * (2 * Lp + a * Bp))) == 0


def test_closed_forms_are_proved():
    facts = bounds.prove()
    assert len(facts) == 8 and all(facts.values())


def test_majorize_refuses_unknown_atoms():
    x, y = sp.symbols("x y")
    with pytest.raises(KeyError):
        bounds.majorize(x + y, {x: 1})
    assert bounds.majorize(-3 * x * y**2, {x: 2, y: 5}) == 150


def _recurrence_exact(s1, s2, a, K, T):
    L, B = [Fraction(0)], [Fraction(0)]
    for _ in range(T):
        Ln = s1 * (K + a * L[-1])
        B.append(s2 * (K + a * L[-1]) ** 2 + s1 * (2 * L[-1] + a * B[-1]))
        L.append(Ln)
    return L[1:], B[1:]


@pytest.mark.parametrize("regime,a", [("short", Fraction(1, 2)), ("cutoff", Fraction(1)),
                                      ("long", Fraction(3, 2))])
def test_closed_form_equals_recurrence_numerically(regime, a):
    """Exact rational arithmetic: closed form(t) == recurrence(t), t < 40, incl. a = 1/σ₁."""
    s0, s1, s2, asym, K, t = bounds._syms()
    cf = bounds.closed_forms()
    S1, S2, KK = Fraction(1), Fraction(3, 7), Fraction(5, 3)  # K rational to stay exact
    Lc, Bc = cf["cutoff"] if a * S1 == 1 else cf["generic"]
    L, B = _recurrence_exact(S1, S2, a, KK, 40)
    subs = {s1: sp.Rational(S1.numerator, S1.denominator), s2: sp.Rational(3, 7),
            K: sp.Rational(5, 3), asym: sp.Rational(a.numerator, a.denominator)}
    for tt in range(40):
        lv = Lc.subs(subs).subs(t, tt)
        bv = Bc.subs(subs).subs(t, tt)
        assert sp.simplify(lv - sp.Rational(L[tt].numerator, L[tt].denominator)) == 0, (
            regime, tt)
        assert sp.simplify(bv - sp.Rational(B[tt].numerator, B[tt].denominator)) == 0, (
            regime, tt)


def test_three_regimes():
    s0, s1, s2, a, K, t = bounds._syms()
    r = bounds.regimes()
    assert sp.simplify(r["short_L_limit"] - 2 * K * s1) == 0  # σ₁K/(1−q), q = 1/2
    assert r["short_beta_limit"].is_finite
    assert sp.expand(r["cutoff_L"] - K * s1 * (t + 1)) == 0  # linear at the cutoff
    assert r["cutoff_beta_degree"] == 3  # cubic at the cutoff
    assert r["long_L_rate"].is_positive and r["long_L_rate"].is_finite  # ~ q^t
    assert r["long_beta_rate"].is_positive and r["long_beta_rate"].is_finite  # ~ q^{2t}


def test_old_path_of_numeric_recurrence_warns_and_works():
    import pytest

    from symbolic.recurrence import numeric_recurrence

    with pytest.warns(DeprecationWarning, match="symbolic.recurrence"):
        old = bounds.numeric_recurrence
    assert old is numeric_recurrence
    assert old(1.0, 1.0, 0.5, 0.5, 3, None) == numeric_recurrence(1.0, 1.0, 0.5, 0.5, 3, None)
