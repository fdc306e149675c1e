"""Trusted per-neuron interval kernels (mpmath.iv, or Arb balls via python-flint).

For one neuron, one input sequence ``x_0..x_{T-1}`` and one parameter box
``B = [w] × [u_1] × … × [u_d]``, :func:`enclose_box` encloses, for every t,

* ``h_t``, ``g_t = ∇_θ h_t``, ``H_t = ∇²_θ h_t`` over B, and
* ``∂_k H_t`` over B (third derivatives), by first-order interval automatic
  differentiation (:class:`Dual`) *through the generated templates*
  of :mod:`symbolic` — no derivative is written here by hand,

plus the same quantities at the box centre c (a thin trajectory).  Every
value over B is the intersection of the naive interval evaluation of the
templates with the mean value form about c (z, h, g, H; e.g.
``H_t(B) ⊆ H_t(c) + Σ_k ∂_k H_t(B)(B_k − c_k)``), each a valid enclosure.
σ, σ', σ'' over an interval use the tight certified enclosure of
:mod:`certify.trusted.intervals` (monotone decomposition); σ''' (only needed for
∂H) the naive interval extension of the generated ``d3``.

Norm bounds (:func:`norm_bounds`), for the sup over B:

* ``‖g_t‖₂`` — min of the interval-vector bound ``sqrt(Σ_a sup|g_a|²)`` and the
  *vertex form*: for θ ∈ B, ``g(θ) = g(c) + Σ_k δ_k ∂_k g(ξ)`` with
  ``|δ_k| ≤ ρ_k`` and ``∂_k g(ξ) ∈ H(B)[:, k]``; for each realisation the norm is
  convex in δ, so it is bounded by its largest value over the 2^p vertices
  ``δ = ±ρ`` of the enclosing box, each evaluated in interval arithmetic.
* ``‖H_t‖₂`` — the same two forms, the spectral norm of each interval matrix
  bounded by :func:`spectral_upper` (Frobenius, or midpoint + radius with
  ‖M‖₂ ≤ ‖M^16‖_F^{1/16} in exact integer arithmetic).

All arithmetic is outward rounded (mpmath.iv at 53 bits); :func:`spectral_upper`
is exact up to a final upward rounding.

Engines
-------
The kernels are written once, generic over a :class:`NumberSystem` (the
interval type, its conversions, the activation enclosures and the precision):
:class:`IVSystem` is mpmath.iv (an :class:`~certify.trusted.intervals.ActivationEnclosure`
passed as ``enc`` means this one); :class:`certify.trusted.engine_flint.ArbSystem` is
Arb ball arithmetic through python-flint (3–6× faster per box, 12× for the
norm bounds, widths within 0.1% of mpmath.iv's).  Behind
one interface (``box``, ``box_from``, ``norm_bounds``, ``box_bounds``, ``point``,
``point_lower``, ``membership``, ``name``) they are :class:`IVEngine`
("mpmath.iv", the default) and :class:`certify.trusted.engine_flint.FlintEngine`
("python-flint"; aliases "flint", "arb"; needs the ``flint`` extra), registered
in :data:`ENGINES` and built by :func:`get_engine`.
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from dataclasses import dataclass

from mpmath import iv, mpf

from symbolic import cell_functions

from .expansion import box_centres, expansion_points
from .intervals import NS, hi, intersect, interval, lo, man_exp, upper_abs

__all__ = [
    "NumberSystem",
    "NORM_METHOD",
    "Dual",
    "StepEnclosure",
    "spectral_upper",
    "spectral_upper_exact",
    "enclose_box",
    "enclose_box_from",
    "enclose_point",
    "norm_bounds",
]

#: the vertex form is used up to this many parameters per neuron (2^p vertices)
VERTEX_MAX_P = 6
#: squarings in the midpoint bound ‖M‖₂ ≤ ‖M^(2^s)‖_F^(2^-s)
SQUARINGS = 4

NORM_METHOD = {
    "L": ("sup ‖g_t‖₂ over a box ≤ min( sqrt(Σ_a sup|g_a|²) over the interval vector g_t(B), "
          "max over the 2^p vertices s of sup ‖g_t(c) + Σ_k s_k ρ_k H_t(B)[:,k]‖₂ ) "
          "(mean value theorem + convexity of the norm in δ; vertex form for p ≤ 6)"),
    "beta": ("sup ‖H_t‖₂ over a box ≤ min( N(H_t(B)), max over the 2^p vertices s of "
             "N(H_t(c) + Σ_k s_k ρ_k ∂_kH_t(B)) ), where for an interval matrix A, "
             "N(A) = min( ‖|A|‖_F , ‖M^16‖_F^(1/16) + ‖R‖_F ) with M the (grid-rounded) "
             "midpoint and R ≥ |A − M| entrywise, M^16 in exact integer arithmetic; "
             "∂_kH_t by interval forward-mode AD through the generated templates"),
}


# --------------------------------------------------------------------------
# exact spectral-norm bound


def _fixed(x: mpf, E: int, up: bool) -> int:
    """ceil (up) or floor of x / 2^E, exact."""
    m, e = man_exp(x) if x != 0 else (0, 0)
    k = e - E
    if k >= 0:
        return m << k
    if up:
        return -((-m) >> (-k))
    return m >> (-k)


def _iroot_up(S: int, k: int) -> object:
    """An mpf upper bound of S^(1/2^k) (S ≥ 0 an integer)."""
    r = iv.mpf(S)
    for _ in range(k):
        r = iv.sqrt(r)
    return hi(r)


def spectral_upper_exact(los, his) -> mpf:
    """Upper bound of ‖A‖₂ for every matrix A with los ≤ A ≤ his entrywise.

    los, his: p×p nested lists of finite mpf.  Returns
    min(‖|A|‖_F, ‖M^(2^s)‖_F^(2^-s) + ‖R‖_F) rounded up, where everything is
    computed exactly on the grid 2^E (E = exponent of the largest entry − 62):
    ``Lo = floor(lo/2^E)``, ``Hi = ceil(hi/2^E)``, ``M = ⌊(Lo+Hi)/2⌋``,
    ``R = max(Hi − M, M − Lo)``.  ‖M‖₂ ≤ ‖(MᵀM)^(2^(s-1))‖_F^(2^-s) uses Gram
    powers, valid for non-symmetric M too.
    """
    p = len(los)
    flat = [x for row in los for x in row] + [x for row in his for x in row]
    mx = max(abs(x) for x in flat)
    if mx == 0:
        return mpf(0)
    m_, e_ = man_exp(mx)
    E = e_ + abs(m_).bit_length() - 63  # largest entry < 2^63 on the grid 2^E
    Lo = [[_fixed(los[i][j], E, False) for j in range(p)] for i in range(p)]
    Hi = [[_fixed(his[i][j], E, True) for j in range(p)] for i in range(p)]
    # Frobenius of |A|
    F = sum(max(abs(Lo[i][j]), abs(Hi[i][j])) ** 2 for i in range(p) for j in range(p))
    frob = _iroot_up(F, 1)
    M = [[(Lo[i][j] + Hi[i][j]) >> 1 for j in range(p)] for i in range(p)]
    R2 = sum(max(Hi[i][j] - M[i][j], M[i][j] - Lo[i][j]) ** 2 for i in range(p) for j in range(p))
    rF = _iroot_up(R2, 1)
    # G = MᵀM, then square s-1 times: G = (MᵀM)^(2^(s-1)); ‖M‖₂^(2^s) = ‖G‖₂ ≤ ‖G‖_F
    G = [[sum(M[k][i] * M[k][j] for k in range(p)) for j in range(p)] for i in range(p)]
    for _ in range(SQUARINGS - 1):
        G = [[sum(G[i][k] * G[k][j] for k in range(p)) for j in range(p)] for i in range(p)]
    FG = sum(x * x for row in G for x in row)
    mid = _iroot_up(FG, SQUARINGS + 1)
    spec = hi(iv.mpf(mid) + iv.mpf(rF))
    best = min(frob, spec)
    return hi(iv.mpf(best) * iv.mpf(2) ** E)


def spectral_upper(A) -> mpf:
    """Upper bound of ‖A‖₂ over a p×p matrix of iv intervals (see :func:`spectral_upper_exact`)."""
    los = [[lo(x) for x in row] for row in A]
    his = [[hi(x) for x in row] for row in A]
    for row in los + his:
        for x in row:
            if not mpf_finite(x):
                return mpf("inf")
    return spectral_upper_exact(los, his)


def mpf_finite(x) -> bool:
    from mpmath import isinf, isnan

    return not (isnan(x) or isinf(x))


def vec_norm_upper(v, ctx=iv) -> mpf:
    """Upper bound of ‖v‖₂ over an interval vector."""
    acc = ctx.mpf(0)
    for x in v:
        a = upper_abs(x)
        acc = acc + ctx.mpf(a) * ctx.mpf(a)
    return hi(ctx.sqrt(acc))


# --------------------------------------------------------------------------
# first-order interval AD


class Dual:
    """Value ``v`` (interval) with gradient ``d`` (list of p intervals, or None).

    Products of values go through the class attribute ``mul`` and squares through
    ``square`` (mpmath.iv: ``a * b`` and ``v**2``); a number system may subclass
    Dual with tighter ones (see :class:`certify.trusted.engine_flint.BallDual`)."""

    __slots__ = ("v", "d")

    mul = staticmethod(operator.mul)

    def __init__(self, v, d=None):
        self.v = v
        self.d = d

    @staticmethod
    def square(v):
        return v**2

    def _as(self, o):
        return o if isinstance(o, Dual) else self.__class__(o, None)

    def __add__(self, o):
        o = self._as(o)
        if self.d is None:
            d = o.d
        elif o.d is None:
            d = self.d
        else:
            d = [a + b for a, b in zip(self.d, o.d, strict=True)]
        return self.__class__(self.v + o.v, d)

    __radd__ = __add__

    def __neg__(self):
        return self.__class__(-self.v, None if self.d is None else [-a for a in self.d])

    def __sub__(self, o):
        return self + (-self._as(o))

    def __rsub__(self, o):
        return self._as(o) - self

    def __mul__(self, o):
        o = self._as(o)
        mul = self.mul
        a, b = self.v, o.v
        if self.d is None and o.d is None:
            d = None
        elif self.d is None:
            d = [mul(a, y) for y in o.d]
        elif o.d is None:
            d = [mul(x, b) for x in self.d]
        else:
            d = [mul(a, y) + mul(x, b) for x, y in zip(self.d, o.d, strict=True)]
        return self.__class__(mul(a, b), d)

    __rmul__ = __mul__

    def __pow__(self, n):
        return self.ipow(n, self.square)

    def ipow(self, n, square=None):
        """``self ** n`` for an integer n ≥ 0; ``square(v)`` encloses v² for a value v
        (default: the class's ``square``; mpmath.iv: ``v**2``)."""
        if not isinstance(n, int) or n < 0:
            raise TypeError("Dual supports only non-negative integer powers")
        if square is None:
            square = self.square
        if n == 0:
            return self.__class__(self.v * 0 + 1, None)
        if n == 1:
            return self
        if n == 2:
            v2 = square(self.v)
            d = None if self.d is None else [self.mul(2 * self.v, x) for x in self.d]
            return self.__class__(v2, d)
        half = self.ipow(n // 2, square)
        sq = half * half
        return sq if n % 2 == 0 else sq * self


# --------------------------------------------------------------------------
# number systems: what the generic kernels below need from an interval world


class NumberSystem(ABC):
    """One interval world for the kernels :func:`enclose_box`, :func:`enclose_box_from`
    and :func:`enclose_point`.

    The kernels are written once; a number system supplies the interval type
    and everything that depends on it: ``cf`` (the generated cell templates,
    callable on its values and on ``Dual``: :class:`Dual` or a subclass with the
    system's products; ``cf_thin``: the same templates for thin values, e.g.
    without the product tightening of wide balls), ``ns`` (the namespace the
    generated code calls: ``exp``, ``sqrt``, …), conversions of exact floats
    and float boxes, σ^{(k)} over an interval (``act``: the tight enclosure;
    ``naive``: plain evaluation, for thin inputs) and σ''' (``d3``), the
    intersection of two enclosures, and ``context()`` — the arithmetic
    precision, set on entry and restored on exit (mpmath.iv: the global
    ``iv.prec`` is left as it is, 53 bits).
    """

    name = "?"

    @abstractmethod
    def context(self):
        """A context manager that sets the system's precision and restores it on exit."""

    @staticmethod
    @abstractmethod
    def certainly_le(a, b) -> bool:
        """True only if every value of the enclosure a is ≤ every value of b."""


def _system(enc) -> NumberSystem:
    """``enc`` itself: the kernels run in the interval world it names."""
    if not isinstance(enc, NumberSystem):
        raise TypeError(f"a NumberSystem is needed (e.g. certify.trusted.engine_iv.IVSystem(enc)), "
                        f"not {type(enc).__name__}")
    return enc


# --------------------------------------------------------------------------
# per-box enclosure (generic over the number system; mpmath.iv by default)


@dataclass
class StepEnclosure:
    """Enclosures at step t over a box B (and at its centre c)."""

    h: object
    g: list
    H: list  # p×p
    dH: list | None  # p×p×p (∂_k H_t over B), None for point evaluations
    hc: object = None
    gc: list | None = None
    Hc: list | None = None


def _cell():
    return cell_functions()


@dataclass(frozen=True, slots=True)
class _Templates:
    """The generated cell templates of one number system and their namespace."""

    cf: object
    ns: object


def _H_step(tp: _Templates, s1, s2, w, h, x, g, H):
    """H_t (p×p nested list) from the generated templates (interval or Dual inputs)."""
    cf, ns = tp.cf, tp.ns
    p = len(g)
    d = p - 1
    out = [[None] * p for _ in range(p)]
    out[0][0] = cf.H_ww(s1, s2, w, h, g[0], H[0][0], ns=ns)
    for k in range(d):
        v = cf.H_wu(s1, s2, w, h, x[k], g[0], g[1 + k], H[0][1 + k], ns=ns)
        out[0][1 + k] = v
        out[1 + k][0] = v
    for a in range(d):
        for b in range(a, d):
            v = cf.H_uu(s1, s2, w, x[a], x[b], g[1 + a], g[1 + b], H[1 + a][1 + b], ns=ns)
            out[1 + a][1 + b] = v
            out[1 + b][1 + a] = v
    return out


def _g_step(tp: _Templates, s1, w, h, x, g):
    cf, ns = tp.cf, tp.ns
    return [cf.g_w(s1, w, h, g[0], ns=ns)] + [cf.g_u(s1, w, x[k], g[1 + k], ns=ns)
                                              for k in range(len(g) - 1)]


def _isect(a, b):
    r = intersect(a, b)
    if r is None:
        raise ArithmeticError("empty intersection of two enclosures (unsound arithmetic)")
    return r


#: σ''' over a wide interval: naive evaluation on pieces of at most this width
D3_PIECE = 0.02


def _d3_enclosure(d3, z):
    """Enclosure of σ''' over z: the hull of its naive interval extension on at
    most 64 pieces (the naive form overestimates badly on wide inputs)."""
    from mpmath import isinf

    a, b = lo(z), hi(z)
    if isinf(a) or isinf(b) or b - a <= D3_PIECE:
        return d3(z, ns=NS)
    k = min(64, int(math.ceil(float(b - a) / D3_PIECE)))
    edges = [a + (b - a) * i / k for i in range(k)] + [b]  # exact mpf, shared edges
    parts = [d3(interval(edges[i], edges[i + 1]), ns=NS) for i in range(k)]
    return iv.mpf([min(lo(v) for v in parts), max(hi(v) for v in parts)])


def _dot(us, xs):
    acc = us[0] * xs[0]
    for u, x in zip(us[1:], xs[1:], strict=True):
        acc = acc + u * x
    return acc


def _certainly_in_ball(S, point_u, u0, ru) -> bool:
    """Certified: ‖point_u − u0‖ ≤ every value of the radius enclosure ``ru``."""
    acc = S.zero
    for a, b in zip(point_u, u0, strict=True):
        e = S.num(a) - S.num(b)
        acc = acc + e * e
    r = S.coerce(ru)
    return S.certainly_le(acc, r * r) and S.certainly_le(S.zero, r)


def _expansion(S, box_lo, box_hi, u0, ru):
    """(c, narrow): the point of the mean-value forms and whether s_t may be
    narrowed to the ball's slabs (:mod:`certify.trusted.expansion`): c certainly in the
    ball, else the box centre and no narrowing."""
    if u0 is None or ru is None:
        return box_centres([box_lo], [box_hi])[0].tolist(), False
    r = float(S.mag(S.coerce(ru)))  # only to choose the point: the check is certified
    c = expansion_points([box_lo], [box_hi], [u0], r)[0].tolist()
    if _certainly_in_ball(S, c[1:], u0, ru):
        return c, True
    return box_centres([box_lo], [box_hi])[0].tolist(), False


def enclose_box(enc, box_lo, box_hi, xs, u0=None, ru=None, steps=None, *, d3=None):
    """Trusted enclosures over a box for one neuron and one sequence.

    enc: a :class:`NumberSystem`, or a :class:`certify.trusted.intervals.ActivationEnclosure`
    (mpmath.iv); box_lo, box_hi: p floats (w, u_1..u_d); xs: T×d floats; u0
    (d floats) and ru (interval or number ≥ the ball radius): s_t is
    intersected with ⟨u0, x_t⟩ ± ru‖x_t‖.  Returns a list of
    :class:`StepEnclosure` for t = 0..steps−1.
    """
    S = _system(enc)
    with S.context():
        return _enclose_box(S, box_lo, box_hi, xs, u0, ru, steps, d3)


def _enclose_box(S, box_lo, box_hi, xs, u0, ru, steps, d3):
    """The kernel of :func:`enclose_box`.  Narrowing s_t to the ball's slabs is
    applied only with an expansion point c certainly in the ball (then every
    segment from c to a point of box ∩ ball stays where the enclosures hold;
    :mod:`certify.trusted.expansion`)."""
    r = _box_settings(S, box_lo, box_hi, u0, ru, d3)
    p, zero = r.p, S.zero
    T = len(xs) if steps is None else steps
    state = (zero, [zero] * p, [[zero] * p for _ in range(p)],
             [[[zero] * p for _ in range(p)] for _ in range(p)])  # h, g, H, ∂H over B
    ctr = (None, zero, [zero] * p, [[zero] * p for _ in range(p)])  # z, h, g, H at c
    out = []
    for t in range(T):
        x = [S.num(v) for v in xs[t]]
        ctr = _centre_step(r, x, ctr)
        state = _box_step(r, x, _s_over_box(r, x), state, ctr)
        out.append(StepEnclosure(*state, *ctr[1:]))
    for st in out:
        st.rho = r.rho  # type: ignore[attr-defined]
    return out


@dataclass(frozen=True, slots=True)
class _BoxSettings:
    """What every step of one :func:`_enclose_box` call reads, built once."""

    S: NumberSystem
    box: _Templates  # the templates over the box (interval or Dual inputs)
    thin: _Templates  # the templates at the expansion point c
    p: int
    w: object  # [w] of the box
    U: list  # [u_1], …, [u_d]
    w_d: object  # w with gradient e_0
    cI: list  # c, as thin values
    dB: list  # B − c
    rho: list  # |B − c|
    narrow: bool  # s_t intersected with the ball's slabs
    u0: list | None
    ru: object
    d3: object


def _box_settings(S, box_lo, box_hi, u0, ru, d3) -> _BoxSettings:
    p = len(box_lo)
    B = [S.interval(a, b) for a, b in zip(box_lo, box_hi, strict=True)]
    c, narrow = _expansion(S, box_lo, box_hi, u0, ru)
    cI = [S.num(v) for v in c]
    dB = [B[k] - cI[k] for k in range(p)]
    return _BoxSettings(
        S=S, box=_Templates(S.cf, S.ns), thin=_Templates(S.cf_thin, S.ns), p=p, w=B[0],
        U=B[1:], w_d=S.Dual(B[0], [S.one] + [S.zero] * (p - 1)), cI=cI, dB=dB,
        rho=[S.mag(v) for v in dB], narrow=narrow,
        u0=None if u0 is None else [S.num(v) for v in u0],
        ru=None if ru is None else S.coerce(ru), d3=d3)


def _s_over_box(r: _BoxSettings, x):
    """s_t = ⟨u, x_t⟩ over the box, intersected with the ball's range where narrowed."""
    S = r.S
    s = _dot(r.U, x)
    if r.narrow:
        nx = S.sqrt(_dot(x, x))
        s0 = _dot(r.u0, x)
        rad = r.ru * nx
        s = S.isect(s, s0 + S.sym(rad))
    return s


def _centre_step(r: _BoxSettings, x, prev):
    """(z_t, h_t, g_t, H_t) of the thin trajectory at c, from the previous (…, h, g, H)."""
    S, tt, cw = r.S, r.thin, r.cI[0]
    _, hc, gc, Hc = prev
    zc = tt.cf.z(cw, hc, _dot(r.cI[1:], x), ns=tt.ns)
    C0 = S.naive(0, zc)
    C1 = S.naive(1, zc)
    C2 = S.naive(2, zc)
    return zc, C0, _g_step(tt, C1, cw, hc, x, gc), _H_step(tt, C1, C2, cw, hc, x, gc, Hc)


def _box_step(r: _BoxSettings, x, s, state, ctr):
    """(h_t, g_t, H_t, ∂H_t) over the box from the previous ``state`` (h, g, H, ∂H),
    s_t over the box and this step at c (``ctr``: z, h, g, H), each the naive form
    intersected with the mean value form about c."""
    S, tb, p, dB = r.S, r.box, r.p, r.dB
    zero, D = S.zero, S.Dual
    mul = D.mul
    h, g, H, dH = state
    zc, C0, gc_n, Hc_n = ctr
    # ---- box: z with its gradient
    h_d = D(h, list(g))
    s_d = D(s, [zero] + x)
    z_d = tb.cf.z(r.w_d, h_d, s_d, ns=tb.ns)
    z = S.isect(z_d.v, zc + _dot(z_d.d, dB))
    S0 = S.act(0, z)
    S1 = S.act(1, z)
    S2 = S.act(2, z)
    S3 = S.d3(z, r.d3)
    s1_d = D(S1, [mul(S2, v) for v in z_d.d])
    s2_d = D(S2, [mul(S3, v) for v in z_d.d])
    g_d = [D(g[a], list(H[a])) for a in range(p)]
    H_d = [[D(H[a][b], list(dH[a][b])) for b in range(p)] for a in range(p)]
    Hn_d = _H_step(tb, s1_d, s2_d, r.w_d, h_d, [D(v) for v in x], g_d, H_d)
    H_n = [[None] * p for _ in range(p)]
    dH_n = [[None] * p for _ in range(p)]
    for a in range(p):
        for b in range(a, p):
            e = Hn_d[a][b]
            grad = e.d if e.d is not None else [zero] * p
            v = S.isect(e.v, Hc_n[a][b] + _dot(grad, dB))
            H_n[a][b] = H_n[b][a] = v
            dH_n[a][b] = dH_n[b][a] = grad
    g_n = _g_step(tb, S1, r.w, h, x, g)
    g_n = [S.isect(g_n[a], gc_n[a] + _dot(H_n[a], dB)) for a in range(p)]
    h_n = S.isect(S0, C0 + _dot(g_n, dB))
    return h_n, g_n, H_n, dH_n


def enclose_box_from(enc, box_lo, box_hi, xs, dH_sup, steps=None, u0=None, ru=None):
    """Cheap enclosures over a box B given enclosures of ∂_k H_t over a superset P ⊇ B.

    ``dH_sup[t]`` (p×p×p, same number system) encloses ∂H_t over P (from
    :func:`enclose_box` on P, called with the same ``u0``, ``ru``: None when P's
    enclosure was not narrowed).  Only the thin trajectory at a point c of B is
    computed; then ``H_t(B) ⊆ H_t(c) + Σ_k ∂_kH_t(P)(B_k − c_k)``,
    ``g_t(B) ⊆ g_t(c) + H_t(B)(B − c)`` and ``h_t(B) ⊆ h_t(c) + g_t(B)·(B − c)``
    (mean value theorem along segments from c, which stay where ∂H_t(P) holds:
    with ``u0`` given, c is certainly in the ball, else B's own enclosure
    :func:`enclose_box` is returned).  About a tenth of the cost of :func:`enclose_box`.
    """
    S = _system(enc)
    with S.context():
        p = len(box_lo)
        T = len(xs) if steps is None else steps
        c, inside = _expansion(S, box_lo, box_hi, u0, ru)
        if u0 is not None and not inside:
            return _enclose_box(S, box_lo, box_hi, xs, u0, ru, T, None)
        B = [S.interval(a, b) for a, b in zip(box_lo, box_hi, strict=True)]
        cI = [S.num(v) for v in c]
        dB = [B[k] - cI[k] for k in range(p)]
        rho = [S.mag(v) for v in dB]
        centre = _enclose_point(S, c, xs, T)  # the thin trajectory at the expansion point
        out = []
        for t in range(T):
            C0, gc_n, Hc_n = centre[t].h, centre[t].g, centre[t].H
            dH = dH_sup[t]
            H_n = [[None] * p for _ in range(p)]
            for a in range(p):
                for b in range(a, p):
                    v = Hc_n[a][b] + _dot(dH[a][b], dB)
                    H_n[a][b] = H_n[b][a] = v
            g_n = [gc_n[a] + _dot(H_n[a], dB) for a in range(p)]
            h_n = C0 + _dot(g_n, dB)
            st = StepEnclosure(h_n, g_n, H_n, dH, C0, gc_n, Hc_n)
            st.rho = rho  # type: ignore[attr-defined]
            out.append(st)
        return out


def enclose_point(enc, theta, xs, steps=None):
    """Thin trajectory at the point θ (p floats): enclosures of h_t, g_t, H_t."""
    S = _system(enc)
    with S.context():
        return _enclose_point(S, theta, xs, steps)


def _enclose_point(S, theta, xs, steps):
    tp = _Templates(S.cf_thin, S.ns)
    cf, ns = tp.cf, tp.ns
    p = len(theta)
    T = len(xs) if steps is None else steps
    th = [S.num(v) for v in theta]
    zero = S.zero
    h = zero
    g = [zero] * p
    H = [[zero] * p for _ in range(p)]
    out = []
    for t in range(T):
        x = [S.num(v) for v in xs[t]]
        z = cf.z(th[0], h, _dot(th[1:], x), ns=ns)
        S0 = S.naive(0, z)
        S1 = S.naive(1, z)
        S2 = S.naive(2, z)
        g_n = _g_step(tp, S1, th[0], h, x, g)
        H_n = _H_step(tp, S1, S2, th[0], h, x, g, H)
        h, g, H = S0, g_n, H_n
        out.append(StepEnclosure(h, g, H, None))
    return out


#: (norm_bounds, point_lower) of the other number systems, by the type name of their
#: values: each registers itself on import (certify.trusted.engine_flint: "arb"), so
#: enclosures of another system are never read as intervals and this module never
#: imports that system
FOREIGN: dict[str, tuple] = {}


def _signs(p):
    return [[1 if (v >> k) & 1 else -1 for k in range(p)] for v in range(2**p)]


def norm_bounds(st: StepEnclosure, need_L: bool = True, need_B: bool = True,
                vertex: bool = True):
    """(upper ‖g‖₂, upper ‖H‖₂) over the box of ``st`` (mpf; None where not needed).

    Enclosures of the python-flint engine (Arb balls) go to
    :func:`certify.trusted.engine_flint.norm_bounds`."""
    other = FOREIGN.get(type(st.h).__name__)
    if other is not None:
        return other[0](st, need_L, need_B, vertex)
    p = len(st.g)
    rho = getattr(st, "rho", None)
    use_vertex = vertex and rho is not None and st.gc is not None and p <= VERTEX_MAX_P
    uL = uB = None
    if need_L:
        uL = vec_norm_upper(st.g)
        if use_vertex:
            cols = [[st.H[a][k] * rho[k] for a in range(p)] for k in range(p)]
            best = mpf(0)
            for s in _signs(p):
                v = list(st.gc)
                for k in range(p):
                    col = cols[k]
                    v = [v[a] + col[a] if s[k] > 0 else v[a] - col[a] for a in range(p)]
                best = max(best, vec_norm_upper(v))
                if best >= uL:
                    break
            uL = min(uL, best)
    if need_B:
        uB = spectral_upper(st.H)
        if use_vertex and st.dH is not None:
            P = [[[st.dH[a][b][k] * rho[k] for b in range(p)] for a in range(p)] for k in range(p)]
            best = mpf(0)
            for s in _signs(p):
                V = [[st.Hc[a][b] for b in range(p)] for a in range(p)]
                for k in range(p):
                    Pk = P[k]
                    if s[k] > 0:
                        V = [[V[a][b] + Pk[a][b] for b in range(p)] for a in range(p)]
                    else:
                        V = [[V[a][b] - Pk[a][b] for b in range(p)] for a in range(p)]
                best = max(best, spectral_upper(V))
                if best >= uB:
                    break
            uB = min(uB, best)
    return uL, uB


def point_lower(st: StepEnclosure, v_eig=None):
    """Certified lower bounds (mpf) of ‖g_t(θ)‖₂ and ‖H_t(θ)‖₂ at a point θ.

    ‖g‖ ≥ sqrt(Σ inf|g_a|²); ‖H‖₂ ≥ |vᵀHv| / vᵀv for the float vector ``v_eig``
    (an approximate top eigenvector; without it, the largest |H_aa|).
    Arb balls go to :func:`certify.trusted.engine_flint.point_lower`.
    """
    from .intervals import lower_abs

    other = FOREIGN.get(type(st.h).__name__)
    if other is not None:
        return other[1](st, v_eig)

    acc = iv.mpf(0)
    for x in st.g:
        a = lower_abs(x)
        acc = acc + iv.mpf(a) * iv.mpf(a)
    lL = lo(iv.sqrt(acc))
    p = len(st.g)
    best = max(lower_abs(st.H[a][a]) for a in range(p))
    if v_eig is not None:
        v = [iv.mpf(float(x)) for x in v_eig]
        q = iv.mpf(0)
        for a in range(p):
            for b in range(p):
                q = q + v[a] * st.H[a][b] * v[b]
        nv = _dot(v, v)
        if lo(nv) > 0:
            best = max(best, lower_abs(q / nv))
    return lL, best


# --------------------------------------------------------------------------
# engines behind one interface


class EngineBase:
    """What every trusted engine builds on its own ``box`` and ``norm_bounds``."""

    def box_bounds(self, box_lo, box_hi, xs, u0, ru, need_L, need_B):
        """Upper bounds (mpf or None) of sup‖g_t‖, sup‖H_t‖ over the box, t < len(need_L)."""
        T = max([t + 1 for t in range(len(need_L)) if need_L[t] or need_B[t]], default=0)
        if T == 0:
            return [None] * len(need_L), [None] * len(need_B)
        sts = self.box(box_lo, box_hi, xs, u0, ru, T)
        UL = [None] * len(need_L)
        UB = [None] * len(need_B)
        for t in range(T):
            UL[t], UB[t] = self.norm_bounds(sts[t], need_L[t], need_B[t])
        return UL, UB
