"""The ball Ω_ρ around the initialization and the Euclidean projection onto it (THEORY §2-3).

``Ω_ρ = {Θ : |w_i − w_i(0)| ≤ ρ_w/√m, ‖u_i − u_i(0)‖₂ ≤ ρ_u/√m for all i}`` is a
product of per-neuron intervals × balls, so the Euclidean projection is per
neuron: clip ``w_i``, shrink ``u_i − u_i(0)`` radially.  Array API throughout
(NumPy, torch, CuPy, array_api_strict).  Observed numbers (floating point).

Floating-point care, so that a projected point *tests* as inside the ball with
the same arithmetic :func:`radius` and :func:`contains` use:

* ``w`` is clipped to ``[w0 − r, w0 + r]`` as computed (``r = ρ_w/√m``);
  clipping twice against the same bounds is exactly idempotent.
* a shrunk ``u_i − u_i(0)`` is rescaled until the computed norm of
  ``u_i' − u_i(0)`` is ``≤ r`` (within a few ulps of ``u_i(0)`` of the exact
  projection), and rows already inside are left bit-for-bit unchanged, so the
  projection is exactly idempotent.
"""

from __future__ import annotations

import math

import array_api_compat

__all__ = ["project", "radius", "contains", "row_norms"]


def _xp(*arrays):
    return array_api_compat.array_namespace(*arrays)


def row_norms(D):
    """‖D_i‖₂ for each row of an (m, d) array."""
    xp = _xp(D)
    return xp.sqrt(xp.sum(D * D, axis=1))


def project(w, U, w0, U0, rho_w: float, rho_u: float):
    """Euclidean projection of Θ = (w, U) onto Ω_ρ around (w0, U0): returns (w', U').

    Per neuron: ``w_i' = clip(w_i, w0_i − ρ_w/√m, w0_i + ρ_w/√m)`` and
    ``u_i' = u0_i + (u_i − u0_i)·min(1, (ρ_u/√m)/‖u_i − u0_i‖)``.
    """
    xp = _xp(w, U, w0, U0)
    rho_w, rho_u = float(rho_w), float(rho_u)
    if rho_w < 0 or rho_u < 0 or math.isnan(rho_w) or math.isnan(rho_u):
        raise ValueError(f"radii must be nonnegative, got rho_w={rho_w}, rho_u={rho_u}")
    m = w.shape[0]
    s = math.sqrt(m)
    rw, ru = rho_w / s, rho_u / s
    if math.isinf(rw):
        wp = w
    else:
        wp = xp.clip(w, w0 - rw, w0 + rw)
    if math.isinf(ru):
        return wp, U
    D = U - U0
    nrm = row_norms(D)
    outside = nrm > ru
    if ru == 0.0:
        Dp = xp.where(outside[:, None], xp.zeros_like(D), D)
        return wp, U0 + Dp
    # rows inside are untouched: scale 1 exactly
    scale = xp.where(outside, ru / xp.where(outside, nrm, xp.ones_like(nrm)), xp.ones_like(nrm))
    Dp = D * scale[:, None]
    Up = U0 + Dp
    # enforce the computed test  ‖U' − U0‖ ≤ ru: U0 + D' rounds at the scale of
    # U0, which may exceed ru by a few of its ulps; shrink rows still outside by a
    # margin that doubles until the test passes (≈ ulp(U0)/ru relative at most)
    margin = 2.0 ** -52
    while True:
        nrm2 = row_norms(Up - U0)
        over = nrm2 > ru
        if not bool(xp.any(over)):
            return wp, Up
        if margin > 0.25:
            # ru is within a few ulps of U0: the points of the ball that test as
            # inside are too sparse for a shrink to land on; the centre is inside
            # and within ru (≈ those ulps) of the exact projection
            return wp, xp.where(over[:, None], U0, Up)
        fix = xp.where(over, (ru / xp.where(over, nrm2, xp.ones_like(nrm2))) * (1 - margin),
                       xp.ones_like(nrm2))
        Up = U0 + (Up - U0) * fix[:, None]
        margin *= 2.0


def radius(w, U, w0, U0) -> tuple[float, float]:
    """The smallest ``(ρ_w, ρ_u)`` with ``Θ ∈ Ω_ρ``: ``√m·max|w − w0|``, ``√m·max‖u − u0‖``.

    Python floats (observed).  Same arithmetic as the tests in :func:`project`.
    """
    xp = _xp(w, U, w0, U0)
    s = math.sqrt(w.shape[0])
    rw = float(xp.max(xp.abs(w - w0)))
    ru = float(xp.max(row_norms(U - U0)))
    return rw * s, ru * s


def contains(w, U, w0, U0, rho_w: float, rho_u: float, rtol: float = 0.0) -> bool:
    """Whether Θ ∈ Ω_ρ, per neuron, as computed (optionally with a relative slack ``rtol``)."""
    xp = _xp(w, U, w0, U0)
    s = math.sqrt(w.shape[0])
    rw, ru = float(rho_w) / s * (1 + rtol), float(rho_u) / s * (1 + rtol)
    # the same computed bounds project() clips to
    ok_w = bool(xp.all((w >= w0 - rw) & (w <= w0 + rw)))
    ok_u = bool(xp.all(row_norms(U - U0) <= ru))
    return ok_w and ok_u
