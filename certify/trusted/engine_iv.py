"""The mpmath.iv engine: the kernels of :mod:`certify.trusted.engine` in mpmath.iv.

:class:`IVSystem` is the number system (mpmath.iv at 53 bits, with the tight
activation enclosures of :mod:`certify.trusted.intervals`); :class:`IVEngine`
is the default trusted engine ("mpmath.iv") behind the interface every engine
shares (``box``, ``box_from``, ``norm_bounds``, ``box_bounds``, ``point``,
``point_lower``, ``membership``, ``name``).  It imports the shared base only;
the python-flint engine (:mod:`certify.trusted.engine_flint`) does the same,
and neither imports the other.
"""

from __future__ import annotations

from mpmath import iv

from .engine import (
    Dual,
    EngineBase,
    NumberSystem,
    _cell,
    _d3_enclosure,
    _isect,
    enclose_box,
    enclose_box_from,
    enclose_point,
    norm_bounds,
    point_lower,
)
from .intervals import NS, hi, interval, lo, upper_abs

__all__ = ["IVSystem", "IVEngine"]


class IVSystem(NumberSystem):
    """mpmath.iv with the tight activation enclosure of :mod:`certify.trusted.intervals`."""

    name = "mpmath.iv"
    ns = NS
    Dual = Dual

    def __init__(self, enc):
        self.enc = enc
        self.cf = self.cf_thin = _cell()
        self.zero = iv.mpf(0)
        self.one = iv.mpf(1)

    def context(self):
        from contextlib import nullcontext

        return nullcontext()

    @staticmethod
    def num(v):
        """Exact float/int → thin interval."""
        return iv.mpf(v)

    @staticmethod
    def interval(a, b):
        return interval(a, b)

    @staticmethod
    def mag(x):
        """Thin interval holding sup |x| (exact)."""
        return iv.mpf(upper_abs(x))

    @staticmethod
    def coerce(r):
        """A radius given as an interval or a number."""
        return r if hasattr(r, "a") else iv.mpf(r)

    @staticmethod
    def sym(r):
        """[−sup r, sup r]."""
        return iv.mpf([-hi(r), hi(r)])

    @staticmethod
    def sqrt(x):
        return iv.sqrt(x)

    @staticmethod
    def isect(a, b):
        return _isect(a, b)

    @staticmethod
    def certainly_le(a, b) -> bool:
        return bool(hi(a) <= lo(b))

    def act(self, k, z):
        return self.enc(k, z)

    def naive(self, k, z):
        return self.enc.naive(k, z)

    def d3(self, z, d3=None):
        return _d3_enclosure(d3 if d3 is not None else self.enc._gen.d3_interval, z)


class IVEngine(EngineBase):
    """The trusted engine: mpmath.iv with the tight activation enclosures."""

    name = "mpmath.iv"

    def __init__(self, act):
        from .activation_constants import certify_activation

        self.ac = certify_activation(act)
        self.enc = self.ac.enclosure
        self.system = IVSystem(self.enc)

    def box(self, box_lo, box_hi, xs, u0, ru, steps):
        """Own-dual enclosures over the box (list of :class:`StepEnclosure`)."""
        return enclose_box(self.system, box_lo, box_hi, xs, u0, ru, steps)

    def box_from(self, box_lo, box_hi, xs, dH_sup, steps, u0=None, ru=None):
        """Cheap enclosures over the box from ∂H over a superset (see :func:`enclose_box_from`)."""
        return enclose_box_from(self.system, box_lo, box_hi, xs, dH_sup, steps, u0, ru)

    def norm_bounds(self, st, need_L=True, need_B=True, vertex=True):
        """Upper bounds (mpf) of ‖g_t‖₂, ‖H_t‖₂ over the box of ``st`` (:func:`norm_bounds`)."""
        return norm_bounds(st, need_L, need_B, vertex)

    def point(self, theta, xs, steps):
        return enclose_point(self.system, theta, xs, steps)

    def point_lower(self, theta, xs, steps, eigvecs=None):
        sts = self.point(theta, xs, steps)
        out = []
        for t, st in enumerate(sts):
            out.append(point_lower(st, None if eigvecs is None else eigvecs[t]))
        return out

    def membership(self, theta, w0, u0, rw, ru) -> bool:
        """Certified: θ = (w, u) satisfies |w − w0| ≤ rw and ‖u − u0‖ ≤ ru."""
        dw = iv.mpf(theta[0]) - iv.mpf(w0)
        if hi(abs(dw)) > lo(rw):
            return False
        acc = iv.mpf(0)
        for a, b in zip(theta[1:], u0, strict=True):
            e = iv.mpf(a) - iv.mpf(b)
            acc = acc + e * e
        return bool(hi(acc) <= lo(ru * ru))
