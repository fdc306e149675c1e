"""Interval kernels on the trusted engine (mpmath.iv).

Enclosure contract
------------------
For an interval function F standing for a real function f, and every input
interval X, ``F(X) ⊇ { f(x) : x ∈ X }``: the result contains the exact value
for every point of the inputs; it is not necessarily the tightest.  Endpoints
are rounded outward (lower ``round_floor``, upper ``round_ceiling``) by
mpmath.iv.

Trusted primitives
------------------
Only these mpmath.iv operations are relied on: + − × ÷, integer powers,
``exp``, ``log``, ``sqrt``, ``sin``, ``cos``, ``tan`` and the constant ``pi``.
The transcendental ones are additionally widened outward by 4 ulps, because
``iv.exp`` was observed to round some endpoints to nearest instead of outward
(see :func:`_widen`); arithmetic is used as is.
Every activation is rewritten into them by
:func:`symbolic.activations.trusted_form` before code generation (tanh,
sinh, cosh become expressions in exp).

Tight activation enclosures
---------------------------
The naive interval extension of σ^{(k)} overestimates badly on wide inputs.
:class:`ActivationEnclosure` instead uses a certified decomposition of R into
pieces on which σ^{(k)} is monotone:

* on [−Z, Z], bisection with the interval value of σ^{(k+1)} discards every
  sub-interval where σ^{(k+1)} cannot vanish; what is left is a finite list of
  narrow *critical cells* covering every zero of σ^{(k+1)};
* on each tail |z| ≥ Z either (``monotone_tails``) the sign of σ^{(k+1)} is
  certified (factor by factor, see :func:`symbolic.codegen._emit_tail` and
  :mod:`certify.trusted.activation_constants`), so σ^{(k)} is monotone there and tends
  to a finite limit, enclosed by ``lim_pos``/``lim_neg``; or (not
  ``monotone_tails``: σ^{(k)} oscillates, e.g. sin) ``lim_pos``/``lim_neg``
  are enclosures T₊ ⊇ σ^{(k)}([Z, ∞)), T₋ ⊇ σ^{(k)}((−∞, −Z]) of the whole tails.

In both cases hull(σ^{(k)}(±Z), lim_±) ⊇ σ^{(k)} over the tail.  Then for
X = [a, b]: σ^{(k)}(X) ⊆ hull( σ^{(k)}(a), σ^{(k)}(b), σ^{(k)}(c ∩ X) for each
critical cell c meeting X, σ^{(k)}(±Z) if inside X, lim_± if X is unbounded ),
because σ^{(k)} is monotone between consecutive break points; without
monotone tails, the part of X beyond ±Z is enclosed by T_± (intersected with
the cell form of σ^{(k)} over that part when it is bounded) instead.
Point values are thin-interval evaluations; a cell is evaluated with the
mean-value form intersected with the naive form.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from fractions import Fraction

from mpmath import iv, mpf
from mpmath.libmp import from_man_exp

ENGINE = "mpmath.iv"


#: relative outward widening applied to every transcendental primitive (4 ulps at 53 bits)
WIDEN = mpf(2) ** -50
#: absolute widening for endpoints that are tiny but nonzero
TINY = mpf(2) ** -1070


def _widen(f, floor=None, ceiling=None):
    """``f`` followed by an outward widening of both endpoints by 4 ulps.

    mpmath.iv's ``exp`` was observed here to round some endpoints to nearest
    instead of outward (e.g. ``iv.exp(-2**-40)`` returned a point interval that
    excludes the true value; errors below one ulp; tests/trusted/test_intervals_engine.py
    keeps the evidence).  The other primitives showed no such failure, but every
    transcendental result is widened the same way; ``floor``/``ceiling`` clamp
    the result to the function's known range (exp ≥ 0, sqrt ≥ 0, |sin|, |cos| ≤ 1)
    so that sign information is not lost.  Zero and infinite endpoints are kept.
    """

    def g(x):
        y = f(x)
        a, b = lo(y), hi(y)
        if a == a and a not in (0, mpf("inf"), mpf("-inf")):
            a = lo(iv.mpf(a) - (iv.mpf(abs(a)) * WIDEN + TINY))
        if b == b and b not in (0, mpf("inf"), mpf("-inf")):
            b = hi(iv.mpf(b) + (iv.mpf(abs(b)) * WIDEN + TINY))
        if floor is not None and a < floor:
            a = mpf(floor)
        if ceiling is not None and b > ceiling:
            b = mpf(ceiling)
        return interval(a, b)

    g.__name__ = getattr(f, "__name__", "widened")
    return g


class Namespace:
    """What generated interval code may call (``ns.exp`` …): the trusted primitives,
    each transcendental one widened outward (see :func:`_widen`)."""

    exp = staticmethod(_widen(iv.exp, floor=0))
    log = staticmethod(_widen(iv.log))
    sqrt = staticmethod(_widen(iv.sqrt, floor=0))
    sin = staticmethod(_widen(iv.sin, floor=-1, ceiling=1))
    cos = staticmethod(_widen(iv.cos, floor=-1, ceiling=1))
    tan = staticmethod(_widen(iv.tan))
    mpf = staticmethod(iv.mpf)

    @property
    def pi(self):
        return iv.pi

    @property
    def e(self):
        return self.exp(iv.mpf(1))


NS = Namespace()


# --------------------------------------------------------------------------
# small pure helpers on iv intervals


def lo(x) -> mpf:
    """Lower endpoint of an iv interval as an exact mpf (a number → itself)."""
    if hasattr(x, "_mpi_"):
        return mpf(x._mpi_[0])
    return mpf(x)


def hi(x) -> mpf:
    """Upper endpoint of an iv interval as an exact mpf (a number → itself)."""
    if hasattr(x, "_mpi_"):
        return mpf(x._mpi_[1])
    return mpf(x)


def interval(a, b):
    """The interval [a, b] from exact endpoints (mpf, int or str)."""
    return iv.mpf([a, b])


def hull(*xs):
    """Smallest interval containing all of ``xs`` (exact: endpoints are copied)."""
    return interval(min(lo(x) for x in xs), max(hi(x) for x in xs))


def _lo_or_ninf(x) -> mpf:
    """Lower endpoint; a NaN endpoint means "anything" and reads as −inf."""
    a = lo(x)
    return mpf("-inf") if a != a else a


def _hi_or_pinf(x) -> mpf:
    """Upper endpoint; a NaN endpoint reads as +inf."""
    b = hi(x)
    return mpf("inf") if b != b else b


def intersect(x, y):
    """x ∩ y, or None when certainly disjoint (a NaN endpoint is never read as
    empty: it widens that side to infinity)."""
    a = max(_lo_or_ninf(x), _lo_or_ninf(y))
    b = min(_hi_or_pinf(x), _hi_or_pinf(y))
    if a > b:
        return None
    return interval(a, b)


def upper_abs(x) -> mpf:
    """sup |x| over the interval x (an mpf; exact, no rounding needed)."""
    return max(abs(lo(x)), abs(hi(x)))


def lower_abs(x) -> mpf:
    """inf |x| over the interval x (0 if x contains 0)."""
    a, b = lo(x), hi(x)
    if a <= 0 <= b:
        return mpf(0)
    return min(abs(a), abs(b))


def is_finite(x) -> bool:
    from mpmath import isinf, isnan

    a, b = lo(x), hi(x)
    return not (isnan(a) or isnan(b) or isinf(a) or isinf(b))


def float_up(x) -> float:
    """The smallest double ≥ the upper endpoint of x (a certified upper bound as a float)."""
    import math

    v = hi(x)
    f = float(v)
    if f < v:
        f = math.nextafter(f, math.inf)
    return f


def float_down(x) -> float:
    """The largest double ≤ the lower endpoint of x (a certified lower bound as a float)."""
    import math

    v = lo(x)
    f = float(v)
    if f > v:
        f = math.nextafter(f, -math.inf)
    return f


def thin(v):
    """The point interval [v, v] for an mpf/int/str (exact) ."""
    return iv.mpf(v)


def exact_interval(text: str):
    """Enclosure of a decimal string such as "0.1" (which is not 1/10 in binary)."""
    return iv.mpf(text)


# --------------------------------------------------------------------------
# decimal strings that round outward


def man_exp(x: mpf) -> tuple[int, int]:
    """(m, e) with x = m·2^e exactly, m signed (x finite)."""
    sign, man, exp, _bc = x._mpf_
    man = int(man)  # an mpz under mpmath's gmpy2 backend: Decimal and Fraction need int
    return (-man if sign else man), int(exp)


def from_man_exp_signed(m: int, e: int) -> mpf:
    """Inverse of :func:`man_exp`, exact (no rounding)."""
    return mpf(from_man_exp(m, e))


def _mpf_fraction(x: mpf) -> Fraction:
    man, exp = man_exp(x)
    return Fraction(man) * (Fraction(2) ** exp)


def to_decimal(x: mpf, rounding: str, digits: int = 17) -> str:
    """Decimal string of the mpf ``x`` rounded toward ``floor`` or ``ceiling``."""
    from mpmath import isinf, isnan

    if isnan(x):
        raise ValueError("NaN has no decimal form")
    if isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    fr = _mpf_fraction(x)
    ctx = Context(prec=digits, rounding=ROUND_FLOOR if rounding == "floor" else ROUND_CEILING)
    d = ctx.divide(Decimal(fr.numerator), Decimal(fr.denominator))
    return format(d, "g") if "E" not in str(d) else str(d)


def interval_strings(x, digits: int = 17) -> list[str]:
    """``["lo", "hi"]`` decimal strings enclosing the interval x (outward)."""
    return [to_decimal(lo(x), "floor", digits), to_decimal(hi(x), "ceiling", digits)]


def upper_string(x, digits: int = 17) -> str:
    """Decimal upper bound of the interval x (rounded up)."""
    return to_decimal(hi(x), "ceiling", digits)


def from_strings(pair) -> object:
    """Parse ``["lo", "hi"]`` back into an iv interval containing it."""
    a, b = pair
    return interval(lo(iv.mpf(a)), hi(iv.mpf(b)))


# --------------------------------------------------------------------------
# tight enclosures of σ^{(k)}


@dataclass(frozen=True)
class Decomposition:
    """Certified monotone decomposition of σ^{(k)} on R (see module docstring)."""

    k: int
    Z: object  # mpf: tails are |z| ≥ Z
    cells: tuple  # iv intervals covering every zero of σ^{(k+1)} in [−Z, Z]
    lim_pos: object  # monotone tails: lim_{z→+∞} σ^{(k)}; else ⊇ σ^{(k)}([Z, ∞))
    lim_neg: object  # monotone tails: lim_{z→−∞} σ^{(k)}; else ⊇ σ^{(k)}((−∞, −Z])
    #: False: σ^{(k)} need not be monotone on |z| ≥ Z and lim_± enclose the whole
    #: tails (a consumer must then include lim_± whenever its X reaches beyond ±Z)
    monotone_tails: bool = True


class ActivationEnclosure:
    """Tight interval extensions of σ, σ', σ'' for one activation."""

    def __init__(self, gen, decomps: dict[int, Decomposition]):
        self._gen = gen
        self._f = {k: getattr(gen, f"d{k}_interval") for k in range(4)}
        self.decomps = decomps

    def point(self, k: int, x):
        """σ^{(k)} at a point (thin interval or number), outward rounded."""
        return self._f[k](thin(x) if not hasattr(x, "a") else x, ns=NS)

    def naive(self, k: int, X):
        return self._f[k](X, ns=NS)

    def cell_value(self, k: int, X):
        """σ^{(k)} over a narrow interval: mean-value form ∩ naive form."""
        naive = self._f[k](X, ns=NS)
        m = iv.mpf((lo(X) + hi(X)) / 2)
        mv = self._f[k](m, ns=NS) + self._f[k + 1](X, ns=NS) * (X - m)
        both = intersect(naive, mv) if is_finite(mv) else naive
        return both if both is not None else naive

    def __call__(self, k: int, X):
        """Enclosure of σ^{(k)}(X) for an interval X (endpoints may be ±inf)."""
        from mpmath import isinf

        dec = self.decomps[k]
        f = self._f[k]
        vals = []
        a, b = lo(X), hi(X)
        Z = dec.Z
        vals.append(dec.lim_neg if isinf(a) else f(iv.mpf(a), ns=NS))
        vals.append(dec.lim_pos if isinf(b) else f(iv.mpf(b), ns=NS))
        for z in (-Z, Z):
            if a <= z <= b:
                vals.append(f(iv.mpf(z), ns=NS))
        for c in dec.cells:
            if hi(c) < a or lo(c) > b:
                continue
            vals.append(self.cell_value(k, intersect(c, X)))
        if not dec.monotone_tails:
            if b > Z:
                vals.append(self._tail(k, interval(max(a, Z), b), dec.lim_pos))
            if a < -Z:
                vals.append(self._tail(k, interval(a, min(b, -Z)), dec.lim_neg))
        return hull(*vals)

    def _tail(self, k: int, X, T):
        """σ^{(k)} over X inside a tail whose values T encloses: T, intersected
        with the cell form over X when X is bounded (both contain σ^{(k)}(X))."""
        if not is_finite(X):
            return T
        both = intersect(T, self.cell_value(k, X))
        return both if both is not None else T

    def sigma(self, X):
        return self(0, X)

    def dsigma(self, X):
        return self(1, X)

    def d2sigma(self, X):
        return self(2, X)


