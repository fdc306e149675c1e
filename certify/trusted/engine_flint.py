"""Second trusted engine: Arb ball arithmetic through python-flint.

The same kernels as :mod:`certify.trusted.engine` (:func:`~certify.trusted.engine.enclose_box`,
:func:`~certify.trusted.engine.enclose_box_from`, :func:`~certify.trusted.engine.enclose_point`,
first-order interval AD with :class:`~certify.trusted.engine.Dual` through the
*generated* templates of :mod:`symbolic`), run in a second number system,
:class:`ArbSystem`: every value is an Arb ball ``[m ± r]`` (python-flint
``arb``), about fifteen times cheaper per scalar operation than an
mpmath.iv interval.  Selected with ``engine = "python-flint"`` (aliases
``"flint"``, ``"arb"``); mpmath.iv stays the default.

Enclosure contract
------------------
The same as :mod:`certify.trusted.intervals`: a ball computed for a real function f
over input balls contains f(x) for every point x of the inputs.  A ball whose
midpoint is NaN or whose radius is infinite means "no information" (Arb's
convention: it contains every real number); such a value never makes a bound
smaller (an intersection with it returns the other operand, a norm bound
built from it is +inf).

Trusted primitives (python-flint ≥ 0.6, FLINT's Arb, at ``prec`` = 53 bits)
---------------------------------------------------------------------------
* ball arithmetic ``+ − × ÷`` of ``arb`` (operands may be Python ints and
  floats, converted exactly); ``exp``, ``log``, ``sqrt``, ``sin``, ``cos``,
  ``tan`` and ``arb.pi()`` — Arb's documented contract is that each result
  contains the exact image of every point of the input ball;
* exact operations on exact balls: the constructors ``arb(int)``,
  ``arb(float)``, ``arb(mpf)`` (midpoint set exactly, radius 0),
  ``lower()``/``upper()``/``abs_upper()``/``abs_lower()`` (an exact bound
  rounded outward to ``prec`` bits), ``union`` (a ball containing both),
  ``intersection``/``overlaps``, ``nonnegative_part`` (the ball ∩ [0, ∞)),
  ``mid()``, ``man_exp()`` (the exact mantissa and exponent of an exact
  ball) and comparisons of exact balls.

``rel_accuracy_bits()`` is used too, only to choose between two valid
products (below); soundness does not depend on it.  Nothing else of
python-flint is used.  In particular ``arb.__pow__`` is not: it calls
``arb_pow``, which for a ball whose midpoint is exactly 0 falls back to
``exp(n log x)`` and returns NaN, even for integer n.

Generated code in the ball world
--------------------------------
The generated source is re-compiled (:func:`adapt`, an AST rewrite of the
cached module) with each integer power ``x**n`` routed to ``ns.ipow(x, n)``
(repeated multiplication, even powers clamped to [0, ∞)) and, for the
templates evaluated over a box, each product ``a*b`` to ``ns.mul(a, b)``; the
formulas themselves are untouched (same generated source, same templates,
same ``ns`` pattern).  ``ns.mul`` is :func:`tmul`: Arb's product, except when
both factors are wide balls, where Arb's midpoint-radius product is wider
than the interval product by up to r₁r₂ on each side — compounded over the
recurrences that made the enclosures up to 1.6 times wider than mpmath.iv's
on a neuron's whole set; there the product is the interval product
(:func:`hull_mul`: corner products of the exact endpoints, chosen by sign).
:class:`BallDual` is :class:`certify.trusted.engine.Dual` with the same products.
Thin trajectories (box centres, points) use plain Arb products.

The precision lives in python-flint's global ``ctx.prec``: every entry point
sets it for its duration and restores the caller's value on exit
(:class:`precision`); nothing else global is touched.

σ, σ', σ'' over a ball
----------------------
:class:`ArbActivation` reuses the certified monotone decomposition of
:mod:`certify.trusted.intervals` (critical cells, tail bound Z, limits: engine
independent data, certified once by mpmath.iv and cached on disk) and
evaluates the generated σ^{(k)} in Arb at the break points: the hull of
σ^{(k)} at both endpoints, at ±Z when inside, and over each critical cell
that meets the ball (mean-value form ∩ naive form) — the argument of
:class:`certify.trusted.intervals.ActivationEnclosure`, word for word.  σ''' (only for
∂H) is the naive extension on at most 64 pieces, as in mpmath.iv.

Norm bounds
-----------
:func:`norm_bounds` is :func:`certify.trusted.engine.norm_bounds` in Arb (interval
vector bound, vertex form with 2^p vertices); the spectral bound of an
interval matrix, :func:`spectral_upper`, is the one of
:func:`certify.trusted.engine.spectral_upper_exact` (Frobenius of |A|, or
``‖M^16‖_F^{1/16} + ‖R‖_F`` on the 2^E grid), computed entirely in exact
integer arithmetic including the roots (ceilings of integer square roots),
so its result is an exact dyadic upper bound.  Bounds come back as exact
mpmath ``mpf`` (an exact dyadic upper bound rounded up to ``prec`` bits), so
:mod:`certify.bounds.data_constants` and the certificate handle both engines alike.
"""

