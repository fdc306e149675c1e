"""Certified activation constants σ₀, σ₁, σ₂ and closed-form L_t, β_t.

σ_k = sup_{z∈R} |σ^{(k)}(z)| (k = 0, 1, 2) is enclosed as an interval [lo, hi]
with lo ≤ σ_k ≤ hi, both from the trusted engine, for every bounded C²
activation that this module can certify (THEORY §1: σ ∈ C², σ, σ′, σ″
bounded on R).  R is cut at ±Z (Z a power of two, 8 … 128):

* **compact part** — branch and bound on [−Z, Z]: bisection discards every
  sub-interval on which σ^{(k+1)} cannot vanish (σ^{(k)} is monotone there, so
  its extreme values sit at break points); the remaining narrow *critical
  cells* are evaluated with the mean-value form (see :mod:`certify.trusted.intervals`);
* **monotone tails** — where the sign of σ^{(k+1)} is certified on z ≥ Z (and
  on z ≤ −Z) from interval values of its factors, σ^{(k)} is monotone there,
  so it has a limit in [−∞, ∞] and |σ^{(k)}| ≤ max(|σ^{(k)}(±Z)|, |lim|).  The
  factor forms are in z and in e^{−|z|} (:func:`symbolic.codegen._emit_tail`)
  and in y = 1/|z| (:func:`_form_code`: z = 1/y maps the tail onto the bounded
  y ∈ (0, 1/Z], where e.g. √(1+z²) − z stops being ∞ − ∞).  The limit is
  enclosed by a finite enclosure of σ^{(k)} on |z| ≥ 2⁶⁴ (:func:`_tail_value`:
  all values there lie in it, so the limit does), else computed exactly by
  sympy.  An infinite limit means σ_k = ∞: the activation is rejected
  (:class:`ActivationError`, "… is infinite").
* **enclosed tails** — where no such sign can be certified (σ^{(k)} oscillates
  for ever, as sin does), the whole tail is enclosed instead: it is cut into
  [2ⁱZ, 2ⁱ⁺¹Z] (i < 24) and [2²⁴Z, ∞), and σ^{(k)} on each piece is enclosed
  by :func:`_tail_value`: its interval extension in z (mpmath.iv accepts
  infinite endpoints and stays sound there: sin, cos of an unbounded interval
  are [−1, 1], exp, sqrt, log are monotone, 0·∞ and ∞ − ∞ give [−∞, ∞]), in
  y = 1/|z| and in w = e^{−|z|}, intersected, or term by term.  A tail with no
  finite enclosure is rejected ("… is not certified finite").  Every order k
  with enclosed tails uses one common Z, at least the Z of every order with
  monotone tails, so that on [−Z_max, Z_max] each σ^{(k)} is monotone between
  consecutive break points (the screening table of :mod:`certify.trusted.screen`
  relies on it); the decomposition then has ``monotone_tails = False`` and
  its ``lim_pos``/``lim_neg`` are the tail enclosures.

Upper bound: the largest |value| over all break points, cells and tail
enclosures (limits).  Lower bound: the largest certified |σ^{(k)}| at a point
(cell midpoints, ±Z) or, with monotone tails, the limits' magnitude.

Assumed beyond the enclosure contract: σ is C² on R (checked by
:func:`symbolic.resolve`); the symbolic σ^{(k+1)} is the derivative of
σ^{(k)} wherever its interval value is finite; sympy's algebra (factor,
together, limits) is exact.  The decomposition (Z, cells, limits or tail
enclosures) is cached on disk next to the generated code, as exact binary
endpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from mpmath import iv, mpf

from symbolic.activations import Activation, ActivationError, echo, resolve
from symbolic.codegen import activation_module, cache_dir, write_atomic

from .intervals import (
    NS,
    ActivationEnclosure,
    Decomposition,
    find_cells,
    from_man_exp_signed,
    hi,
    hull,
    intersect,
    interval,
    interval_strings,
    is_finite,
    lo,
    lower_abs,
    man_exp,
    upper_abs,
)

Z_CANDIDATES = (8, 16, 32, 64, 128)
CELL_TOL = mpf(2) ** -32
MAX_CELLS = 256
#: the limit of a monotone tail is enclosed by σ^{(k)} on |z| ≥ FAR
FAR = mpf(2) ** 64
#: an enclosed tail is cut at 2ⁱZ, i = 1 … TAIL_PIECES
TAIL_PIECES = 24
#: Z is accepted for enclosed tails once they raise no upper bound by more than this (relative)
TAIL_SLACK = mpf(2) ** -40
#: the σ^{(k)} whose sup is σ_k, in messages
NAMES = ("sigma", "sigma'", "sigma''")
#: the longest ActivationError message that leaves this module (characters)
MESSAGE_LIMIT = 400


@dataclass(frozen=True)
class ActivationConstants:
    """Certified σ₀, σ₁, σ₂ (iv intervals enclosing the sups) and the tight enclosure."""

    activation: Activation
    sigma0: object
    sigma1: object
    sigma2: object
    enclosure: ActivationEnclosure

    def to_json(self) -> dict:
        return {"name": self.activation.name, "expression": self.activation.source,
                "sigma0": interval_strings(self.sigma0),
                "sigma1": interval_strings(self.sigma1),
                "sigma2": interval_strings(self.sigma2)}


def _weak_sign(values) -> int | None:
    """Sign of a product of intervals if each factor has a weak sign, else None."""
    sign = 1
    for v in values:
        if not hasattr(v, "a"):
            v = iv.mpf(v)
        a, b = lo(v), hi(v)
        if a != a or b != b:  # NaN
            return None
        if a >= 0:
            continue
        if b <= 0:
            sign = -sign
            continue
        return None
    return sign


def _safe(f):
    """``f()``, or None where the interval evaluation raises."""
    try:
        return f()
    except (ArithmeticError, ValueError, TypeError):
        return None


def _meet(values):
    """Intersection of the finite enclosures among ``values`` (None: no finite one).
    Each contains the same exact values, so the intersection does too."""
    out = None
    for v in values:
        if v is None or not is_finite(v):
            continue
        both = v if out is None else intersect(out, v)
        if both is None:
            raise ArithmeticError("disjoint enclosures of one value (unsound arithmetic)")
        out = both
    return out


def _what(act: Activation, k: int) -> str:
    return f"activation {echo(act.name)}: sigma{k} = sup over R of |{NAMES[k]}|"


# ---- the tail forms in y = 1/|z| and w = e^{−|z|} --------------------------


def _deep_together(e):
    """``e`` with every sub-expression (radicands included) over one denominator,
    bottom up: for y > 0, √(1 + 1/y²) becomes √(y² + 1)/y, finite at y = 0."""
    import sympy as sp

    if e.is_Atom:
        return e
    return sp.together(e.func(*(_deep_together(a) for a in e.args)))


#: z as a function of each tail variable v > 0 (sgn: the side of the tail)
_SUBS = {"z": lambda sp, v, sgn: sgn * v,              # |z| itself (naive form)
         "y": lambda sp, v, sgn: sgn / v,              # y = 1/|z|
         "w": lambda sp, v, sgn: -sgn * sp.log(v)}     # w = e^{−|z|}


@lru_cache(maxsize=256)
def _form_code(source: str, j: int, sgn: int, var: str, split: bool):
    """Interval function V ↦ [(numerator factors, denominator factors), …] of
    σ^{(j)} at z = sgn·v, sgn/v or −sgn·log v (``var`` "z", "y", "w"): one pair
    for the whole expression, or (``split``) one per top-level term of it; None
    where sympy cannot form them.

    For v > 0, the sum over the pairs of (product of numerator factors)/(product
    of denominator factors) is σ^{(j)}(z) (sympy's expand, together and factor
    with v positive, after :func:`symbolic.activations.trusted_form`); each
    v > 0 of an interval V is a point of V, so interval values over V enclose
    σ^{(j)} on the corresponding part of the tail, whatever happens at v = 0.
    The y-form settles algebraic tails (√(1+z²) − z, z·sin(z)/(1+z²)²), the
    w-form exponential ones (e^{2z}/(e^{2z}+1)² = w²/(1+w²)²); splitting
    into terms lets each term use the form that suits it.
    """
    import sympy as sp

    from symbolic.activations import _derivative, symbol, trusted_form
    from symbolic.codegen import emit

    v = sp.Symbol(var, positive=True)
    try:
        e = trusted_form(_derivative(source, j))
        pairs = []
        for t in (sp.Add.make_args(e) if split else (e,)):
            t = t.subs(symbol(), _SUBS[var](sp, v, sgn))
            if var == "z":
                pairs.append(sp.Tuple(sp.Tuple(t), sp.Tuple()))
                continue
            if var == "w":
                t = sp.expand(t)
            num, den = sp.fraction(sp.together(_deep_together(t)))
            pairs.append(sp.Tuple(sp.Tuple(*sp.Mul.make_args(sp.factor(num))),
                                  sp.Tuple(*sp.Mul.make_args(sp.factor(den)))))
        src = emit("form", (var,), sp.Tuple(*pairs), "interval")
    except Exception:  # noqa: BLE001 - an optional form: the others still stand
        return None
    scope: dict = {}
    exec(compile(src, f"<activation_constants {var}-form>", "exec"), scope)  # generated
    f = scope["form"]
    return lambda V: f(V, ns=NS)


def _form_pairs(act: Activation, j: int, sgn: int, var: str, V, split: bool = False):
    code = _form_code(act.source, j, sgn, var, split)
    return None if code is None else _safe(lambda: code(V))


def _pair_value(pair):
    """(product of the numerator factors)/(product of the denominator factors)."""
    def value():
        v = iv.mpf(1)
        for f in pair[0]:
            v = v * f
        for f in pair[1]:
            v = v / f
        return v

    return _safe(value)


def _tail_vars(a, b) -> dict:
    """Enclosures of v = |z|, 1/|z| and e^{−|z|} for |z| ∈ [a, b] (0 < a ≤ b ≤ ∞)."""
    inf = mpf("inf")
    w_lo = 0 if b == inf else lo(NS.exp(-iv.mpf(b)))
    return {"z": interval(a, b), "y": interval(0 if b == inf else lo(1 / iv.mpf(b)),
                                               hi(1 / iv.mpf(a))),
            "w": interval(w_lo, hi(NS.exp(-iv.mpf(a))))}


def _tail_value(act: Activation, k: int, sgn: int, a, b):
    """Enclosure of σ^{(k)}(z) for sgn·z ∈ [a, b] (0 < a ≤ b ≤ ∞), or None.

    The intersection of the finite enclosures of the whole expression in each
    variable of :func:`_form_code`; where none is finite, the sum over its
    top-level terms of each term's intersected enclosures (all contain the
    same exact values).
    """
    V = _tail_vars(a, b)
    whole = []
    for var in V:
        pairs = _form_pairs(act, k, sgn, var, V[var])
        whole.append(None if pairs is None else _pair_value(pairs[0]))
    found = _meet(whole)
    if found is not None:
        return found
    split = [_form_pairs(act, k, sgn, var, V[var], split=True) for var in V]
    split = [p for p in split if p is not None]
    if not split or len({len(p) for p in split}) != 1:
        return None
    terms = [_meet([_pair_value(p[i]) for p in split]) for i in range(len(split[0]))]
    if any(t is None for t in terms):
        return None
    return _safe(lambda: sum(terms[1:], terms[0]))


# ---- monotone tails -----------------------------------------------------


def _tail_monotone(act: Activation, gen, k: int, Z, sgn: int) -> bool:
    """σ^{(k+1)} has a certified weak sign on the tail sgn·z ≥ Z (so σ^{(k)} is
    monotone there): its factors in z or in e^{−|z|} (generated, on [Z, ∞)) or
    in y = 1/|z| (on y ∈ [0, 1/Z]) each have a weak sign."""
    side = "pos" if sgn > 0 else "neg"
    forms = _safe(lambda: getattr(gen, f"tail{k + 1}_{side}")(Z, ns=NS)) or []
    if any(_weak_sign(f) is not None for f in forms):
        return True
    pairs = _form_pairs(act, k + 1, sgn, "y", interval(0, mpf(1) / Z))
    return pairs is not None and _weak_sign((*pairs[0][0], *pairs[0][1])) is not None


def _limit(act: Activation, k: int, sgn: int):
    """Enclosure of lim_{z→sgn·∞} σ^{(k)}, given that σ^{(k)} is monotone on that
    tail (so the limit exists in [−∞, ∞]).

    A finite enclosure of σ^{(k)} on |z| ≥ 2⁶⁴ (:func:`_tail_value`) contains
    every value there, hence the limit; if there is none (a 0·∞ form), sympy
    computes the limit exactly.  An infinite limit: σ_k = ∞, ActivationError.
    """
    found = _tail_value(act, k, sgn, FAR, mpf("inf"))
    return found if found is not None else _sympy_limit(act, k, sgn)


def _sympy_limit(act: Activation, k: int, sgn: int):
    import sympy as sp

    from symbolic.activations import symbol
    from symbolic.codegen import interval_constant

    side = "+" if sgn > 0 else "-"
    try:
        lim = sp.limit(act.derivative(k), symbol(), sp.oo if sgn > 0 else -sp.oo)
    except Exception:  # noqa: BLE001 - sympy gave up
        lim = None
    if lim in (sp.oo, -sp.oo, sp.zoo):
        raise ActivationError(
            f"{_what(act, k)} is infinite: {NAMES[k]} is unbounded (monotone for large |z|, "
            f"no finite limit at {side}infinity: {echo(lim)}); THEORY §1 needs sigma, "
            "sigma', sigma'' bounded on R")
    if lim is None or not (lim.is_real and lim.is_finite):
        raise ActivationError(f"{_what(act, k)} is not certified finite: the limit of "
                              f"{NAMES[k]} at {side}infinity is not a finite number "
                              f"({echo(lim)})")
    return iv.mpf(interval_constant(lim)(NS))


def _monotone_Z(act: Activation, gen, k: int):
    """The least candidate Z with both tails of σ^{(k)} certified monotone, or None."""
    for Z in Z_CANDIDATES:
        if all(_tail_monotone(act, gen, k, Z, s) for s in (1, -1)):
            return Z
    return None


def _cells(act: Activation, gen, k: int, Z) -> tuple:
    """Critical cells of σ^{(k)} on [−Z, Z] (:func:`certify.trusted.intervals.find_cells`)."""
    fprime = getattr(gen, f"d{k + 1}_interval")
    try:
        cells = find_cells(lambda X: fprime(X, ns=NS), mpf(-Z), mpf(Z), CELL_TOL)
    except RuntimeError:
        raise ActivationError(f"{_what(act, k)} is not certified: cannot isolate the "
                              f"critical points of {NAMES[k]} on [-{Z}, {Z}]") from None
    if len(cells) > MAX_CELLS:
        raise ActivationError(f"{_what(act, k)} is not certified: {NAMES[k]} has too many "
                              f"critical points on [-{Z}, {Z}] ({len(cells)} > {MAX_CELLS})")
    return tuple(cells)


def _monotone_decomposition(act: Activation, gen, k: int, Z) -> Decomposition:
    lim_pos, lim_neg = (_limit(act, k, s) for s in (1, -1))
    return Decomposition(k, mpf(Z), _cells(act, gen, k, Z), lim_pos, lim_neg)


# ---- enclosed tails -----------------------------------------------------


def _enclosed_tail(act: Activation, k: int, Z, sgn: int):
    """Enclosure of σ^{(k)} over the whole tail sgn·z ≥ Z without monotonicity:
    the hull of :func:`_tail_value` over the pieces [2ⁱZ, 2ⁱ⁺¹Z] (i < TAIL_PIECES)
    and [2^TAIL_PIECES·Z, ∞); None if some piece has no finite enclosure."""
    vals = []
    for i in range(TAIL_PIECES + 1):
        a = mpf(Z) * 2**i
        v = _tail_value(act, k, sgn, a, a * 2 if i < TAIL_PIECES else mpf("inf"))
        if v is None:
            return None
        vals.append(v)
    return hull(*vals)


def _tail_enclosure(act: Activation, gen, k: int, Z, sgn: int):
    """T ⊇ σ^{(k)}(tail sgn·z ≥ Z): hull(σ^{(k)}(sgn·Z), limit) where the tail is
    certified monotone, else :func:`_enclosed_tail` (None: not finite)."""
    if _tail_monotone(act, gen, k, Z, sgn):
        fZ = getattr(gen, f"d{k}_interval")(iv.mpf(sgn * Z), ns=NS)
        return hull(fZ, _limit(act, k, sgn))
    return _enclosed_tail(act, k, Z, sgn)


def _tails_tight(gen, dec: Decomposition) -> bool:
    """The tail enclosures raise the upper bound of |σ^{(k)}| on [−Z, Z] by at most
    the relative TAIL_SLACK (a choice of Z, not a soundness condition)."""
    compact = ActivationEnclosure(gen, {dec.k: dec})(dec.k, interval(-dec.Z, dec.Z))
    tail = max(upper_abs(dec.lim_pos), upper_abs(dec.lim_neg))
    return tail <= upper_abs(compact) * (1 + TAIL_SLACK)


def _enclosed_decompositions(act: Activation, gen, ks, floor) -> dict:
    """Decompositions with enclosed tails for the orders ``ks`` at one common
    Z ≥ ``floor``: the least candidate whose tails all are finite and tight
    (:func:`_tails_tight`), else the least with finite ones."""
    fallback, tails, Zs = None, {}, [Z for Z in Z_CANDIDATES if Z >= floor]
    for Z in Zs:
        tails = {k: [_tail_enclosure(act, gen, k, Z, s) for s in (1, -1)] for k in ks}
        if any(None in T for T in tails.values()):
            continue
        try:
            decs = {k: Decomposition(k, mpf(Z), _cells(act, gen, k, Z), *tails[k],
                                     monotone_tails=False) for k in ks}
        except ActivationError:
            if fallback is None:
                raise
            return fallback
        if all(_tails_tight(gen, d) for d in decs.values()):
            return decs
        fallback = fallback or decs
    if fallback is not None:
        return fallback
    k = next(k for k in ks if None in tails[k])
    raise ActivationError(f"{_what(act, k)} is not certified finite: on |z| >= {Zs[-1]}, "
                          f"{NAMES[k]} is neither certified monotone nor bounded by interval "
                          "evaluation (THEORY §1 needs sigma, sigma', sigma'' bounded on R)")


def _decompose_all(act: Activation) -> dict[int, Decomposition]:
    """Certified decompositions of σ, σ′, σ″: monotone tails where a sign is
    certified at some candidate Z, enclosed tails (one common Z, at least every
    monotone Z) for the other orders."""
    gen = activation_module(act.source)
    mono = {k: _monotone_Z(act, gen, k) for k in range(3)}
    decs = {k: _monotone_decomposition(act, gen, k, Z) for k, Z in mono.items() if Z is not None}
    rest = [k for k, Z in mono.items() if Z is None]
    if rest:
        floor = max((Z for Z in mono.values() if Z is not None), default=Z_CANDIDATES[0])
        decs.update(_enclosed_decompositions(act, gen, rest, floor))
    return dict(sorted(decs.items()))


# ---- exact on-disk form -------------------------------------------------


def _enc_mpf(x: mpf) -> list:
    man, exp = man_exp(x)
    return [str(man), int(exp)]


def _dec_mpf(v) -> mpf:
    return from_man_exp_signed(int(v[0]), int(v[1]))


def _enc_iv(x) -> list:
    return [_enc_mpf(lo(x)), _enc_mpf(hi(x))]


def _dec_iv(v):
    return iv.mpf([_dec_mpf(v[0]), _dec_mpf(v[1])])


def _store(path, decomps: dict[int, Decomposition]) -> None:
    data = {str(k): {"Z": _enc_mpf(d.Z), "cells": [_enc_iv(c) for c in d.cells],
                     "lim_pos": _enc_iv(d.lim_pos), "lim_neg": _enc_iv(d.lim_neg),
                     "monotone_tails": bool(d.monotone_tails)}
            for k, d in decomps.items()}
    write_atomic(path, json.dumps(data))


def _load(path) -> dict[int, Decomposition] | None:
    try:
        data = json.loads(path.read_text())
        return {int(k): Decomposition(int(k), _dec_mpf(v["Z"]),
                                      tuple(_dec_iv(c) for c in v["cells"]),
                                      _dec_iv(v["lim_pos"]), _dec_iv(v["lim_neg"]),
                                      monotone_tails=bool(v["monotone_tails"]))
                for k, v in data.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None


@lru_cache(maxsize=1)
def _kernel_key() -> str:
    """Hash of the interval kernels: a cached decomposition is reused only if the
    code that certified it is unchanged."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("intervals.py", "activation_constants.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]


