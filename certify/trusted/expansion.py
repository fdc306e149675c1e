"""Expansion points of the mean-value forms: a point of box ∩ ball.

Every trusted kernel (:mod:`certify.trusted.engine`, for mpmath.iv and python-flint,
and the screening of :mod:`certify.trusted.screen`) may *narrow* s_t = ⟨u, x_t⟩ over a
box B to the slab ⟨u0, x_t⟩ ± r_u‖x_t‖ that the ball ‖u − u0‖ ≤ r_u implies.
After that, the enclosures of h, g, H and ∂H hold on

    V = B ∩ {θ : ⟨θ_u, x_t⟩ ∈ slab_t for every narrowed t},

a convex set that contains B ∩ ball, but not all of B.  A mean-value form
f(θ) ∈ f(c) + ∇f(V)·(θ − c) about a point c is valid for θ ∈ V only when the
segment [c, θ] lies in V, i.e. when c ∈ V.  The box centre need not be in V
(in d ≥ 3 it often is not, for boxes at the edge of the ball).

So the kernels expand about a point c ∈ B that is *certainly* in the ball
‖c_u − u0‖ ≤ r_u (then c ∈ every slab, hence c ∈ V), and narrow only when
such a point was certified; otherwise they do not narrow at all and expand
about the centre (the forms then hold on all of B).

This module only *chooses* the point, in float64 (nothing here is trusted:
each kernel certifies the membership in its own arithmetic and acts on that
answer).  The choice: the first point, from the centre c towards
q = (c_w, the point of B_u nearest u0), that lies in the ball of radius
r_u·(1 − 2^-20); the centre itself when it is inside.  The form's width grows
with |B − c|, so a point as central as possible is best.
"""

from __future__ import annotations

import numpy as np

__all__ = ["expansion_points", "box_centres", "SHRINK"]

#: aim strictly inside the ball, so that the certified check succeeds
SHRINK = 1.0 - 2.0**-20


def box_centres(blo, bhi) -> np.ndarray:
    """Midpoints (N, p) of boxes, clamped into the box (exact floats)."""
    blo = np.asarray(blo, dtype=np.float64)
    bhi = np.asarray(bhi, dtype=np.float64)
    c = 0.5 * blo + 0.5 * bhi
    return np.minimum(np.maximum(c, blo), bhi)


def expansion_points(blo, bhi, u0, ru) -> np.ndarray:
    """Chosen expansion points (N, p) in the boxes (float64, not certified).

    blo, bhi: (N, p) box corners (coordinate 0 is w, then u_1..u_d); u0: (N, d)
    ball centres, or None (then the box centres); ru: float ball radius.
    Boxes that miss the ball get the point of the box nearest u0 (the caller's
    certified check then fails, and it does not narrow).
    """
    blo = np.atleast_2d(np.asarray(blo, dtype=np.float64))
    bhi = np.atleast_2d(np.asarray(bhi, dtype=np.float64))
    c = box_centres(blo, bhi)
    if u0 is None:
        return c
    u0 = np.broadcast_to(np.asarray(u0, dtype=np.float64), c[:, 1:].shape)
    r = float(ru) * SHRINK
    a = c[:, 1:] - u0
    q = np.minimum(np.maximum(u0, blo[:, 1:]), bhi[:, 1:])
    b = q - c[:, 1:]
    # ‖a + λb‖² = r² at its smaller root λ; λ = 0 when c is inside
    aa = np.sum(a * a, axis=1)
    ab = np.sum(a * b, axis=1)
    bb = np.sum(b * b, axis=1)
    disc = np.maximum(ab * ab - bb * (aa - r * r), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(bb > 0, (-ab - np.sqrt(disc)) / bb, 0.0)
    lam = np.where(aa <= r * r, 0.0, np.clip(np.nan_to_num(lam, nan=1.0), 0.0, 1.0))
    # a little further in than the root, so that rounding stays inside
    lam = np.minimum(1.0, lam + (1.0 - lam) * 2.0**-10)
    lam = np.where(aa <= r * r, 0.0, lam)
    out = c.copy()
    out[:, 1:] = c[:, 1:] + lam[:, None] * b
    return np.minimum(np.maximum(out, blo), bhi)