from __future__ import annotations

import ast
import math
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

from flint import __version__ as FLINT_VERSION
from flint import arb, fmpz_mat
from flint import ctx as _flint_ctx
from mpmath import iv, mpf

from symbolic import cell_functions

from . import engine as _engine
from .engine import (
    D3_PIECE,
    SQUARINGS,
    VERTEX_MAX_P,
    Dual,
    EngineBase,
    NumberSystem,
    StepEnclosure,
    _signs,
    enclose_box,
    enclose_box_from,
    enclose_point,
)
from .intervals import from_man_exp_signed, hi, lo

__all__ = [
    "ENGINE_NAME",
    "FLINT_VERSION",
    "PREC",
    "ArbActivation",
    "ArbSystem",
    "FlintEngine",
    "adapt",
    "arb_to_iv",
    "iv_to_arb",
    "norm_bounds",
    "point_lower",
    "precision",
    "spectral_int",
    "spectral_int_sym",
    "spectral_upper",
]

ENGINE_NAME = "python-flint"
#: working precision of the midpoints (bits); mpmath.iv works at 53 as well
PREC = 53

_INF = arb("inf")


class precision:
    """Context manager: python-flint's ``ctx.prec`` = ``prec`` inside, the caller's value after."""

    __slots__ = ("prec", "saved")

    def __init__(self, prec: int = PREC):
        self.prec = int(prec)
        self.saved = None

    def __enter__(self):
        self.saved = _flint_ctx.prec
        _flint_ctx.prec = self.prec
        return self

    def __exit__(self, *exc):
        _flint_ctx.prec = self.saved
        return False


# --------------------------------------------------------------------------
# conversions (exact or outward)


def _exact_mpf(y) -> mpf:
    """An exact finite ball (radius 0) as the mpf of the same value."""
    m, e = y.man_exp()
    return from_man_exp_signed(int(m), int(e))


def upper_mpf(x) -> mpf:
    """An mpf ≥ every point of the ball x (+inf if x is not finite)."""
    if not x.is_finite():
        return mpf("inf")
    return _exact_mpf(x.upper())


def lower_mpf(x) -> mpf:
    """An mpf ≤ every point of the ball x (−inf if x is not finite)."""
    if not x.is_finite():
        return mpf("-inf")
    return _exact_mpf(x.lower())


def arb_to_iv(x):
    """The mpmath interval [lower, upper] of the ball x (exact endpoints: outward)."""
    if not x.is_finite():
        return iv.mpf(["-inf", "+inf"])
    return iv.mpf([_exact_mpf(x.lower()), _exact_mpf(x.upper())])


def iv_to_arb(x):
    """A ball containing the mpmath interval (or number) x; exact midpoint, radius
    rounded up.  An infinite endpoint gives the indeterminate ball (all reals)."""
    if hasattr(x, "_mpi_"):
        a, b = lo(x), hi(x)
    else:
        a = b = mpf(x)
    return arb(a).union(arb(b))  # arb(mpf) is exact; ±inf and NaN map to NaN (everything)


# --------------------------------------------------------------------------
# generated code in the ball world


#: ``tmul`` forms the interval product when both factors have a relative
#: accuracy below this many bits (radius above 2^-6 of the midpoint: both wide)
TIGHT_BITS = 6


