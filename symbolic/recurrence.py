"""The bound recurrences L_t, β_t evaluated numerically, from the generated code.

:mod:`symbolic.bounds` derives the recurrences (sympy); :mod:`symbolic.codegen`
generates their update step; this module runs that step for t = 0..steps−1 in
floats (observed) or in mpmath.iv (an enclosure).  Imports point one way:
bounds → codegen → recurrence.
"""

from __future__ import annotations

import math

from . import codegen

__all__ = ["numeric_recurrence"]


def numeric_recurrence(sigma0, sigma1, sigma2, alpha, steps: int, ctx):
    """L_t, β_t for t = 0..steps−1 by the recurrence, in the arithmetic of ``ctx``.

    ``ctx = None`` computes in Python floats (observed, for tests and plots).
    With ``ctx = mpmath.iv`` and interval σ's this is an outward-rounded
    enclosure of the closed forms (equal to the recurrence by :func:`symbolic.bounds.prove`),
    valid in all three regimes, including a q-interval that straddles 1.
    The update is the sympy-derived one, code-generated (no hand copy).
    """
    step = codegen.bound_step(ctx)  # looked up at call time (the fault-injection tests plant it)
    sqrt = math.sqrt if ctx is None else ctx.sqrt
    zero = 0.0 if ctx is None else ctx.mpf(0)
    K = sqrt(1 + sigma0 * sigma0)
    L = [zero]
    B = [zero]
    Ls, Bs = [], []
    for _ in range(steps):
        Ln, Bn = step(sigma1, sigma2, alpha, K, L[-1], B[-1])
        L.append(Ln)
        B.append(Bn)
        Ls.append(Ln)
        Bs.append(Bn)
    return Ls, Bs
