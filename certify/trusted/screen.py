"""Vectorized screening path: NumPy interval arithmetic with outward rounding.

The trusted engine (:mod:`certify.trusted.engine`, mpmath.iv) costs tens of
milliseconds per (box, sample) trajectory.  Branch and bound needs many
thousands of box evaluations, so the search runs on this path and only the
final cover is evaluated by the trusted engine.

The screening path is itself *rigorous* (so that it may prune, see
:mod:`certify.bounds.data_constants`), but it is not what a certificate reports:

* **arithmetic** — :class:`IA` holds float64 ``lo``/``hi`` arrays; every
  +, −, × is computed in round-to-nearest and then widened outward by
  ``|x|·2^-52 + 2^-1022`` (at least one ulp: the exact result of an IEEE
  operation lies within half an ulp of the rounded one; see :func:`_dn`; this
  is an order of magnitude cheaper than ``numpy.nextafter``).  ``sqrt`` is
  correctly rounded in IEEE 754 and is widened likewise; the products of the
  spectral bound use an a priori error bound (γ_p).  No other floating-point
  function is used.
* **activation** — σ, σ', σ'' never go through libm (whose tanh/exp are not
  correctly rounded): :class:`ActivationTable` holds, on a dyadic grid of
  [−Z, Z], mpmath.iv enclosures of σ^{(k)} at the grid points and of
  σ^{(k+1)} over each cell (cached on disk, exact as float64 endpoints).  A
  point value is ``P_i + D_i·(a − z_i)`` (mean value theorem); an interval's
  image is the hull of its endpoint values and of the enclosures of the cells
  holding critical points of σ^{(k)} (the certified monotone decomposition of
  :mod:`certify.trusted.intervals`), plus the monotone tails.
* **formulas** — the generated polynomial templates of :mod:`symbolic`
  (``cell_functions()``), evaluated on :class:`IA` arrays.

Everything is vectorized over items = (box, sample) pairs of one or many
neurons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from symbolic import cell_functions

from .expansion import box_centres, expansion_points

__all__ = [
    "IA",
    "ActivationTable",
    "activation_table",
    "screen_bounds",
    "point_values",
    "spectral_upper",
    "SCREEN_ENGINE",
]

SCREEN_ENGINE = "numpy, outward-widened float64 intervals (rigorous; decides and prunes only)"

_NINF = -np.inf
_PINF = np.inf


_C = 2.0**-52
_TINY = 2.0**-1022  # smallest normal: covers underflow, and never makes a subnormal operand


def _dn(x):
    """A float ≤ every real that rounds to x (x = fl(e) for a correctly rounded op).

    |e − x| is at most half the float spacing next to x, which is ≤ |x|·2^-52
    (or 2^-1074 in the subnormal range); ``x − (|x|·2^-52 + 2^-1022)``, itself
    rounded to nearest (monotone), is at or below the float neighbour of x,
    hence ≤ e.  (Much cheaper than ``numpy.nextafter``; 2^-1022 rather than
    2^-1074 keeps subnormal operands, which are very slow on x86, out of the
    common path.)
    """
    t = np.abs(x)
    t *= _C
    t += _TINY
    return _nan_to(x - t, _NINF)


def _up(x):
    """A float ≥ every real that rounds to x (see :func:`_dn`).

    Used on magnitudes, squares and finite box geometry, never on −inf, so it
    cannot make a NaN (−inf + inf); interval results go through :func:`_up_`,
    which widens NaN."""
    t = np.abs(x)
    t *= _C
    t += _TINY
    return x + t


def _nan_to(x, end):
    """A NaN endpoint (inf − inf, or the widening of an overflowed ±inf) means
    "anything": it becomes ``end`` (−inf for a lower, +inf for an upper endpoint),
    so the interval widens to the whole line and is never read as empty."""
    if np.ndim(x) == 0:
        return end if x != x else x
    t = x.sum()  # one pass, no temporary: NaN iff some entry is NaN (or inf − inf)
    if t != t:
        x[np.isnan(x)] = end
    return x


def _dn_(x):
    """:func:`_dn` in place (x is a fresh array)."""
    t = np.abs(x)
    t *= _C
    t += _TINY
    if x.ndim == 0:
        return _nan_to(x - t, _NINF)
    x -= t
    return _nan_to(x, _NINF)


def _up_(x):
    """:func:`_up` in place (x is a fresh array)."""
    t = np.abs(x)
    t *= _C
    t += _TINY
    if x.ndim == 0:
        return _nan_to(x + t, _PINF)
    x += t
    return _nan_to(x, _PINF)


def _zero_nan(p):
    """Endpoint products: 0·(±inf) is 0 (IEEE 1788).  An infinite endpoint bounds a
    set of finite reals, each of which times 0 is 0; operands never hold NaN
    (every result passes :func:`_nan_to`), so a NaN product is exactly 0·inf."""
    if np.ndim(p) == 0:
        return 0.0 if p != p else p
    t = p.sum()  # fast path, as in _nan_to
    if t != t:
        p[np.isnan(p)] = 0.0
    return p


class IA:
    """Arrays of intervals ``[lo, hi]`` (float64, broadcasting like NumPy).

    Endpoints are never NaN: a NaN produced by the arithmetic widens to −inf
    (lower) or +inf (upper), see :func:`_nan_to`."""

    __slots__ = ("lo", "hi")
    __array_ufunc__ = None  # ndarray op IA -> IA's reflected operator

    def __init__(self, lo, hi=None):
        lo = np.asarray(lo, dtype=np.float64)
        self.lo = lo
        self.hi = lo if hi is None else np.asarray(hi, dtype=np.float64)

    # -- construction / access
    @staticmethod
    def _as(o) -> IA:
        if isinstance(o, IA):
            return o
        if isinstance(o, int | float | np.floating | np.integer):
            f = float(o)
            if isinstance(o, int | np.integer) and int(f) != int(o):
                raise ValueError("integer constant not exact in float64")
            return IA(np.float64(f), np.float64(f))
        return IA(np.asarray(o, dtype=np.float64))

    def __getitem__(self, idx) -> IA:
        return IA(self.lo[idx], self.hi[idx])

    @property
    def shape(self):
        return np.broadcast_shapes(self.lo.shape, self.hi.shape)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"IA(lo={self.lo!r}, hi={self.hi!r})"

    # -- arithmetic (outward rounded)
    def __add__(self, o):
        if isinstance(o, DualIA):
            return NotImplemented
        o = IA._as(o)
        return IA(_dn_(self.lo + o.lo), _up_(self.hi + o.hi))

    __radd__ = __add__

    def __neg__(self):
        return IA(-self.hi, -self.lo)

    def __sub__(self, o):
        if isinstance(o, DualIA):
            return NotImplemented
        o = IA._as(o)
        return IA(_dn_(self.lo - o.hi), _up_(self.hi - o.lo))

    def __rsub__(self, o):
        if isinstance(o, DualIA):
            return NotImplemented
        return IA._as(o) - self

    def __mul__(self, o):
        if isinstance(o, DualIA):
            return NotImplemented
        o = IA._as(o)
        if o.hi is o.lo:  # thin right factor (data, constants, unit vectors)
            return self._mul_thin(o.lo)
        if self.hi is self.lo:
            return o._mul_thin(self.lo)
        a, b, c, d = self.lo, self.hi, o.lo, o.hi
        p = _zero_nan(a * c)
        q = _zero_nan(a * d)
        lo = np.minimum(p, q)
        hi = np.maximum(p, q)
        p = _zero_nan(np.multiply(b, c, out=p))
        np.minimum(lo, p, out=lo)
        np.maximum(hi, p, out=hi)
        p = _zero_nan(np.multiply(b, d, out=p))
        np.minimum(lo, p, out=lo)
        np.maximum(hi, p, out=hi)
        return IA(_dn_(lo), _up_(hi))

    def _mul_thin(self, c):
        p = _zero_nan(self.lo * c)
        q = _zero_nan(self.hi * c)
        lo = np.minimum(p, q)
        np.maximum(p, q, out=q)
        return IA(_dn_(lo), _up_(q))

    __rmul__ = __mul__

    def sqr(self) -> IA:
        a2 = self.lo * self.lo
        b2 = self.hi * self.hi
        lo = np.where(self.lo > 0, a2, np.where(self.hi < 0, b2, 0.0))
        return IA(np.maximum(_dn(lo), 0.0), _up(np.maximum(a2, b2)))

    def __pow__(self, n):
        if not isinstance(n, int | np.integer) or n < 0:
            raise TypeError("IA supports only non-negative integer powers")
        n = int(n)
        if n == 0:
            return IA(np.ones_like(self.lo))
        if n == 1:
            return self
        half = self ** (n // 2)
        sq = half.sqr()
        return sq if n % 2 == 0 else sq * self

    # -- set operations
    def intersect(self, o: IA) -> IA:
        return IA(np.maximum(self.lo, o.lo), np.minimum(self.hi, o.hi))

    def hull(self, o: IA) -> IA:
        return IA(np.minimum(self.lo, o.lo), np.maximum(self.hi, o.hi))

    def mag(self):
        """sup |x| (exact)."""
        return np.maximum(np.abs(self.lo), np.abs(self.hi))

    def empty(self):
        """Certainly empty: lo > hi (a NaN endpoint is never read as empty)."""
        return self.lo > self.hi


def ia_sum(terms) -> IA:
    """Sum of a sequence of IA (outward rounded at each addition)."""
    it = iter(terms)
    acc = next(it)
    for t in it:
        acc = acc + t
    return acc


def up_sum_sq(mags, axis) -> np.ndarray:
    """Upper bound of Σ mags² along ``axis`` (mags ≥ 0), rounded up at each step."""
    m = np.moveaxis(np.asarray(mags), axis, 0)
    acc = np.zeros(m.shape[1:])
    for k in range(m.shape[0]):
        acc = _up(acc + _up(m[k] * m[k]))
    return acc


def up_sqrt(x) -> np.ndarray:
    return _up(np.sqrt(x))


# --------------------------------------------------------------------------
# certified activation table


@dataclass(frozen=True)
class ActivationTable:
    """Certified tables of σ^{(k)} (k = 0, 1, 2) on the grid z_i = −Z + i·h.

    ``P[k]`` (N+1, 2): enclosure of σ^{(k)}(z_i); ``D[k]`` (N, 2): enclosure of
    σ^{(k+1)} over cell i = [z_i, z_{i+1}]; ``flag[k]``: (cell index, lo, hi)
    for each cell meeting a critical cell of σ^{(k)} (there σ^{(k)} need not be
    monotone; lo/hi enclose σ^{(k)} over the whole cell); ``tail_neg[k]``,
    ``tail_pos[k]``: enclosures of σ^{(k)} on (−∞, −Z] and [Z, ∞) (monotone).
    All endpoints are float64 values produced by mpmath.iv (53-bit, outward).
    """

    Z: float
    q: int  # h = 2**-q
    N: int
    P: tuple
    D: tuple
    flag: tuple
    tail_neg: tuple
    tail_pos: tuple
    d3_tails: tuple = ((-np.inf, np.inf), (-np.inf, np.inf))  # σ''' on the two tails
    _sparse: tuple = ()  # range-hull tables of D[2] (σ''' over cells), built on load

    @property
    def h(self) -> float:
        return math.ldexp(1.0, -self.q)

    def _index(self, a):
        """Cell index of each point a: −1 (tail below), 0..N−1, N (tail above)."""
        a = np.clip(np.nan_to_num(a, nan=0.0), -2.0 * self.Z, 2.0 * self.Z)
        i = np.floor(np.ldexp(a, self.q)).astype(np.int64) + self.N // 2  # exact
        return np.clip(i, -1, self.N)

    def point(self, k: int, a) -> IA:
        """Enclosure of σ^{(k)}(a) at float points a."""
        a = np.asarray(a, dtype=np.float64)
        i = self._index(a)
        inside = (i >= 0) & (i < self.N)
        ii = np.where(inside, i, 0)
        zi = np.ldexp((ii - self.N // 2).astype(np.float64), -self.q)  # exact grid point
        P, D = self.P[k], self.D[k]
        d = IA(a) - IA(zi)
        v = IA(P[ii, 0], P[ii, 1]) + IA(D[ii, 0], D[ii, 1]) * d
        tn, tp = self.tail_neg[k], self.tail_pos[k]
        lo = np.where(inside, v.lo, np.where(i < 0, tn[0], tp[0]))
        hi = np.where(inside, v.hi, np.where(i < 0, tn[1], tp[1]))
        return IA(lo, hi)

    def enclose(self, k: int, X: IA) -> IA:
        """Enclosure of σ^{(k)} over the intervals X."""
        va = self.point(k, X.lo)
        vb = self.point(k, X.hi)
        lo = np.minimum(va.lo, vb.lo)
        hi = np.maximum(va.hi, vb.hi)
        if self.flag[k]:
            ia = self._index(X.lo)
            ib = self._index(X.hi)
            for f, flo, fhi in self.flag[k]:
                m = (ia <= f) & (f <= ib)
                lo = np.where(m, np.minimum(lo, flo), lo)
                hi = np.where(m, np.maximum(hi, fhi), hi)
        bad = np.isnan(X.lo) | np.isnan(X.hi)
        if bad.any():
            lo = np.where(bad, -np.inf, lo)
            hi = np.where(bad, np.inf, hi)
        return IA(lo, hi)

    def enclose3(self, X: IA) -> IA:
        """Enclosure of σ''' over the intervals X: the hull of its cell enclosures
        (no monotonicity needed), by a range query on a sparse table."""
        mn, mx = self._sparse
        ia = self._index(X.lo)
        ib = self._index(X.hi)
        a = np.clip(ia, 0, self.N - 1)
        b = np.clip(ib, 0, self.N - 1)
        empty = (ib < 0) | (ia >= self.N)
        ln = np.maximum(b - a + 1, 1)
        lev = np.frexp(ln.astype(np.float64))[1] - 1  # floor(log2(len)), exact for ints
        off = b - (1 << lev) + 1
        lo = np.minimum(mn[lev, a], mn[lev, off])
        hi = np.maximum(mx[lev, a], mx[lev, off])
        lo = np.where(empty, np.inf, lo)
        hi = np.where(empty, -np.inf, hi)
        (nlo, nhi), (plo, phi) = self.d3_tails
        lo = np.where(ia < 0, np.minimum(lo, nlo), lo)
        hi = np.where(ia < 0, np.maximum(hi, nhi), hi)
        lo = np.where(ib >= self.N, np.minimum(lo, plo), lo)
        hi = np.where(ib >= self.N, np.maximum(hi, phi), hi)
        bad = np.isnan(X.lo) | np.isnan(X.hi)
        lo = np.where(bad, -np.inf, lo)
        hi = np.where(bad, np.inf, hi)
        return IA(lo, hi)


def _sparse_tables(D2):
    lo = D2[:, 0]
    hi = D2[:, 1]
    N = len(lo)
    levels = max(1, int(N).bit_length())
    mn = np.empty((levels, N))
    mx = np.empty((levels, N))
    mn[0], mx[0] = lo, hi
    for lev in range(1, levels):
        s = 1 << (lev - 1)
        mn[lev] = mn[lev - 1]
        mx[lev] = mx[lev - 1]
        mn[lev, : N - s] = np.minimum(mn[lev - 1, : N - s], mn[lev - 1, s:])
        mx[lev, : N - s] = np.maximum(mx[lev - 1, : N - s], mx[lev - 1, s:])
    return mn, mx


_TABLE_CELLS = 4096
_TABLE_VERSION = 2


def _f64_lo(x) -> float:
    from .intervals import lo

    v = lo(x)
    f = float(v)
    if f > v:  # pragma: no cover - 53-bit endpoints convert exactly
        f = math.nextafter(f, -math.inf)
    return f


def _f64_hi(x) -> float:
    from .intervals import hi

    v = hi(x)
    f = float(v)
    if f < v:  # pragma: no cover
        f = math.nextafter(f, math.inf)
    return f


def _build_table(ac) -> dict:
    from mpmath import iv

    from .intervals import NS, hi, hull, interval, lo

    enc = ac.enclosure
    Z = max(float(d.Z) for d in enc.decomps.values())
    q = int(round(math.log2(_TABLE_CELLS / (2 * Z))))
    N = int(round(2 * Z * 2**q))
    Zf = N / 2 * 2.0**-q
    fk = [getattr(enc._gen, f"d{k}_interval") for k in range(4)]
    grid = [math.ldexp(i - N // 2, -q) for i in range(N + 1)]
    out = {"Z": Zf, "q": q, "N": N}
    old = iv.prec
    iv.prec = 53
    try:
        for k in range(3):
            P = np.empty((N + 1, 2))
            for i, z in enumerate(grid):
                v = fk[k](iv.mpf(z), ns=NS)
                P[i] = (_f64_lo(v), _f64_hi(v))
            D = np.empty((N, 2))
            for i in range(N):
                v = fk[k + 1](interval(grid[i], grid[i + 1]), ns=NS)
                D[i] = (_f64_lo(v), _f64_hi(v))
            dec = enc.decomps[k]
            flags = []
            for c in dec.cells:
                i0 = max(0, int(math.floor(float(lo(c)) * 2**q)) + N // 2 - 1)
                i1 = min(N - 1, int(math.floor(float(hi(c)) * 2**q)) + N // 2 + 1)
                for i in range(i0, i1 + 1):
                    v = enc(k, interval(grid[i], grid[i + 1]))
                    flags.append((i, _f64_lo(v), _f64_hi(v)))
            tn = hull(fk[k](iv.mpf(grid[0]), ns=NS), dec.lim_neg)
            tp = hull(fk[k](iv.mpf(grid[-1]), ns=NS), dec.lim_pos)
            out[f"P{k}"] = P
            out[f"D{k}"] = D
            out[f"F{k}"] = np.array(sorted(set(flags)), dtype=np.float64).reshape(-1, 3)
            out[f"TN{k}"] = np.array([_f64_lo(tn), _f64_hi(tn)])
            out[f"TP{k}"] = np.array([_f64_lo(tp), _f64_hi(tp)])
            if not (np.all(np.isfinite(P)) and np.all(np.isfinite(D))):
                raise ValueError(f"activation table for derivative {k} is not finite")
        # σ''' on the tails: naive interval evaluation (if not finite: unbounded)
        tails = []
        for X in (iv.mpf(["-inf", -Zf]), iv.mpf([Zf, "+inf"])):
            try:
                v = fk[3](X, ns=NS)
                pair = (_f64_lo(v), _f64_hi(v))
                if any(math.isnan(x) for x in pair):
                    raise ValueError
            except (ValueError, ZeroDivisionError, OverflowError):
                pair = (-math.inf, math.inf)
            tails.append(pair)
        out["D3T"] = np.array(tails, dtype=np.float64)
    finally:
        iv.prec = old
    return out