@lru_cache(maxsize=32)
def enclosure_for(act: Activation) -> ActivationEnclosure:
    """The tight σ, σ', σ'' enclosure for ``act`` (certified decomposition, cached)."""
    from symbolic.codegen import _act_stem

    path = cache_dir() / f"{_act_stem(act.source)}.{_kernel_key()}.decomp.json"
    decomps = _load(path) if path.exists() else None
    if decomps is None:
        decomps = _decompose_all(act)
        _store(path, decomps)
    return ActivationEnclosure(activation_module(act.source), decomps)


def _sup_abs(enc: ActivationEnclosure, k: int):
    """Enclosure [lo, hi] of sup_R |σ^{(k)}|: hi from the enclosure over R (break
    points, cells, limits or tail enclosures), lo from certified point values
    and, with monotone tails, the limits (values that σ^{(k)} approaches)."""
    dec = enc.decomps[k]
    everything = enc(k, iv.mpf(["-inf", "+inf"]))
    top = upper_abs(everything)
    lows = [lower_abs(dec.lim_pos), lower_abs(dec.lim_neg)] if dec.monotone_tails else []
    for z in (dec.Z, -dec.Z):
        lows.append(lower_abs(enc.point(k, z)))
    for c in dec.cells:
        lows.append(lower_abs(enc.point(k, (lo(c) + hi(c)) / 2)))
    return iv.mpf([max(lows), top])


