"""Symmetric initialization and the radius of an iterate (THEORY §2).

For ``i < m/2``: ``c_i`` Rademacher, ``u_i(0) ~ N(0, I_d)``,
``w_i(0) ~ Unif[-α₀, α₀]``; the second half copies θ and negates ``c``, so
``f_t(X; Θ(0)) = m^{-1/2} Σ_i c_i h_t^i = 0`` (the two copies of a neuron have
bit-identical states and opposite signs).

Draw order (part of the reproducibility contract): one
``numpy.random.default_rng(seed)`` draws ``c`` (m/2 signs), then ``U`` (an
(m/2, d) standard normal block), then ``w`` (m/2 uniforms).

``|w_i(0)| ≤ α₀`` holds *exactly*: when α₀ is given as a decimal (a
:class:`certify.cases.case.DecimalValue` or a :class:`fractions.Fraction`) the draws
are clipped to the largest double not above the exact decimal, so a certifier
that uses the exact α₀ (e.g. the interval of the text ``"0.1"``) is sound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["Init", "symmetric_init", "ball_radius", "float_below"]


@dataclass(frozen=True, eq=False)
class Init:
    """Initial parameters: ``w0`` (m,), ``U0`` (m, d), ``c`` (m,) in {+1, −1}, all float64."""

    w0: np.ndarray
    U0: np.ndarray
    c: np.ndarray

    @property
    def width(self) -> int:
        return int(self.w0.shape[0])

    @property
    def dim(self) -> int:
        return int(self.U0.shape[1])


def _exact(x) -> Fraction:
    """The exact rational a number stands for (decimal text for DecimalValue)."""
    exact = getattr(x, "exact", None)
    if exact is not None:
        return Fraction(exact)
    return Fraction(x)


def float_below(x) -> float:
    """The largest double ≤ the exact value of ``x`` (a DecimalValue, Fraction, int or float)."""
    q = _exact(x)
    f = float(q)
    if Fraction(f) > q:
        f = math.nextafter(f, -math.inf)
    return f


def symmetric_init(m: int, d: int, alpha0, seed: int) -> Init:
    """Symmetric initialization of width ``m`` (even) in input dimension ``d``."""
    if m <= 0 or m % 2:
        raise ValueError(f"width must be a positive even integer, got {m}")
    if d <= 0:
        raise ValueError(f"dimension must be positive, got {d}")
    if _exact(alpha0) < 0:
        raise ValueError(f"alpha0 must be nonnegative, got {alpha0}")
    half = m // 2
    rng = np.random.default_rng(seed)
    c_half = (2 * rng.integers(0, 2, size=half) - 1).astype(np.float64)
    U_half = rng.standard_normal((half, d))
    a = float(alpha0)
    w_half = rng.uniform(-a, a, size=half) if a > 0 else np.zeros(half)
    a_lo = float_below(alpha0)
    w_half = np.clip(w_half, -a_lo, a_lo)
    w0 = np.concatenate([w_half, w_half])
    U0 = np.concatenate([U_half, U_half], axis=0)
    c = np.concatenate([c_half, -c_half])
    return Init(w0=w0, U0=U0, c=c)


def ball_radius(w, U, init: Init, m: int | None = None) -> tuple[float, float]:
    """The smallest ``(ρ_w, ρ_u)`` with ``Θ = (w, U) ∈ Ω_ρ`` around ``init`` (observed, float).

    ``ρ_w = √m · max_i |w_i − w_i(0)|``, ``ρ_u = √m · max_i ‖u_i − u_i(0)‖₂``.
    ``w``, ``U`` may be arrays of any array-API namespace (the result is two
    Python floats).
    """
    try:
        from array_api_compat import array_namespace, device

        xp = array_namespace(w, U)
        w0 = xp.asarray(init.w0, device=device(w))
        U0 = xp.asarray(init.U0, device=device(U))
    except ImportError:  # pragma: no cover - array-api-compat is a core dependency
        xp, w0, U0 = np, init.w0, init.U0
    if m is None:
        m = init.width
    dw = float(xp.max(xp.abs(w - w0)))
    dU = float(xp.max(xp.sqrt(xp.sum((U - U0) ** 2, axis=1))))
    s = math.sqrt(m)
    return dw * s, dU * s