def find_cells(fprime, lo_, hi_, tol, max_evals=200_000):
    """Certified cover of the zeros of ``fprime`` (interval function) on [lo, hi].

    Pure bisection: an interval whose enclosure excludes 0 is discarded (no
    zero there); one narrower than ``tol`` that may contain a zero is kept.
    Adjacent kept intervals are merged.  Raises RuntimeError if the budget of
    evaluations is spent (e.g. σ^{(k+1)} vanishes on a whole interval).
    """
    pieces = 256
    edges = [lo_ + (hi_ - lo_) * i / pieces for i in range(pieces)] + [hi_]
    # consecutive pieces share their (possibly rounded) edge: the cover is exact
    stack = [interval(edges[i], edges[i + 1]) for i in range(pieces)]
    kept = []
    evals = 0
    while stack:
        X = stack.pop()
        evals += 1
        if evals > max_evals:
            raise RuntimeError("critical-point search exceeded its budget")
        F = fprime(X)
        if lo(F) > 0 or hi(F) < 0:
            continue
        a, b = lo(X), hi(X)
        if b - a < tol:
            kept.append(X)
            continue
        m = (a + b) / 2  # exact: a binary midpoint needs one more bit at most
        stack.append(interval(a, m))
        stack.append(interval(m, b))
    kept.sort(key=lo)
    merged = []
    for c in kept:
        if merged and lo(c) <= hi(merged[-1]):
            merged[-1] = interval(lo(merged[-1]), max(hi(merged[-1]), hi(c)))
        else:
            merged.append(c)
    return merged