def _one_line(message: str) -> str:
    """``message`` on one line, cut to MESSAGE_LIMIT characters (the last guard
    against echoing a huge expression from a message built elsewhere)."""
    text = " ".join(message.split())
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 1] + "…"


@lru_cache(maxsize=32)
def certify_activation(spec: str | Activation) -> ActivationConstants:
    """Certified σ₀, σ₁, σ₂ for an activation name or expression.

    Raises :class:`ActivationError` (a one-line message of at most
    MESSAGE_LIMIT characters, naming the constant) for an activation that does
    not parse, is not C², or whose σ₀, σ₁ or σ₂ is infinite or not certified.
    """
    try:
        act = resolve(spec) if isinstance(spec, str) else spec
        enc = enclosure_for(act)
        sig = tuple(_sup_abs(enc, k) for k in range(3))
    except ActivationError as exc:
        msg = str(exc)
        if not msg.startswith("activation"):  # e.g. the code generator's "power …" message
            msg = f"activation {echo(getattr(spec, 'name', spec))}: {msg}"
        raise ActivationError(_one_line(msg)) from None
    for k, s in enumerate(sig):
        if not is_finite(s):
            raise ActivationError(_one_line(f"{_what(act, k)} is not certified finite"))
    return ActivationConstants(act, *sig, enc)