@lru_cache(maxsize=16)
def activation_table(act) -> ActivationTable:
    """The certified screening table for ``act`` (name, Activation), cached on disk."""
    import io
    import os
    import tempfile

    from symbolic.codegen import _act_stem, cache_dir

    from .activation_constants import certify_activation

    ac = certify_activation(act)
    path = cache_dir() / f"{_act_stem(ac.activation.source)}.table{_TABLE_VERSION}.npz"
    data = None
    if path.exists():
        try:
            with np.load(path) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            data = None
    if data is None:
        data = _build_table(ac)
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in data.items()})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.getvalue())
        os.replace(tmp, path)
    N = int(data["N"])
    return ActivationTable(
        Z=float(data["Z"]), q=int(data["q"]), N=N,
        P=tuple(np.asarray(data[f"P{k}"]) for k in range(3)),
        D=tuple(np.asarray(data[f"D{k}"]) for k in range(3)),
        flag=tuple(tuple((int(r[0]), float(r[1]), float(r[2])) for r in np.asarray(data[f"F{k}"]))
                   for k in range(3)),
        tail_neg=tuple(tuple(float(v) for v in data[f"TN{k}"]) for k in range(3)),
        tail_pos=tuple(tuple(float(v) for v in data[f"TP{k}"]) for k in range(3)),
        d3_tails=tuple(tuple(float(v) for v in r) for r in np.asarray(data["D3T"])),
        _sparse=_sparse_tables(np.asarray(data["D2"])),
    )