def tmul(x, y):
    """A ball containing {a·b : a ∈ x, b ∈ y} (x, y balls, Python numbers or
    :class:`Dual`; for a Dual this is its own product).

    Arb's product ``[m₁ ± r₁]·[m₂ ± r₂]`` has radius |m₁|r₂ + |m₂|r₁ + r₁r₂ about
    m₁m₂: wider than the interval product by about r₁r₂ on each side, i.e. by
    a fraction ≈ 1/(|m₁|/r₁ + |m₂|/r₂) of its width — negligible when one factor
    is accurate, large when both are wide; compounded over the recurrences this
    made Arb's enclosures up to 1.6 times wider than mpmath.iv's on wide boxes.
    When both factors are wide (relative accuracy below :data:`TIGHT_BITS` bits
    each) the product is instead :func:`hull_mul`, the interval product.
    """
    try:
        if x.rel_accuracy_bits() >= TIGHT_BITS or y.rel_accuracy_bits() >= TIGHT_BITS:
            return x * y
    except AttributeError:  # a Python number or a Dual: its own product
        return x * y
    return hull_mul(x, y)


def hull_mul(x, y):
    """The interval product of the balls x and y, as a ball: with x ⊆ [a, b] and
    y ⊆ [c, d] (exact endpoints), the extreme products are corner products chosen
    by the signs of the endpoints (a bilinear function on a box is extremal at its
    corners); each corner product is an Arb product of exact numbers, and the
    result is the ball hull of its lower and upper bounds."""
    if not (x.is_finite() and y.is_finite()):
        return x * y
    a, b = x.lower(), x.upper()
    return _hull(a, b, 1 if a >= 0 else (-1 if b <= 0 else 0), y)


def _hull(a, b, sign, y):
    """:func:`hull_mul` of [a, b] (exact; ``sign``: 1 if a ≥ 0, −1 if b ≤ 0, else 0)
    and the finite ball y."""
    c, d = y.lower(), y.upper()
    if sign > 0:
        if c >= 0:
            low, high = a * c, b * d
        elif d <= 0:
            low, high = b * c, a * d
        else:
            low, high = b * c, b * d
    elif sign < 0:
        if c >= 0:
            low, high = a * d, b * c
        elif d <= 0:
            low, high = b * d, a * c
        else:
            low, high = a * d, a * c
    elif c >= 0:
        low, high = a * d, b * d
    elif d <= 0:
        low, high = b * c, a * c
    else:
        return min((a * d).lower(), (b * c).lower()).union(
            max((a * c).upper(), (b * d).upper()))
    return low.lower().union(high.upper())


def _times(x):
    """``lambda y: tmul(x, y)`` with x's accuracy, endpoints and sign found once
    (the hot path of the box kernels: a Dual product multiplies one value by a
    whole gradient)."""
    try:
        wide = x.rel_accuracy_bits() < TIGHT_BITS and x.is_finite()
    except AttributeError:  # a Python number
        wide = False
    if not wide:
        return lambda y: tmul(x, y)
    a, b = x.lower(), x.upper()
    sign = 1 if a >= 0 else (-1 if b <= 0 else 0)

    def times(y):
        try:
            if y.rel_accuracy_bits() >= TIGHT_BITS or not y.is_finite():
                return x * y
        except AttributeError:  # a Python number
            return x * y
        return _hull(a, b, sign, y)

    return times


mul = tmul  # ``ns.mul`` of the generated code


def _sq(x):
    """x² for a ball: the product, intersected with [0, ∞) (tight at 0)."""
    return tmul(x, x).nonnegative_part()


class BallDual(Dual):
    """:class:`~.engine.Dual` with the ball products :func:`tmul` and squares :func:`_sq`."""

    __slots__ = ()
    mul = staticmethod(tmul)
    square = staticmethod(_sq)

    def __mul__(self, o):
        """:meth:`Dual.__mul__` (the same products), each factor's endpoints found once."""
        o = self._as(o)
        a, b = self.v, o.v
        if self.d is None and o.d is None:
            return BallDual(tmul(a, b), None)
        if self.d is None:
            ta = _times(a)
            return BallDual(ta(b), [ta(y) for y in o.d])
        if o.d is None:
            tb = _times(b)
            return BallDual(tb(a), [tb(x) for x in self.d])
        ta, tb = _times(a), _times(b)
        return BallDual(ta(b), [ta(y) + tb(x) for x, y in zip(self.d, o.d, strict=True)])

    __rmul__ = __mul__


