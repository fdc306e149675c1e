"""Derivation of one neuron's cell and its sensitivity recurrences (THEORY §4).

The cell is written once, in sympy:

    z_t = w · h_{t-1} + ⟨u, x_t⟩,      h_t = σ(z_t)

with the previous state ``h_{t-1}`` an *unknown function* of θ = (w, u).  Every
recurrence below is obtained from it by ``sympy.diff`` (chain rule through
that unknown function), never typed in:

* ``g``      — one step of g_t = ∇_θ h_t, per coordinate class (w, u_k);
* ``H``      — one step of H_t = ∇²_θ h_t, per block (ww, wu_k, u_k u_l);
* ``jvp``    — one step of the directional derivative ⟨g_t, v⟩;
* ``vjp``    — the local partials of h_t with respect to h_{t-1}, w and
  s = ⟨u, x_t⟩ (``dh_*``), and those of the pre-activation z_t (``dz_*``);
* ``adj_z``  — one backward step of reverse mode through the pre-activation:
  the adjoint p_t = ∂L/∂z_t of a loss L that sees h_t directly (cotangent
  ``cot``) and through z_{t+1} (adjoint ``pnext``), i.e. the derivative in
  z_t of ``cot·σ(z_t) + pnext·z_{t+1}(h_{t-1} = σ(z_t))`` (linear in the
  adjoints, so exact).  Reverse mode then accumulates
  ``∂L/∂w = Σ_t p_t·dz_dw``, ``∂L/∂u = Σ_t p_t·dz_ds·x_t``.

Because W is diagonal a neuron only sees its own past, so the derivation is
done for a generic neuron in dimension d = 2 (enough to see the (u_k, u_l)
off-diagonal block) and the resulting *templates* hold for every coordinate of
every d: the u-blocks are the same expression with the index renamed, which
:func:`derive` checks symbolically for the diagonal block.

σ is an abstract function here: its derivatives appear as the symbols
``s1 = σ'(z_t)`` and ``s2 = σ''(z_t)``; the activation-specific σ, σ', σ''
come from :mod:`symbolic.activations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Template:
    """One derived update: ``expr`` in the symbols named by ``args``."""

    name: str
    args: tuple[str, ...]
    expr: object  # sympy.Expr


@lru_cache(maxsize=1)
def derive() -> dict[str, Template]:
    """Derive every per-neuron update template.  Cached; about 0.3 s."""
    c = _Cell.build()
    out = _Derived(c.S)
    _sensitivity_templates(c, out)
    _jvp_template(c, out)
    _reverse_templates(c, out)
    return dict(out)


def _sigmas():
    """σ, σ', σ'' as abstract sympy functions (d/dz σ = σ', d/dz σ' = σ'')."""
    import sympy as sp

    class sigma2(sp.Function):  # σ'' (its own derivative never appears in H)
        nargs = 1

    class sigma1(sp.Function):  # σ'
        nargs = 1

        def fdiff(self, argindex=1):
            return sigma2(self.args[0])

    class sigma(sp.Function):  # σ, abstract
        nargs = 1

        def fdiff(self, argindex=1):
            return sigma1(self.args[0])

    return sigma, sigma1, sigma2


#: names of the symbols the templates are written in
_NAMES = ("s0", "s1", "s2", "hprev", "x", "xa", "xb", "gw", "gu", "gua", "gub", "Hww", "Hwu",
          "Huu", "w", "vw", "vu", "jprev", "s", "lam", "vx", "cot", "pnext")


@dataclass(frozen=True)
class _Cell:
    """The cell in sympy (THEORY §1) for a neuron with d = 2, and the template symbols ``S``."""

    sigma: type
    sigma1: type
    sigma2: type
    w: object
    u1: object
    u2: object
    x1: object
    x2: object
    hp: object  # h_{t-1}(θ), unknown
    z: object  # the pre-activation
    S: dict

    @staticmethod
    def build() -> _Cell:
        import sympy as sp

        sigma, sigma1, sigma2 = _sigmas()
        w, u1, u2, x1, x2 = sp.symbols("w u1 u2 x1 x2", real=True)
        hp = sp.Function("hprev")(w, u1, u2)  # h_{t-1}(θ), unknown
        z = w * hp + u1 * x1 + u2 * x2  # the cell's pre-activation (THEORY §1)
        S = {n: sp.Symbol(n, real=True) for n in _NAMES}
        return _Cell(sigma, sigma1, sigma2, w, u1, u2, x1, x2, hp, z, S)