# --------------------------------------------------------------------------
# rigorous spectral-norm bound, vectorized


def frobenius_upper(H: IA) -> np.ndarray:
    """Upper bound of ‖H‖_F ≥ ‖H‖₂ for every matrix in the interval matrices H (..., p, p)."""
    m = H.mag()
    flat = m.reshape(m.shape[:-2] + (-1,))
    return up_sqrt(up_sum_sq(flat, -1))


def _rowsum_sq(a):
    """Σ_k a[..., k]² with a fixed order of operations (batch-independent bits)."""
    acc = a[..., 0] * a[..., 0]
    for k in range(1, a.shape[-1]):
        acc = acc + a[..., k] * a[..., k]
    return acc


def _gram(B):
    """BᵀB for stacked matrices, summed in a fixed order (so that results do not
    depend on the batch a box is screened in: decisions are reproducible)."""
    acc = B[..., 0, :, None] * B[..., 0, None, :]
    for k in range(1, B.shape[-2]):
        acc = acc + B[..., k, :, None] * B[..., k, None, :]
    return acc


def _gamma(n: int) -> float:
    """An upper bound of γ_n = n·u/(1 − n·u), u = 2^-53 (Higham, Thm 3.5), with margin."""
    u = 2.0**-53
    return (n * u / (1 - n * u)) * (1 + 2.0**-40)