def check_certifiable(act: Activation) -> Activation:
    """``act`` itself once its σ₀, σ₁, σ₂ are certified finite (cached for later
    use), else :class:`ActivationError` with a one-line message: for case
    loading, so that such an activation is refused before any computation."""
    certify_activation(act)
    return act


def closed_form_constants(activation: str | Activation, alpha, steps: int) -> dict:
    """σ-constants and L_t, β_t (t = 0..steps−1) at α_m = alpha, as iv intervals.

    ``alpha`` may be a decimal string (exact), an int, a Fraction or a float
    (taken as the exact binary value).  L_t, β_t are evaluated by the derived
    recurrence in interval arithmetic, which equals the closed form
    (:func:`symbolic.bounds.prove`) in every regime, also when q = σ₁α_m
    straddles the cutoff 1.
    """
    from symbolic.recurrence import numeric_recurrence

    ac = certify_activation(activation)
    a = to_interval(alpha)
    if lo(a) < 0:
        raise ValueError("alpha must be >= 0")
    # the bound is increasing in every constant: use the upper endpoints
    s0, s1, s2 = (iv.mpf(hi(x)) for x in (ac.sigma0, ac.sigma1, ac.sigma2))
    L, B = numeric_recurrence(s0, s1, s2, iv.mpf(hi(a)), steps, iv)
    return {"activation": ac, "alpha_m": a, "q": ac.sigma1 * a, "t": list(range(steps)),
            "L": L, "beta": B}


def to_interval(x):
    """Exact enclosure of a number given as str (decimal), int, Fraction, float or iv."""
    from fractions import Fraction

    if hasattr(x, "a") and hasattr(x, "b"):
        return x
    if isinstance(x, Fraction):
        return iv.mpf(x.numerator) / x.denominator
    if isinstance(x, bool):
        raise TypeError("bool is not a number")
    if isinstance(x, int | float):
        return iv.mpf(x)
    if isinstance(x, str):
        return iv.mpf(x.strip())
    raise TypeError(f"cannot make an interval from {type(x).__name__}")