def ipow(x, n: int):
    """``x ** n`` for an integer n without ``arb_pow`` (see the module docstring)."""
    if isinstance(x, Dual):
        return x.ipow(n, _sq)
    if not isinstance(x, arb):
        return x**n  # a Python number
    if n < 0:
        return 1 / ipow(x, -n)
    if n == 0:
        return arb(1)
    if n == 1:
        return x
    if n % 2 == 0:
        return _sq(ipow(x, n // 2))
    return tmul(ipow(x, n - 1), x)


def _as_arb(x):
    return x if isinstance(x, arb) else arb(x)


class ArbNamespace:
    """What generated interval code may call (``ns.exp`` …), in Arb."""

    @staticmethod
    def exp(x):
        return _as_arb(x).exp()

    @staticmethod
    def log(x):
        return _as_arb(x).log()

    @staticmethod
    def sqrt(x):
        return _as_arb(x).sqrt()

    @staticmethod
    def sin(x):
        return _as_arb(x).sin()

    @staticmethod
    def cos(x):
        return _as_arb(x).cos()

    @staticmethod
    def tan(x):
        return _as_arb(x).tan()

    mpf = arb
    ipow = staticmethod(ipow)
    mul = staticmethod(mul)

    @property
    def pi(self):
        return arb.pi()

    @property
    def e(self):
        return arb(1).exp()


NS = ArbNamespace()


def _int_exponent(node) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    return None


def _ns_call(attr, args):
    return ast.Call(func=ast.Attribute(value=ast.Name(id="ns", ctx=ast.Load()), attr=attr,
                                       ctx=ast.Load()), args=args, keywords=[])


class _PowToIpow(ast.NodeTransformer):
    """``x**n`` → ``ns.ipow(x, n)`` (n an integer literal); with ``products``,
    ``a*b`` → ``ns.mul(a, b)`` as well."""

    def __init__(self, products: bool):
        self.products = products

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if self.products and isinstance(node.op, ast.Mult):
            return ast.copy_location(_ns_call("mul", [node.left, node.right]), node)
        if not isinstance(node.op, ast.Pow):
            return node
        n = _int_exponent(node.right)
        if n is None:
            raise ValueError(f"generated code has a non-integer power: {ast.unparse(node)}")
        return ast.copy_location(_ns_call("ipow", [node.left, ast.Constant(n)]), node)


@lru_cache(maxsize=64)
def _adapt_file(path: str, names: tuple[str, ...], products: bool) -> dict:
    src = Path(path).read_text()
    tree = ast.parse(src, filename=path)
    keep = [node for node in tree.body
            if isinstance(node, ast.FunctionDef) and (not names or node.name in names)]
    missing = set(names) - {node.name for node in keep}
    if missing:
        raise ValueError(f"{path}: generated functions {sorted(missing)} not found")
    mod = ast.Module(body=[_PowToIpow(products).visit(node) for node in keep], type_ignores=[])
    ast.fix_missing_locations(mod)
    scope: dict = {}
    exec(compile(mod, f"<arb form of {path}>", "exec"), scope)  # generated code
    return {node.name: scope[node.name] for node in keep}


def adapt(module, names=(), products: bool = False) -> SimpleNamespace:
    """The functions ``names`` (all functions when empty) of a generated module,
    re-compiled from its source with every ``x**n`` routed to ``ns.ipow(x, n)``
    (and, with ``products``, every ``a*b`` to ``ns.mul(a, b)``)."""
    return SimpleNamespace(**_adapt_file(str(module.__file__), tuple(names), bool(products)))


# --------------------------------------------------------------------------
# σ^{(k)} over a ball


class _Dec:
    __slots__ = ("Z", "mZ", "fZ", "fmZ", "cells", "lim_pos", "lim_neg", "whole", "monotone")


class ArbActivation:
    """Tight ball extensions of σ, σ', σ'' from the certified decomposition of
    ``enc`` (:class:`certify.trusted.intervals.ActivationEnclosure`); see the module
    docstring."""

    def __init__(self, enc, prec: int = PREC):
        gen = adapt(enc._gen, tuple(f"d{k}_interval" for k in range(4)))
        self._f = [getattr(gen, f"d{k}_interval") for k in range(4)]
        self.prec = prec
        self.dec = {}
        with precision(prec):
            for k, d in enc.decomps.items():
                D = _Dec()
                D.Z = arb(d.Z)
                D.mZ = -D.Z
                D.fZ = self._f[k](D.Z, NS)
                D.fmZ = self._f[k](D.mZ, NS)
                D.cells = tuple(iv_to_arb(c) for c in d.cells)
                D.lim_pos = iv_to_arb(d.lim_pos)
                D.lim_neg = iv_to_arb(d.lim_neg)
                D.monotone = d.monotone_tails
                whole = D.lim_pos.union(D.lim_neg).union(D.fZ).union(D.fmZ)
                for c in D.cells:
                    whole = whole.union(self.cell_value(k, c))
                D.whole = whole
                self.dec[k] = D

    def naive(self, k: int, X):
        return self._f[k](X, NS)

    def cell_value(self, k: int, X):
        """σ^{(k)} over a narrow ball: mean-value form ∩ naive form."""
        f = self._f[k]
        naive = f(X, NS)
        m = X.mid()
        mv = f(m, NS) + self._f[k + 1](X, NS) * (X - m)
        if not mv.is_finite():
            return naive
        if not naive.is_finite():
            return mv
        return naive.intersection(mv) if naive.overlaps(mv) else naive

    def __call__(self, k: int, X):
        """Ball containing σ^{(k)}(x) for every x in the ball X."""
        D = self.dec[k]
        if not X.is_finite():
            return D.whole
        f = self._f[k]
        a, b = X.lower(), X.upper()
        r = f(a, NS).union(f(b, NS))
        if a <= D.Z <= b:
            r = r.union(D.fZ)
        if a <= D.mZ <= b:
            r = r.union(D.fmZ)
        for c in D.cells:
            if c.overlaps(X):
                r = r.union(self.cell_value(k, c.intersection(X)))
        if not D.monotone:  # lim_± enclose the whole tails (Decomposition.monotone_tails)
            if b > D.Z:
                r = r.union(D.lim_pos)
            if a < D.mZ:
                r = r.union(D.lim_neg)
        return r

    def d3(self, z, d3=None):
        """σ''' over z: hull of the naive extension on at most 64 pieces."""
        f = d3 if d3 is not None else self._f[3]
        if not z.is_finite():
            return f(z, NS)
        a, b = z.lower(), z.upper()
        width = float((b - a).upper())
        if width <= D3_PIECE:
            return f(z, NS)
        k = min(64, int(math.ceil(width / D3_PIECE)))
        span = b - a
        edges = [a] + [(a + span * i / k).mid() for i in range(1, k)] + [b]  # exact, shared
        r = None
        for i in range(k):
            v = f(edges[i].union(edges[i + 1]), NS)
            r = v if r is None else r.union(v)
        return r


# --------------------------------------------------------------------------
# the number system


@lru_cache(maxsize=2)
def _cell_templates(products: bool) -> SimpleNamespace:
    return adapt(cell_functions(), products=products)


class ArbSystem(NumberSystem):
    """Arb balls at ``prec`` bits with :class:`ArbActivation` (see the module docstring)."""

    name = ENGINE_NAME
    ns = NS
    Dual = BallDual

    def __init__(self, enc, prec: int = PREC):
        self.prec = int(prec)
        self.cf = _cell_templates(True)  # over a box: tight products (tmul)
        self.cf_thin = _cell_templates(False)  # thin values: Arb's products are tight
        self.activation = ArbActivation(enc, self.prec)
        self.zero = arb(0)
        self.one = arb(1)

    def context(self):
        return precision(self.prec)

    @staticmethod
    def num(v):
        """Exact float/int → exact ball."""
        return arb(v) if isinstance(v, float | int) else arb(float(v))

    @staticmethod
    def interval(a, b):
        return arb(a).union(arb(b))

    @staticmethod
    def mag(x):
        """Exact ball holding an upper bound of sup |x|."""
        return x.abs_upper()

    @staticmethod
    def coerce(r):
        if isinstance(r, arb):
            return r
        return iv_to_arb(r)

    @staticmethod
    def sym(r):
        """The ball [0 ± sup|r|]."""
        return arb(0, r.abs_upper())

    @staticmethod
    def sqrt(x):
        return x.sqrt()

    @staticmethod
    def isect(a, b):
        if not a.is_finite():
            return b
        if not b.is_finite():
            return a
        if not a.overlaps(b):
            raise ArithmeticError("empty intersection of two enclosures (unsound arithmetic)")
        return a.intersection(b)

    @staticmethod
    def certainly_le(a, b) -> bool:
        return bool(a.upper() <= b.lower())

    def act(self, k, z):
        return self.activation(k, z)

    def naive(self, k, z):
        return self.activation.naive(k, z)

    def d3(self, z, d3=None):
        return self.activation.d3(z, d3)


# --------------------------------------------------------------------------
# norm bounds (exact upper bounds, returned as mpf)


def _vec_upper(v):
    """Exact ball ≥ ‖v‖₂ over the ball vector v (+inf if not finite)."""
    acc = arb(0)
    for x in v:
        a = x.abs_upper()
        acc = acc + a * a
    r = acc.sqrt()
    return r.upper() if r.is_finite() else _INF


def _grid(m: int, e: int, E: int, up: bool) -> int:
    """ceil (up) or floor of m·2^e / 2^E, exact."""
    k = e - E
    if k >= 0:
        return m << k
    return -((-m) >> (-k)) if up else m >> (-k)


def _isqrt_up(S: int) -> int:
    r = math.isqrt(S)
    return r if r * r == S else r + 1


def _iroot_up(S: int, k: int) -> int:
    """An integer ≥ S^(1/2^k) (S ≥ 0): k ceilings of integer square roots."""
    for _ in range(k):
        S = _isqrt_up(S)
    return S


def spectral_int(L, U, p: int, squarings: int = SQUARINGS) -> int:
    """An integer n ≥ ‖A‖₂ for every real p×p matrix A with L ≤ A ≤ U entrywise
    (row-major integer lists): ``min(‖|A|‖_F, ‖M^(2^s)‖_F^(2^-s) + ‖R‖_F)`` with
    ``M = ⌊(L+U)/2⌋``, ``R = max(U − M, M − L)`` — the bound of
    :func:`certify.trusted.engine.spectral_upper_exact` — all in exact integers, the
    roots as ceilings of integer square roots.  ‖M‖₂^(2^s) = ‖(MᵀM)^(2^(s-1))‖₂
    ≤ its Frobenius norm; the matrix products are FLINT ``fmpz_mat`` products."""
    F = 0
    R2 = 0
    M = []
    for a, b in zip(L, U, strict=True):
        c = (a + b) >> 1
        M.append(c)
        F += max(-a, b, a, -b) ** 2
        r = max(b - c, c - a)
        R2 += r * r
    frob = _isqrt_up(F)
    Mm = fmpz_mat(p, p, M)
    G = Mm.transpose() * Mm
    for _ in range(squarings - 1):
        G = G * G
    FG = sum(int(x) ** 2 for x in G.entries())
    return min(frob, _iroot_up(FG, squarings + 1) + _isqrt_up(R2))


def spectral_int_sym(L, U, W, full, p: int, squarings: int = SQUARINGS, floor=None) -> int:
    """:func:`spectral_int` for symmetric matrices given by their upper triangles
    (L, U; W: 1 on the diagonal, 2 off it; ``full``: row-major index into the
    triangle).  M is symmetric, so MᵀM = M² and ‖M^(2^s)‖_F² = trace(M^(2^(s+1))).

    With ``floor``: when the cheap valid bound ``min(‖|A|‖_F, ‖M‖_∞ + ‖R‖_F)``
    (‖M‖₂ ≤ ‖M‖_∞ for symmetric M) is ≤ floor, that cheap bound is returned
    without the matrix powers (the caller only needs the max with floor)."""
    F = 0
    R2 = 0
    M = []
    for a, b, w in zip(L, U, W, strict=True):
        c = (a + b) >> 1
        M.append(c)
        m = max(-a, b)  # a ≤ b: max(|a|, |b|)
        r = max(b - c, c - a)
        F += w * m * m
        R2 += w * r * r
    frob = _isqrt_up(F)
    rF = _isqrt_up(R2)
    Mf = [M[i] for i in full]
    if floor is not None:
        inf_norm = max(sum(abs(x) for x in Mf[i * p:(i + 1) * p]) for i in range(p))
        cheap = min(frob, inf_norm + rF)
        if cheap <= floor:
            return cheap
    G = fmpz_mat(p, p, Mf)
    for _ in range(squarings + 1):
        G = G * G  # M^(2^(s+1))
    FG = int(sum(G[i, i] for i in range(p)))
    return min(frob, _iroot_up(FG, squarings + 1) + rF)


def _ends(x):
    """Exact endpoints of a finite ball as integer (m_lo, e_lo, m_hi, e_hi); None otherwise."""
    if not x.is_finite():
        return None
    m1, e1 = x.lower().man_exp()
    m2, e2 = x.upper().man_exp()
    return int(m1), int(e1), int(m2), int(e2)


def _top(ends) -> int:
    """An exponent t with |lower|, |upper| < 2^t for every (m_lo, e_lo, m_hi, e_hi)."""
    t = -(10**9)
    for m1, e1, m2, e2 in ends:
        if m1:
            t = max(t, e1 + abs(m1).bit_length())
        if m2:
            t = max(t, e2 + abs(m2).bit_length())
    return t


def _on_grid(ends, E):
    return ([_grid(m1, e1, E, False) for m1, e1, _, _ in ends],
            [_grid(m2, e2, E, True) for _, _, m2, e2 in ends])


def spectral_upper(A):
    """Exact mpf ≥ ‖A‖₂ for every matrix in the p×p ball matrix A (+inf if an entry
    is not finite); grid 2^E with the largest entry below 2^63."""
    p = len(A)
    ends = [_ends(x) for row in A for x in row]
    if any(e is None for e in ends):
        return mpf("inf")
    t = _top(ends)
    if t == -(10**9):
        return mpf(0)
    E = t - 63
    L, U = _on_grid(ends, E)
    return from_man_exp_signed(spectral_int(L, U, p), E)


def _vertex_spectral(st, p, rho):
    """min(N(H_t(B)), max over the 2^p vertices s of N(H_t(c) + Σ_k s_k ρ_k ∂_kH_t(B)))
    as an exact mpf (see :func:`certify.trusted.engine.norm_bounds`).

    The matrices are symmetric: their upper triangles are put once on a common
    grid 2^E (every endpoint rounded outward), and each vertex matrix is the
    exact integer interval sum of the pieces (no rounding at all); N is
    :func:`spectral_int` on it."""
    tri = [(a, b) for a in range(p) for b in range(a, p)]
    pos = {ab: i for i, ab in enumerate(tri)}
    full = [pos[(min(a, b), max(a, b))] for a in range(p) for b in range(p)]
    W = [1 if a == b else 2 for a, b in tri]
    eH = [_ends(st.H[a][b]) for a, b in tri]
    eC = [_ends(st.Hc[a][b]) for a, b in tri]
    eP = [[_ends(st.dH[a][b][k] * rho[k]) for a, b in tri] for k in range(p)]
    okH = all(e is not None for e in eH)
    okV = all(e is not None for e in eC) and all(e is not None for ek in eP for e in ek)
    if not (okH or okV):
        return mpf("inf")
    pieces = (eH if okH else []) + (eC + [e for ek in eP for e in ek] if okV else [])
    t = _top(pieces)
    if t == -(10**9):
        return mpf(0)
    E = t + (p + 1).bit_length() - 63  # a sum of p + 1 pieces stays below 2^63 on the grid
    bound = None
    if okH:
        L, U = _on_grid(eH, E)
        bound = spectral_int_sym(L, U, W, full, p)
    if okV:
        CL, CU = _on_grid(eC, E)
        PG = [_on_grid(ek, E) for ek in eP]
        best = 0
        for s in _signs(p):
            L, U = list(CL), list(CU)
            for k in range(p):
                PL, PU = PG[k]
                if s[k] > 0:
                    L = [x + y for x, y in zip(L, PL, strict=True)]
                    U = [x + y for x, y in zip(U, PU, strict=True)]
                else:
                    L = [x - y for x, y in zip(L, PU, strict=True)]
                    U = [x - y for x, y in zip(U, PL, strict=True)]
            best = max(best, spectral_int_sym(L, U, W, full, p, floor=best))
            if bound is not None and best >= bound:
                break
        bound = best if bound is None else min(bound, best)
    return from_man_exp_signed(bound, E)


def norm_bounds(st: StepEnclosure, need_L: bool = True, need_B: bool = True,
                vertex: bool = True, prec: int = PREC):
    """(upper ‖g‖₂, upper ‖H‖₂) over the box of ``st`` (ball values) as exact mpf;
    :func:`certify.trusted.engine.norm_bounds` in Arb (None where not needed)."""
    with precision(prec):
        return _norm_bounds(st, need_L, need_B, vertex)


def _norm_bounds(st, need_L, need_B, vertex):
    p = len(st.g)
    rho = getattr(st, "rho", None)
    use_vertex = vertex and rho is not None and st.gc is not None and p <= VERTEX_MAX_P
    uL = uB = None
    if need_L:
        bound = _vec_upper(st.g)
        if use_vertex:
            cols = [[st.H[a][k] * rho[k] for a in range(p)] for k in range(p)]
            best = arb(0)
            for s in _signs(p):
                v = list(st.gc)
                for k in range(p):
                    col = cols[k]
                    v = [v[a] + col[a] if s[k] > 0 else v[a] - col[a] for a in range(p)]
                val = _vec_upper(v)
                if val > best:
                    best = val
                if not best < bound:
                    break
            if best < bound:
                bound = best
        uL = upper_mpf(bound)
    if need_B:
        if use_vertex and st.dH is not None:
            uB = _vertex_spectral(st, p, rho)
        else:
            uB = spectral_upper(st.H)
    return uL, uB


def point_lower(st: StepEnclosure, v_eig=None, prec: int = PREC):
    """Certified lower bounds (mpf) of ‖g_t(θ)‖₂ and ‖H_t(θ)‖₂ at a point θ
    (:func:`certify.trusted.engine.point_lower` in Arb; 0 where a ball is not finite)."""
    with precision(prec):
        acc = arb(0)
        for x in st.g:
            a = x.abs_lower()
            acc = acc + a * a
        lL = _nonneg_lower(acc.sqrt())
        p = len(st.g)
        best = max(_nonneg_lower(st.H[a][a].abs_lower()) for a in range(p))
        if v_eig is not None:
            v = [arb(float(x)) for x in v_eig]
            q = arb(0)
            for a in range(p):
                for b in range(p):
                    q = q + v[a] * st.H[a][b] * v[b]
            nv = arb(0)
            for x in v:
                nv = nv + x * x
            if nv.is_finite() and nv.lower() > 0:
                best = max(best, _nonneg_lower((q / nv).abs_lower()))
        return lL, best


def _nonneg_lower(x) -> mpf:
    """A lower bound ≥ 0 of a nonnegative quantity enclosed by the ball x."""
    if not x.is_finite():
        return mpf(0)
    v = _exact_mpf(x.lower())
    return v if v > 0 else mpf(0)


# --------------------------------------------------------------------------
# the engine


class FlintEngine(EngineBase):
    """Trusted engine in Arb ball arithmetic (python-flint); the interface of
    :class:`certify.trusted.engine_iv.IVEngine`."""

    name = ENGINE_NAME
    version = FLINT_VERSION

    def __init__(self, act, prec: int = PREC):
        from .activation_constants import certify_activation

        self.ac = certify_activation(act)
        self.enc = self.ac.enclosure  # the certified decomposition (engine independent)
        self.prec = int(prec)
        self.system = ArbSystem(self.enc, self.prec)

    def box(self, box_lo, box_hi, xs, u0, ru, steps):
        """Own-dual enclosures over the box (list of :class:`StepEnclosure` of balls)."""
        return enclose_box(self.system, box_lo, box_hi, xs, u0, ru, steps)

    def box_from(self, box_lo, box_hi, xs, dH_sup, steps, u0=None, ru=None):
        """Cheap enclosures over the box from ∂H over a superset (ball values);
        u0, ru: the ball the superset was narrowed to (see :func:`enclose_box_from`)."""
        return enclose_box_from(self.system, box_lo, box_hi, xs, dH_sup, steps, u0, ru)

    def norm_bounds(self, st, need_L=True, need_B=True, vertex=True):
        return norm_bounds(st, need_L, need_B, vertex, self.prec)

    def point(self, theta, xs, steps):
        return enclose_point(self.system, theta, xs, steps)

    def point_lower(self, theta, xs, steps, eigvecs=None):
        sts = self.point(theta, xs, steps)
        return [point_lower(st, None if eigvecs is None else eigvecs[t], self.prec)
                for t, st in enumerate(sts)]

    def membership(self, theta, w0, u0, rw, ru) -> bool:
        """Certified: θ = (w, u) satisfies |w − w0| ≤ rw and ‖u − u0‖ ≤ ru
        (rw, ru: mpmath intervals or numbers)."""
        with precision(self.prec):
            rw_lo = arb(lo(rw) if hasattr(rw, "_mpi_") else mpf(rw))
            ru_lo = arb(lo(ru) if hasattr(ru, "_mpi_") else mpf(ru))
            if not (rw_lo.is_finite() and ru_lo.is_finite()):
                return False
            dw = arb(float(theta[0])) - arb(float(w0))
            if not dw.abs_upper() <= rw_lo:
                return False
            acc = arb(0)
            for a, b in zip(theta[1:], u0, strict=True):
                e = arb(float(a)) - arb(float(b))
                acc = acc + e * e
            r2 = ru_lo * ru_lo
            return bool(acc.upper() <= r2.lower())


# enclosures of this system are dispatched here by certify.trusted.engine.norm_bounds/point_lower
_engine.FOREIGN["arb"] = (norm_bounds, point_lower)