class _Derived(dict):
    """The templates by name, in the order derived."""

    def __init__(self, S: dict):
        super().__init__()
        self.S = S

    def add(self, name, args, expr, expand=True):
        import sympy as sp

        if expand:
            expr = sp.expand(expr)
        leftover = expr.free_symbols - {self.S[a] for a in args}
        if leftover:  # a template may only use the symbols it declares
            raise AssertionError(f"template {name}: unexpected symbols {leftover}")
        self[name] = Template(name, tuple(args), expr)


def _derivatives(c: _Cell):
    """(g, H): ∇_θ h_t by coordinate and ∇²_θ h_t by pair of coordinates, in the
    symbols g_*, H_* (the derivatives of h_{t-1}), s0..s2 and hprev."""
    import sympy as sp

    S, hp, z = c.S, c.hp, c.z
    theta = (c.w, c.u1, c.u2)
    h = c.sigma(z)
    coord_name = {c.w: "w", c.u1: "u1", c.u2: "u2"}
    sub_first = {sp.Derivative(hp, p): sp.Symbol(f"g_{coord_name[p]}", real=True) for p in theta}
    sub_second = {}
    for i, p in enumerate(theta):
        for q in theta[i:]:
            key = sp.Symbol(f"H_{coord_name[p]}{coord_name[q]}", real=True)
            sub_second[sp.Derivative(hp, p, q)] = key
            sub_second[sp.Derivative(hp, q, p)] = key
    sub_sig = {c.sigma(z): S["s0"], c.sigma1(z): S["s1"], c.sigma2(z): S["s2"]}

    def flat(e):
        e = e.subs(sub_second).subs(sub_first).subs(sub_sig)
        return sp.expand(e.subs(hp, S["hprev"]))

    g = {coord_name[p]: flat(sp.diff(h, p)) for p in theta}
    Hm = {(coord_name[p], coord_name[q]): flat(sp.diff(h, p, q)) for p in theta for q in theta}
    return g, Hm


def _sensitivity_templates(c: _Cell, out: _Derived):
    """z, g_w, g_u, H_ww, H_wu, H_uu, with the derivation's sanity checks."""
    import sympy as sp

    S, w, u1, u2, x1, x2 = c.S, c.w, c.u1, c.u2, c.x1, c.x2
    g, Hm = _derivatives(c)
    G = lambda n: sp.Symbol(f"g_{n}", real=True)  # noqa: E731
    Hs = lambda n: sp.Symbol(f"H_{n}", real=True)  # noqa: E731
    add = out.add
    add("z", ("w", "hprev", "s"), (c.z.subs(c.hp, S["hprev"]) - u1 * x1 - u2 * x2) + S["s"])
    add("g_w", ("s1", "w", "hprev", "gw"), g["w"].subs({G("w"): S["gw"], w: S["w"]}))
    add("g_u", ("s1", "w", "x", "gu"),
        g["u1"].subs({G("u1"): S["gu"], x1: S["x"], w: S["w"]}))
    add("H_ww", ("s1", "s2", "w", "hprev", "gw", "Hww"),
        Hm[("w", "w")].subs({G("w"): S["gw"], Hs("ww"): S["Hww"], w: S["w"]}))
    add("H_wu", ("s1", "s2", "w", "hprev", "x", "gw", "gu", "Hwu"),
        Hm[("w", "u1")].subs({G("w"): S["gw"], G("u1"): S["gu"], Hs("wu1"): S["Hwu"],
                              x1: S["x"], w: S["w"]}))
    add("H_uu", ("s1", "s2", "w", "xa", "xb", "gua", "gub", "Huu"),
        Hm[("u1", "u2")].subs({G("u1"): S["gua"], G("u2"): S["gub"], Hs("u1u2"): S["Huu"],
                               x1: S["xa"], x2: S["xb"], w: S["w"]}))
    # the diagonal u-block must be the same template with a = b
    diag = Hm[("u1", "u1")].subs({G("u1"): S["gua"], Hs("u1u1"): S["Huu"], x1: S["xa"],
                                  w: S["w"]})
    same = out["H_uu"].expr.subs({S["xb"]: S["xa"], S["gub"]: S["gua"]})
    if sp.expand(diag - same) != 0:
        raise AssertionError("H_uu template does not cover the diagonal block")
    # symmetry of the Hessian blocks (Schwarz) as a derivation sanity check
    if sp.expand(Hm[("w", "u1")] - Hm[("u1", "w")]) != 0:
        raise AssertionError("derived Hessian is not symmetric")