def spectral_upper(H: IA, squarings: int = 4, thresholds=None) -> np.ndarray:
    """Upper bound of ‖H‖₂ over interval matrices H (..., p, p).

    min( ‖|H|‖_F ,  b(M) + ‖R‖_F ) where M is a float matrix in H (the scaled
    midpoint), R ≥ |H − M| entrywise (‖H − M‖₂ ≤ ‖R‖₂ ≤ ‖R‖_F), and b(M) ≥ ‖M‖₂
    comes from s = ``squarings`` Gram steps in floating point with a priori
    error bounds: B_0 = M, B_k = fl(B_{k-1}ᵀ B_{k-1}), |B_k − B_{k-1}ᵀB_{k-1}| ≤
    E_k := γ_p |B_{k-1}|ᵀ|B_{k-1}| (+ underflow), so ‖B_{k-1}‖₂² = ‖B_{k-1}ᵀB_{k-1}‖₂ ≤
    ‖B_k‖₂ + ‖E_k‖_F, ending with ‖B_s‖₂ ≤ ‖B_s‖_F.  Every bound is rounded
    up.  With ``thresholds`` (broadcastable to H's batch shape), the midpoint
    bound is only computed where the Frobenius bound exceeds the threshold.
    """
    frob = frobenius_upper(H)
    out = frob.copy()
    sel = np.isfinite(frob)
    if thresholds is not None:
        sel &= frob > np.broadcast_to(thresholds, frob.shape)
    if not sel.any():
        return np.where(np.isnan(out), np.inf, out)
    Hs = H[sel]
    p = Hs.lo.shape[-1]
    M = 0.5 * Hs.lo + 0.5 * Hs.hi
    amax = np.max(np.abs(M), axis=(-2, -1))
    _, e = np.frexp(np.where(amax > 0, amax, 1.0))
    e = e.astype(np.int64)
    B = np.ldexp(M, -e[:, None, None])
    M = np.ldexp(B, e[:, None, None])  # the representative actually used (exact)
    R = np.maximum(_up(Hs.hi - M), _up(M - Hs.lo))
    rF = up_sqrt(up_sum_sq(R.reshape(R.shape[0], -1), -1))
    # fl(|B|ᵀ|B|) ≤ (1 + γ_p)|B|ᵀ|B|; the factor below covers both roundings
    g = _gamma(p) * (1 + 2 * _gamma(p))
    errs = []
    for _ in range(squarings):
        A = np.abs(B)
        Bn = _gram(B)
        E = _up(_up(_gram(A) * g) + p * 2.0**-1073)
        errs.append(up_sqrt(up_sum_sq(E.reshape(E.shape[0], -1), -1)))
        B = Bn
    b = up_sqrt(up_sum_sq(np.abs(B).reshape(B.shape[0], -1), -1))
    for k in range(squarings - 1, -1, -1):
        b = up_sqrt(_up(b + errs[k]))
    spec = _up(_up(np.ldexp(b, e)) + rF)
    spec = np.where(np.isfinite(spec), spec, np.inf)
    out[sel] = np.minimum(frob[sel], spec)
    return np.where(np.isnan(out), np.inf, out)


# --------------------------------------------------------------------------
# first-order interval automatic differentiation (for the third derivatives)


def _ex(a: IA) -> IA:
    """Append a gradient axis (length 1) for broadcasting against gradients."""
    return IA(a.lo[..., None], a.hi[..., None])


