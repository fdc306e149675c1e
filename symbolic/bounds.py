"""Bound recurrences L_t, β_t (THEORY §5), their closed forms and proofs.

The recurrences are obtained mechanically from the derived structure of
:func:`symbolic.cell.structure`:

    g_t = σ'(z) v_t,            v_t = e_t + w g_{t-1}
    H_t = σ''(z) v_t v_tᵀ + σ'(z) (S_t + w H_{t-1}),  S_t = e_w g_{t-1}ᵀ + g_{t-1} e_wᵀ

by :func:`majorize`, which applies the triangle inequality to sums and
sub-multiplicativity to products, replacing each atom by its bound on Ω_ρ:

    |σ'| ≤ σ₁, |σ''| ≤ σ₂, |w| ≤ a = α_m, ‖e_t‖ = ‖(h_{t-1}, x_t)‖ ≤ K = √(1+σ₀²),
    ‖g_{t-1}‖ ≤ L_{t-1}, ‖H_{t-1}‖ ≤ β_{t-1}, ‖v vᵀ‖₂ = ‖v‖², ‖S_t‖₂ ≤ 2‖g_{t-1}‖.

(‖S_t‖₂ = |g_w| + ‖g‖ ≤ 2‖g‖: S_t has rank two with eigenvalues g_w ± ‖g‖.)

Closed forms come from ``sympy.rsolve`` for q = σ₁a ≠ 1 and at the cutoff
q = 1, and :func:`prove` checks symbolically that each satisfies its
recurrence and initial value.  The three regimes (bounded / polynomial /
exponential in t) are established with sympy limits in :func:`regimes`.
"""

from __future__ import annotations

from functools import lru_cache


def _syms():
    import sympy as sp

    s0, s1, s2, a, K = sp.symbols("sigma0 sigma1 sigma2 a K", positive=True)
    t = sp.Symbol("t", integer=True, nonnegative=True)
    return s0, s1, s2, a, K, t


def majorize(expr, bounds: dict):
    """An upper bound of |expr| built by the triangle inequality.

    ``bounds`` maps atoms (symbols) to nonnegative bounds of their norms.
    Sums → sums of majorants; products → products; positive integer powers →
    powers; numbers → absolute values.  An atom without a bound is an error
    (never a silently weaker result).
    """
    import sympy as sp

    if expr.is_Number:
        return abs(expr)
    if expr.is_Symbol:
        if expr not in bounds:
            raise KeyError(f"no bound given for atom {expr}")
        return bounds[expr]
    if expr.is_Add:
        return sp.Add(*[majorize(a, bounds) for a in expr.args])
    if expr.is_Mul:
        return sp.Mul(*[majorize(a, bounds) for a in expr.args])
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 0:
        return majorize(expr.base, bounds) ** expr.exp
    raise TypeError(f"cannot majorize {expr!r}")


@lru_cache(maxsize=1)
def recurrences():
    """Return (L_t, β_t) as sympy expressions in L_{t-1}, β_{t-1}.

    Built from the derived cell structure; equals THEORY §5 (tested).
    """
    import sympy as sp

    from .cell import structure

    st = structure()
    s0, s1, s2, a, K, t = _syms()
    Lp, Bp = sp.symbols("L_prev beta_prev", nonnegative=True)
    # vector atoms of the structure: norms of e_t = (h_{t-1}, x_t), g_{t-1}, H_{t-1}, S_t
    E, G, Hn, Sn = sp.symbols("E G Hn Sn", nonnegative=True)
    s1_, s2_, w_ = sp.symbols("s1 s2 w", real=True)
    gw, gu, hprev, x = sp.symbols("gw gu hprev x", real=True)
    # v = e + w g: read off the derived v_w, v_u (both coordinates share the form)
    v_coeffs = []
    for vx, e_atom, g_atom in ((st["v_w"], hprev, gw), (st["v_u"], x, gu)):
        coeff_e = sp.expand(vx).coeff(e_atom)
        coeff_g = sp.expand(vx).coeff(g_atom)
        if sp.expand(vx - coeff_e * e_atom - coeff_g * g_atom) != 0:
            raise AssertionError("v is not linear in (e, g)")
        v_coeffs.append((coeff_e, coeff_g))
    if v_coeffs[0] != v_coeffs[1]:
        raise AssertionError("v_w and v_u have different structure")
    ce, cg = v_coeffs[0]
    v_norm_expr = ce * E + cg * G  # ‖v‖ ≤ |ce|‖e‖ + |cg|‖g‖ (ce = 1, cg = w)
    # S = e_w gᵀ + g e_wᵀ: derived blocks (2 g_w, g_u, 0) ⇒ ‖S‖₂ ≤ 2‖g‖
    if (st["S_ww"], st["S_wu"], st["S_uu"]) != (2 * gw, gu, 0):
        raise AssertionError("unexpected Hessian residual structure")
    bounds = {s1_: s1, s2_: s2, w_: a, E: K, G: Lp, Hn: Bp, Sn: 2 * Lp}
    V = sp.Symbol("V", nonnegative=True)
    v_bound = majorize(v_norm_expr, bounds)
    L_next = majorize(s1_ * V, {**bounds, V: v_bound})
    beta_next = majorize(s2_ * V**2 + s1_ * (Sn + w_ * Hn), {**bounds, V: v_bound})
    return sp.expand(L_next), sp.expand(beta_next), Lp, Bp