def _jvp_template(c: _Cell, out: _Derived):
    """jvp: the directional derivative j_t = ⟨g_t, v⟩ along a constant direction v = (vw, vu)."""
    import sympy as sp

    S, w, u1, x1 = c.S, c.w, c.u1, c.x1
    eps = sp.Symbol("eps", real=True)
    jp = sp.Function("hdir")(eps)  # h_{t-1} along the ray θ + ε v
    zr = (w + eps * S["vw"]) * jp + (u1 + eps * S["vu"]) * x1
    jv = sp.diff(c.sigma(zr), eps).subs(eps, 0)
    jv = jv.subs(sp.Subs(sp.Derivative(jp, eps), eps, 0), S["jprev"])
    jv = jv.subs(sp.Derivative(jp.subs(eps, 0), eps), S["jprev"]).subs(jp.subs(eps, 0), S["hprev"])
    jv = jv.subs({c.sigma1(w * S["hprev"] + u1 * x1): S["s1"]})
    # ⟨v_u, x⟩ over all coordinates: the single-coordinate term is linear in vu·x,
    # so it stands for the inner product (renamed ``vx``)
    jv = sp.expand(jv).subs(S["vu"] * x1, S["vx"])
    out.add("jvp", ("s1", "w", "hprev", "vw", "vx", "jprev"), jv.subs(w, S["w"]))


def _reverse_templates(c: _Cell, out: _Derived):
    """Reverse mode: the local partials dh_*, dz_* and one backward step adj_z."""
    import sympy as sp

    S = c.S
    # local partials for reverse mode: h_t = σ(w h_{t-1} + s)
    hq = c.sigma(S["w"] * S["hprev"] + S["s"])
    for name, var in (("dh_dhprev", "hprev"), ("dh_dw", "w"), ("dh_ds", "s")):
        d = sp.diff(hq, S[var]).subs(c.sigma1(S["w"] * S["hprev"] + S["s"]), S["s1"])
        out.add(name, tuple(sorted(str(a) for a in d.free_symbols)), d)

    # local partials of the pre-activation z_t = w h_{t-1} + s (the z template)
    zq = out["z"].expr
    for name, var in (("dz_dhprev", "hprev"), ("dz_dw", "w"), ("dz_ds", "s")):
        d = sp.diff(zq, S[var])
        out.add(name, tuple(sorted(str(a) for a in d.free_symbols)), d)

    # one reverse-mode step through z: L(z_t) = cot·h_t + pnext·z_{t+1}, with
    # h_t = σ(z_t) and z_{t+1} the z template at h_{t-1} := h_t; p_t = dL/dz_t.
    # Kept factored (s1·(…)): one product by σ' per element.
    zt = sp.Symbol("zt", real=True)
    cot, pnext = S["cot"], S["pnext"]
    L = cot * c.sigma(zt) + pnext * zq.subs(S["hprev"], c.sigma(zt))
    adj = sp.diff(L, zt).subs(c.sigma1(zt), S["s1"])
    out.add("adj_z", ("s1", "w", "pnext", "cot"), sp.factor(adj), expand=False)


def structure():
    """Decompose the derived templates into the form of THEORY §4.

    Returns sympy expressions ``v_w, v_u`` (so that g = σ'·v), and the
    residual blocks ``S_ww, S_wu, S_uu`` of
    ``H = σ'' v vᵀ + σ' (S + w H_prev)``.  Used by :mod:`symbolic.bounds`
    to build the norm recurrences and by the tests to compare with the spec.
    """
    import sympy as sp

    t = derive()
    s1, s2, w = sp.symbols("s1 s2 w", real=True)
    Hww, Hwu, Huu = sp.symbols("Hww Hwu Huu", real=True)
    gw, gu, gua, gub = sp.symbols("gw gu gua gub", real=True)
    x, xa, xb, hprev = sp.symbols("x xa xb hprev", real=True)
    v_w = sp.simplify(t["g_w"].expr / s1)
    v_u = sp.simplify(t["g_u"].expr / s1)
    v_ua = v_u.subs({x: xa, gu: gua})
    v_ub = v_u.subs({x: xb, gu: gub})

    def residual(expr, va, vb, Hprev):
        r = sp.expand(expr - s2 * va * vb - s1 * w * Hprev)
        return sp.simplify(r / s1)

    return {
        "v_w": v_w,
        "v_u": v_u,
        "S_ww": residual(t["H_ww"].expr, v_w, v_w, Hww),
        "S_wu": residual(t["H_wu"].expr, v_w, v_u, Hwu),
        "S_uu": residual(t["H_uu"].expr, v_ua, v_ub, Huu),
    }