def _dsum(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class DualIA:
    """Interval value ``v`` (IA, shape S) with an interval gradient ``d`` (IA, shape
    S + (p,)) or None (constant).  Forward-mode AD through the *generated*
    polynomial templates: derivatives are never written by hand, they come
    from the chain rule applied by operator overloading."""

    __slots__ = ("v", "d")
    __array_ufunc__ = None

    def __init__(self, v: IA, d: IA | None = None):
        self.v = v
        self.d = d

    @staticmethod
    def _as(o) -> DualIA:
        if isinstance(o, DualIA):
            return o
        return DualIA(IA._as(o), None)

    def __getitem__(self, idx) -> DualIA:
        if not isinstance(idx, tuple):
            idx = (idx,)
        return DualIA(self.v[idx], None if self.d is None else self.d[idx + (slice(None),)])

    def __add__(self, o):
        o = DualIA._as(o)
        return DualIA(self.v + o.v, _dsum(self.d, o.d))

    __radd__ = __add__

    def __neg__(self):
        return DualIA(-self.v, None if self.d is None else -self.d)

    def __sub__(self, o):
        return self + (-DualIA._as(o))

    def __rsub__(self, o):
        return DualIA._as(o) - self

    def __mul__(self, o):
        o = DualIA._as(o)
        d = None
        if o.d is not None:
            d = _ex(self.v) * o.d
        if self.d is not None:
            d = _dsum(d, self.d * _ex(o.v))
        return DualIA(self.v * o.v, d)

    __rmul__ = __mul__

    def __pow__(self, n):
        if not isinstance(n, int | np.integer) or n < 0:
            raise TypeError("DualIA supports only non-negative integer powers")
        n = int(n)
        if n == 0:
            return DualIA(IA(np.ones_like(self.v.lo)), None)
        if n == 1:
            return self
        if n == 2:
            d = None if self.d is None else _ex(self.v * 2) * self.d
            return DualIA(self.v.sqr(), d)
        half = self ** (n // 2)
        sq = half * half
        return sq if n % 2 == 0 else sq * self


# --------------------------------------------------------------------------
# the vectorized interval trajectory

#: the vertex form is used up to this many parameters per neuron (2^p vertices)
VERTEX_MAX_P = 6


def _cell():
    return cell_functions()


def _s_enclosure(X, js, box_u: IA, u0, ru, narrow=None):
    """Enclosures of s_t = ⟨u, x_t⟩ (N, T) over the boxes, intersected with the
    ball's slab ⟨u0, x_t⟩ ± ru‖x_t‖ where ``narrow`` (N,) is True."""
    x = X[js]  # (N, T, d)
    d = x.shape[-1]
    xI = IA(x)
    s = ia_sum(box_u[:, None, k] * xI[:, :, k] for k in range(d))
    if u0 is not None and narrow is not None and narrow.any():
        s0 = ia_sum(IA(u0[:, None, k]) * xI[:, :, k] for k in range(d))
        nx = up_sum_sq(np.abs(x), -1)
        rnx = _up(up_sqrt(nx) * ru)
        cut = s.intersect(s0 + IA(-rnx, rnx))
        m = narrow[:, None]
        s = IA(np.where(m, cut.lo, s.lo), np.where(m, cut.hi, s.hi))
    return s


def certainly_in_ball(pu, u0, ru) -> np.ndarray:
    """Certified (N,) mask: ‖pu − u0‖₂ ≤ ru for float points pu (N, d), u0 (N, d)."""
    e = _up(np.abs(np.asarray(pu, float) - np.asarray(u0, float)))  # ≥ the exact |pu − u0|
    tot = up_sum_sq(e, -1)
    return tot <= _dn(np.float64(ru) * np.float64(ru))


def _expansion(blo, bhi, u0, ru):
    """(c, narrow): expansion points of the mean-value forms and the boxes whose
    s_t may be narrowed (c certainly in the ball; else the centre, no narrowing;
    see :mod:`certify.trusted.expansion`)."""
    centre = box_centres(blo, bhi)
    if u0 is None:
        return centre, np.zeros(len(blo), dtype=bool)
    c = expansion_points(blo, bhi, u0, ru)
    narrow = certainly_in_ball(c[:, 1:], u0, ru)
    return np.where(narrow[:, None], c, centre), narrow


def _assemble(p, ww, wu, uu, iu, ju, grad: bool):
    """Symmetric (N, p, p[, p]) array from the ww, wu and upper uu blocks."""
    N = ww.lo.shape[0]
    shp = (N, p, p) + ((p,) if grad else ())
    lo = np.empty(shp)
    hi = np.empty(shp)
    for arr, src in ((lo, "lo"), (hi, "hi")):
        arr[:, 0, 0] = getattr(ww, src)
        arr[:, 0, 1:] = getattr(wu, src)
        arr[:, 1:, 0] = getattr(wu, src)
        arr[:, 1 + iu, 1 + ju] = getattr(uu, src)
        arr[:, 1 + ju, 1 + iu] = getattr(uu, src)
    return IA(lo, hi)


def _stack_g(gw: IA, gu: IA) -> IA:
    return IA(np.concatenate([gw.lo[:, None], gu.lo], axis=1),
              np.concatenate([gw.hi[:, None], gu.hi], axis=1))


def _H_templates(st, s1, s2, w, h, xI, g, H):
    """H_t from the generated templates (works for IA and DualIA inputs); ``st``: the
    :class:`_StepSettings` of the call (templates ``cf``, uu-block indices ``iu, ju``)."""
    cf, iu, ju = st.cf, st.iu, st.ju
    gw, gu = g[:, 0], g[:, 1:]
    ww = cf.H_ww(s1, s2, w, h, gw, H[:, 0, 0], ns=np)
    wu = cf.H_wu(s1[:, None], s2[:, None], w[:, None], h[:, None], xI, gw[:, None], gu,
                 H[:, 0, 1:], ns=np)
    uu = cf.H_uu(s1[:, None], s2[:, None], w[:, None], xI[:, iu], xI[:, ju], gu[:, iu],
                 gu[:, ju], H[:, 1 + iu, 1 + ju], ns=np)
    return ww, wu, uu


def _signs(p):
    return np.array([[1.0 if (v >> k) & 1 else -1.0 for k in range(p)] for v in range(2**p)])


def vertex_norm_g(a: IA, Hb: IA, rho) -> np.ndarray:
    """max over the vertices s ∈ {±1}^p of sup ‖a + Σ_k s_k ρ_k Hb[:, :, k]‖₂.

    For θ in the box, g(θ) = g(c) + Σ_k δ_k ∂_k g(ξ) with |δ_k| ≤ ρ_k, ∂_k g(ξ) ∈ Hb[:, :, k]
    (mean value theorem per entry); for each realisation the norm is convex in
    δ, so its max over the box [−ρ, ρ] is at a vertex.  Second order accurate.
    """
    N, p = a.lo.shape
    P = Hb * IA(rho[:, None, :])  # (N, p, p): column k scaled by ρ_k
    best = np.zeros(N)
    for s in _signs(p):
        v = a
        for k in range(p):
            v = v + (P[:, :, k] if s[k] > 0 else -P[:, :, k])
        best = np.maximum(best, up_sqrt(up_sum_sq(v.mag(), -1)))
    return best


def vertex_norm_H(A: IA, dH: IA, rho, thresholds=None) -> np.ndarray:
    """max over vertices of a rigorous ‖A + Σ_k s_k ρ_k dH[..., k]‖₂ bound (as above)."""
    N, p = A.lo.shape[:2]
    P = dH * IA(rho[:, None, None, :])
    S = _signs(p)
    V = len(S)
    lo = np.broadcast_to(A.lo, (V, N, p, p)).copy()
    hi = np.broadcast_to(A.hi, (V, N, p, p)).copy()
    acc = IA(lo, hi)
    for k in range(p):
        sk = S[:, k][:, None, None, None] > 0
        acc = acc + IA(np.where(sk, P.lo[None, ..., k], -P.hi[None, ..., k]),
                       np.where(sk, P.hi[None, ..., k], -P.lo[None, ..., k]))
    thr = None if thresholds is None else np.broadcast_to(thresholds, (V, N))
    # entries skipped by spectral_upper (Frobenius bound ≤ threshold) keep that
    # bound, which is valid
    spec = spectral_upper(acc, thresholds=thr)
    return np.max(spec, axis=0)


def screen_bounds(table: ActivationTable, X, js, blo, bhi, u0, ru, **kw):
    """Rigorous upper bounds of ‖g_t‖₂ and ‖H_t‖₂ over boxes (:func:`_screen_bounds`).

    ``kw``: the fields of :class:`ScreenSettings` after ``table`` and ``ru``.
    Overflow to ±inf and the NaN of inf − inf or 0·inf are part of the
    arithmetic here (:func:`_nan_to`, :func:`_zero_nan`), not errors."""
    s = ScreenSettings(table, ru, **kw)
    with np.errstate(invalid="ignore", over="ignore"):
        return _screen_bounds(X, js, blo, bhi, u0, s)


@dataclass(frozen=True, slots=True)
class ScreenSettings:
    """What is fixed across one :func:`screen_bounds` call (see :func:`_screen_bounds`)."""

    table: ActivationTable
    ru: float  # ≥ the ball radius
    thresholds_L: object = None  # (T,) or (N, T)
    thresholds_B: object = None
    vertex: bool = True
    centre: bool = False
    dH_sup: object = None  # (lo, hi) enclosures of ∂H over supersets, (N, T, p, p, p) each
    return_dH: bool = False
    # (N, T, p): per coordinate k, ‖|∂H[..., k]|‖_F of the enclosure (observed floats, for
    # choosing where to split; not an enclosure of anything)
    dH_weights: bool = False


def _screen_bounds(X, js, blo, bhi, u0, s: ScreenSettings):
    """Rigorous upper bounds of ‖g_t‖₂ and ‖H_t‖₂ over boxes, for all t.

    X: (n, T, d) data; js: (N,) sample index of each item; blo, bhi: (N, 1+d)
    box corners (coordinate 0 is w, then u_1..u_d); u0: (N, d) ball centres
    and ``s.ru`` a float ≥ the ball radius (s_t = ⟨u, x_t⟩ is intersected with
    ⟨u0, x_t⟩ ± ru‖x_t‖, for the boxes that hold a point c certainly in the
    ball: :mod:`certify.trusted.expansion`); ``u0=None`` skips that.  ``s.dH_sup``: (lo, hi)
    enclosures of ∂H over supersets, computed with the same u0, ru.

    Enclosures: naive interval evaluation of the generated templates,
    intersected with mean value forms about c (else the box centre) for z, h, g and
    H (the gradient of H, a third derivative, by interval forward-mode AD
    through the templates).  Norms: min of the plain interval bound and the
    vertex form (:func:`vertex_norm_g`, :func:`vertex_norm_H`).
    ``s.thresholds_L``/``s.thresholds_B`` (T,) or (N, T): the costlier forms are computed
    only for items whose cheap bound exceeds them.  Returns (UL, UB), each (N, T)
    (then CL, CB with ``s.centre``, then (∂H lo, ∂H hi) with ``s.return_dH``, then the
    (N, T, p) weights with ``s.dH_weights``).
    """
    X = np.asarray(X, dtype=np.float64)
    js = np.asarray(js)
    blo = np.asarray(blo, dtype=np.float64)
    bhi = np.asarray(bhi, dtype=np.float64)
    u0 = None if u0 is None else np.asarray(u0, float)
    c, narrow = _expansion(blo, bhi, u0, s.ru)
    if s.dH_sup is not None and u0 is not None and not narrow.all():
        # ∂H over the superset holds only where it was narrowed: boxes without
        # an expansion point certainly in the ball get their own enclosure
        return _split_rows(~narrow, X, js, blo, bhi, u0, s)
    st = _step_settings(s, X, js, blo, bhi, u0, c, narrow)
    N, p, T = st.N, st.p, X.shape[1]
    res = _Results(N, T, p, s)
    h = IA(np.zeros(N))
    g = IA(np.zeros((N, p)))
    H = IA(np.zeros((N, p, p)))
    dH = IA(np.zeros((N, p, p, p)))
    ctr = _Centre(None, IA(np.zeros(N)), IA(np.zeros((N, p))), IA(np.zeros((N, p, p))))
    for t in range(T):
        x = st.Xj[:, t, :]
        xI = IA(x)
        ctr = _centre_step(st, xI, st.Sc[:, t], ctr)
        if s.dH_sup is not None:  # dH: the superset's ∂H, an enclosure over the box too
            g, H, dH = _cheap_step(st, s.dH_sup, t, ctr)
        else:
            h, g, H, dH = _box_step(st, x, xI, st.S[:, t], (h, g, H, dH), ctr)
        res.put_dH(t, dH)
        res.UL[:, t], res.UB[:, t] = _norms(st, s, t, g, H, dH, ctr.g, ctr.H)
        if s.centre:
            res.put_centre(t, ctr.g, ctr.H)
    return res.out()


@dataclass(frozen=True, slots=True)
class _StepSettings:
    """What every step of one :func:`_screen_bounds` call reads, built once: the
    generated templates, the table, and the boxes (w, B − c, ρ = |B − c|, c's w,
    s_t over B and at c, the items' data)."""

    cf: object
    table: ActivationTable
    N: int
    p: int
    iu: np.ndarray  # upper-triangle indices of the uu block
    ju: np.ndarray
    use_vertex: bool
    w: IA
    w_d: DualIA  # w with gradient e_0
    cw: IA
    dB: IA  # B − c, outward
    rho: np.ndarray
    S: IA  # s_t over the boxes, (N, T)
    Sc: IA  # s_t at c
    Xj: np.ndarray  # (N, T, d)


def _step_settings(s: ScreenSettings, X, js, blo, bhi, u0, c, narrow) -> _StepSettings:
    N, p = blo.shape
    box = IA(blo, bhi)
    w = box[:, 0]
    dB = box - IA(c)  # B − c, outward
    e0 = np.zeros((N, p))
    e0[:, 0] = 1.0
    iu, ju = np.triu_indices(p - 1)
    return _StepSettings(
        cf=_cell(), table=s.table, N=N, p=p, iu=iu, ju=ju,
        use_vertex=s.vertex and p <= VERTEX_MAX_P, w=w, w_d=DualIA(w, IA(e0)),
        cw=IA(c[:, 0]), dB=dB, rho=dB.mag(),
        S=_s_enclosure(X, js, box[:, 1:], u0, s.ru, narrow),
        Sc=_s_enclosure(X, js, IA(c[:, 1:]), None, s.ru), Xj=X[js])


class _Centre(NamedTuple):
    """One step of the thin trajectory at the expansion points c."""

    z: IA | None
    h: IA
    g: IA
    H: IA


def _centre_step(st: _StepSettings, xI, Sct, prev: _Centre) -> _Centre:
    """z_t, h_t, g_t, H_t at c from the previous step ``prev``."""
    cf, table, cw, hc, gc = st.cf, st.table, st.cw, prev.h, prev.g
    zc = cf.z(cw, hc, Sct, ns=np)
    C0 = table.enclose(0, zc)
    C1 = table.enclose(1, zc)
    C2 = table.enclose(2, zc)
    gc_new = _stack_g(cf.g_w(C1, cw, hc, gc[:, 0], ns=np),
                      cf.g_u(C1[:, None], cw[:, None], xI, gc[:, 1:], ns=np))
    Hc_new = _assemble(st.p, *_H_templates(st, C1, C2, cw, hc, xI, gc, prev.H), st.iu, st.ju,
                       grad=False)
    return _Centre(zc, C0, gc_new, Hc_new)


def _cheap_step(st: _StepSettings, dH_sup, t, ctr: _Centre):
    """(g_t, H_t, ∂H_t) over the boxes from ∂H over a superset (no box trajectory)."""
    dB, p = st.dB, st.p
    dH = IA(dH_sup[0][:, t], dH_sup[1][:, t])
    H = ctr.H + ia_sum(dH[..., k] * dB[:, None, None, k] for k in range(p))
    g = ctr.g + ia_sum(H[:, :, k] * dB[:, k:k + 1] for k in range(p))
    return g, H, dH


def _norms(st: _StepSettings, s: ScreenSettings, t, g, H, dH, gc, Hc):
    """(uL, uB) (N,): upper bounds of ‖g_t‖₂, ‖H_t‖₂ over the boxes at step t."""
    uL = up_sqrt(up_sum_sq(g.mag(), -1))
    tB = None if s.thresholds_B is None else np.asarray(s.thresholds_B)[..., t]
    tL = None if s.thresholds_L is None else np.asarray(s.thresholds_L)[..., t]
    uB = spectral_upper(H, thresholds=tB)
    if st.use_vertex:
        rho = st.rho
        selL = np.isfinite(uL) if tL is None else uL > tL
        if selL.any():
            v = vertex_norm_g(gc[selL], H[selL], rho[selL])
            uL[selL] = np.minimum(uL[selL], v)
        selB = np.isfinite(uB) if tB is None else uB > tB
        if selB.any():
            v = vertex_norm_H(Hc[selB], dH[selB], rho[selB],
                              None if tB is None else np.broadcast_to(tB, uB.shape)[selB])
            uB[selB] = np.minimum(uB[selB], v)
    return uL, uB


class _Results:
    """The outputs of one :func:`_screen_bounds` call, filled step by step."""

    __slots__ = ("UL", "UB", "CL", "CB", "dH_lo", "dH_hi", "W")

    def __init__(self, N, T, p, s: ScreenSettings):
        self.UL = np.empty((N, T))
        self.UB = np.empty((N, T))
        self.CL = np.empty((N, T)) if s.centre else None
        self.CB = np.empty((N, T)) if s.centre else None
        self.dH_lo = np.empty((N, T, p, p, p)) if s.return_dH else None
        self.dH_hi = np.empty((N, T, p, p, p)) if s.return_dH else None
        self.W = np.empty((N, T, p)) if s.dH_weights else None

    def put_dH(self, t, dH: IA):
        if self.dH_lo is not None:
            self.dH_lo[:, t], self.dH_hi[:, t] = dH.lo, dH.hi
        if self.W is not None:
            mag = np.maximum(np.abs(dH.lo), np.abs(dH.hi))  # (N, p, p, p)
            self.W[:, t] = np.sqrt(np.sum(mag * mag, axis=(1, 2)))

    def put_centre(self, t, gc: IA, Hc: IA):
        """Observed ‖g_t‖₂, ‖H_t‖₂ at the midpoints of the enclosures at c."""
        gm = 0.5 * gc.lo + 0.5 * gc.hi
        self.CL[:, t] = np.sqrt(_rowsum_sq(gm))
        Hm = 0.5 * Hc.lo + 0.5 * Hc.hi
        ok = np.all(np.isfinite(Hm), axis=(1, 2))
        self.CB[:, t] = 0.0
        if ok.any():
            self.CB[ok, t] = np.max(np.abs(np.linalg.eigvalsh(Hm[ok])), axis=-1)

    def out(self) -> tuple:
        self.UL[~np.isfinite(self.UL)] = np.inf
        self.UB[~np.isfinite(self.UB)] = np.inf
        out = (self.UL, self.UB)
        if self.CL is not None:
            out = out + (self.CL, self.CB)
        if self.dH_lo is not None:
            out = out + ((self.dH_lo, self.dH_hi),)
        if self.W is not None:
            out = out + (self.W,)
        return out


def _rows(s: ScreenSettings, sel, N) -> ScreenSettings:
    """The settings ``s`` restricted to rows ``sel`` (of N)."""
    change = {}
    for k in ("thresholds_L", "thresholds_B"):
        v = getattr(s, k)
        if v is not None and np.ndim(v) == 2 and np.shape(v)[0] == N:
            change[k] = np.asarray(v)[sel]
    if s.dH_sup is not None:
        change["dH_sup"] = (s.dH_sup[0][sel], s.dH_sup[1][sel])
    return replace(s, **change)


def _split_rows(own, X, js, blo, bhi, u0, s: ScreenSettings):
    """:func:`_screen_bounds` with the rows ``own`` computed without ``dH_sup``."""
    N = len(blo)
    js = np.asarray(js)
    parts = []
    for sel, cheap in ((np.nonzero(own)[0], False), (np.nonzero(~own)[0], True)):
        if not len(sel):
            continue
        k = _rows(s, sel, N)
        if not cheap:
            k = replace(k, dH_sup=None)
        parts.append((sel, _screen_bounds(X, js[sel], blo[sel], bhi[sel], u0[sel], k)))
    n_out = len(parts[0][1])
    res = []
    for i in range(n_out):
        first = parts[0][1][i]
        if isinstance(first, tuple):  # (∂H lo, ∂H hi) of return_dH
            res.append(tuple(_stack_rows(N, [(sel, r[i][j]) for sel, r in parts])
                             for j in range(2)))
        else:
            res.append(_stack_rows(N, [(sel, r[i]) for sel, r in parts]))
    return tuple(res)


def _stack_rows(N, pieces):
    shape = (N,) + pieces[0][1].shape[1:]
    out = np.empty(shape, dtype=pieces[0][1].dtype)
    for sel, v in pieces:
        out[sel] = v
    return out


def _box_step(st: _StepSettings, x, xI, St, state, ctr: _Centre):
    """One step over the boxes with first-order AD: (h, g, H, ∂H) over B from the
    previous ``state`` (h, g, H, ∂H) and this step at c (``ctr``)."""
    cf, table, dB, p, w_d = st.cf, st.table, st.dB, st.p, st.w_d
    h, g, H, dH = state
    # ---- the box: z with its gradient, then σ^{(k)} over z
    sgrad = np.zeros((st.N, p))
    sgrad[:, 1:] = x
    z_d = cf.z(w_d, DualIA(h, g), DualIA(St, IA(sgrad)), ns=np)
    dz = z_d.d
    z = z_d.v.intersect(ctr.z + ia_sum(dz[:, k] * dB[:, k] for k in range(p)))
    S0 = table.enclose(0, z)
    S1 = table.enclose(1, z)
    S2 = table.enclose(2, z)
    S3 = table.enclose3(z)
    s1_d = DualIA(S1, _ex(S2) * dz)
    s2_d = DualIA(S2, _ex(S3) * dz)
    ww, wu, uu = _H_templates(st, s1_d, s2_d, w_d, DualIA(h, g), xI, DualIA(g, H),
                              DualIA(H, dH))
    H_new = _assemble(p, ww.v, wu.v, uu.v, st.iu, st.ju, grad=False)
    dH_new = _assemble(p, ww.d, wu.d, uu.d, st.iu, st.ju, grad=True)
    # mean value forms about c (each an enclosure; intersections stay enclosures)
    H_new = H_new.intersect(ctr.H + ia_sum(dH_new[..., k] * dB[:, None, None, k]
                                           for k in range(p)))
    w = st.w
    g_new = _stack_g(cf.g_w(S1, w, h, g[:, 0], ns=np),
                     cf.g_u(S1[:, None], w[:, None], xI, g[:, 1:], ns=np))
    g_new = g_new.intersect(ctr.g + ia_sum(H_new[:, :, k] * dB[:, k:k + 1]
                                           for k in range(p)))
    h_new = S0.intersect(ctr.h + ia_sum(g_new[:, k] * dB[:, k] for k in range(p)))
    if (h_new.empty().any() or g_new.empty().any() or H_new.empty().any()):
        raise ArithmeticError("empty intersection of enclosures (unsound arithmetic)")
    return h_new, g_new, H_new, dH_new


# --------------------------------------------------------------------------
# observed point values (floats) for the lower bounds


def point_values(act_module, X, js, theta, *, with_derivatives: bool = False):
    """Float64 ‖g_t‖₂ and ‖H_t‖₂ (N, T) at points θ (N, 1+d) for samples js.

    *Observed* numbers (round to nearest, libm activations); they select the
    lower-bound points, whose values are then confirmed by the trusted engine.
    With ``with_derivatives`` also returns g (N, T, p), H (N, T, p, p).
    """
    cf = _cell()
    X = np.asarray(X, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    N, p = theta.shape
    d = p - 1
    T = X.shape[1]
    w = theta[:, 0]
    u = theta[:, 1:]
    h = np.zeros(N)
    g = np.zeros((N, p))
    H = np.zeros((N, p, p))
    G = np.empty((N, T, p)) if with_derivatives else None
    HH = np.empty((N, T, p, p)) if with_derivatives else None
    nL = np.empty((N, T))
    nB = np.empty((N, T))
    iu, ju = np.triu_indices(d)
    for t in range(T):
        x = X[js, t, :]
        s = u[:, 0] * x[:, 0]
        for k in range(1, u.shape[1]):
            s = s + u[:, k] * x[:, k]
        z = cf.z(w, h, s, ns=np)
        s0 = act_module.d0_array(z, ns=np)
        s1 = act_module.d1_array(z, ns=np)
        s2 = act_module.d2_array(z, ns=np)
        gw, gu = g[:, 0], g[:, 1:]
        Hn = np.empty((N, p, p))
        Hn[:, 0, 0] = cf.H_ww(s1, s2, w, h, gw, H[:, 0, 0], ns=np)
        hwu = cf.H_wu(s1[:, None], s2[:, None], w[:, None], h[:, None], x, gw[:, None], gu,
                      H[:, 0, 1:], ns=np)
        Hn[:, 0, 1:] = hwu
        Hn[:, 1:, 0] = hwu
        huu = cf.H_uu(s1[:, None], s2[:, None], w[:, None], x[:, iu], x[:, ju], gu[:, iu],
                      gu[:, ju], H[:, 1 + iu, 1 + ju], ns=np)
        Hn[:, 1 + iu, 1 + ju] = huu
        Hn[:, 1 + ju, 1 + iu] = huu
        gn = np.empty((N, p))
        gn[:, 0] = cf.g_w(s1, w, h, gw, ns=np)
        gn[:, 1:] = cf.g_u(s1[:, None], w[:, None], x, gu, ns=np)
        h, g, H = s0, gn, Hn
        nL[:, t] = np.sqrt(_rowsum_sq(g))
        nB[:, t] = np.max(np.abs(np.linalg.eigvalsh(H)), axis=-1)
        if with_derivatives:
            G[:, t] = g
            HH[:, t] = H
    if with_derivatives:
        return nL, nB, G, HH
    return nL, nB