@lru_cache(maxsize=1)
def closed_forms():
    """Closed forms of L_t and β_t with L_{-1} = β_{-1} = 0.

    Returns ``{"generic": (L, beta), "cutoff": (L, beta)}`` as functions of t;
    "generic" holds for q = σ₁a ≠ 1 (both q < 1 and q > 1), "cutoff" at a = 1/σ₁.
    """
    import sympy as sp

    s0, s1, s2, a, K, t = _syms()
    L_next, b_next, Lp, Bp = recurrences()
    q = sp.Symbol("q", positive=True)
    out = {}
    # work in q = σ₁a (a = q/σ₁); the cutoff is q = 1
    for regime, subs in (("generic", {a: q / s1}), ("cutoff", {a: 1 / s1})):
        Ln = L_next.subs(subs)
        Lsol = _solve_first_order(Ln, Lp, t)
        bn = b_next.subs(subs).subs(Lp, Lsol.subs(t, t - 1))
        Bsol = _solve_first_order(bn, Bp, t)
        if regime == "generic":  # back to a
            Lsol, Bsol = Lsol.subs(q, a * s1), Bsol.subs(q, a * s1)
        out[regime] = (Lsol, Bsol)
    return out


def _solve_first_order(step, prev, t):
    """Solve x_t = step(x_{t-1}, t), x_{-1} = 0, for step affine in x_{t-1}.

    Variation of constants: with step = q·x_{t-1} + F(t),
    x_t = Σ_{k=0}^{t} q^{t-k} F(k), summed by ``sympy.summation`` (geometric
    and polynomial-geometric sums).  For q ≠ 1 sympy returns a Piecewise;
    the branch for q ≠ 1 is taken (the q = 1 case is solved separately with
    q substituted, so no branch is lost).  :func:`prove` re-checks the result.
    """
    import sympy as sp

    step = sp.expand(step)
    q = step.coeff(prev)
    F = sp.expand(step - q * prev)
    if prev in F.free_symbols:
        raise AssertionError("recurrence is not affine in its previous value")
    k = sp.Symbol("k", integer=True, nonnegative=True)
    total = sp.summation(q ** (t - k) * F.subs(t, k), (k, 0, t))
    total = _generic_branch(total)
    return sp.factor(sp.simplify(total))


def _generic_branch(expr):
    """Replace every Piecewise by its default (condition-True) branch."""
    import sympy as sp

    def pick(pw):
        for e, c in pw.args:
            if c == sp.true:
                return _generic_branch(e)
        raise AssertionError(f"Piecewise without default branch: {pw}")

    return expr.replace(lambda e: isinstance(e, sp.Piecewise), pick)


def prove() -> dict[str, bool]:
    """Symbolic proof that each closed form satisfies its recurrence.

    For every regime: closed(t) − step(closed(t−1)) simplifies to 0 for
    symbolic t, and closed(−1) = 0.  Returns a dict of named facts (all True)
    or raises AssertionError naming the failed one.
    """
    import sympy as sp

    s0, s1, s2, a, K, t = _syms()
    L_next, b_next, Lp, Bp = recurrences()
    facts = {}
    for regime, (L, B) in closed_forms().items():
        subs = {a: 1 / s1} if regime == "cutoff" else {}
        rL = sp.simplify(L - L_next.subs(subs).subs(Lp, L.subs(t, t - 1)))
        rB = sp.simplify(B - b_next.subs(subs).subs({Lp: L.subs(t, t - 1), Bp: B.subs(t, t - 1)}))
        facts[f"{regime}: L satisfies recurrence"] = rL == 0
        facts[f"{regime}: beta satisfies recurrence"] = rB == 0
        facts[f"{regime}: L(-1) = 0"] = sp.simplify(L.subs(t, -1)) == 0
        facts[f"{regime}: beta(-1) = 0"] = sp.simplify(B.subs(t, -1)) == 0
    bad = [k for k, v in facts.items() if not v]
    if bad:
        raise AssertionError(f"closed form proof failed: {bad}")
    return facts


def regimes() -> dict[str, object]:
    """Asymptotics of the closed forms in the three regimes (sympy limits).

    * q < 1: L_t → σ₁K/(1−q), β_t bounded;
    * q = 1: L_t = σ₁K(t+1) (linear), β_t a cubic polynomial in t;
    * q > 1: L_t/q^t and β_t/q^{2t} tend to positive finite constants.
    """
    import sympy as sp

    s0, s1, s2, a, K, t = _syms()
    cf = closed_forms()
    L, B = cf["generic"]
    Lc, Bc = cf["cutoff"]
    q = sp.Symbol("q", positive=True)
    Lq, Bq = L.subs(a, q / s1), B.subs(a, q / s1)
    short = {q: sp.Rational(1, 2)}
    long_ = {q: 2}
    out = {
        "short_L_limit": sp.limit(Lq.subs(short), t, sp.oo),
        "short_beta_limit": sp.limit(Bq.subs(short), t, sp.oo),
        "cutoff_L": sp.expand(Lc),
        "cutoff_beta_degree": sp.degree(sp.expand(Bc), t),
        "long_L_rate": sp.limit(Lq.subs(long_) / 2**t, t, sp.oo),
        "long_beta_rate": sp.limit(Bq.subs(long_) / 4**t, t, sp.oo),
    }
    return out


def __getattr__(name):
    """``symbolic.bounds.numeric_recurrence`` moved to :mod:`symbolic.recurrence` (it
    evaluates the generated code, so it sits after :mod:`symbolic.codegen`; this
    module, the derivation, imports nothing that generates code)."""
    if name == "numeric_recurrence":
        import importlib
        import warnings

        warnings.warn("symbolic.bounds.numeric_recurrence moved to "
                      "symbolic.recurrence.numeric_recurrence", DeprecationWarning, stacklevel=2)
        return importlib.import_module("symbolic.recurrence").numeric_recurrence
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
