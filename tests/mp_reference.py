"""High-precision *naive reference* evaluations for the tests.

Independent of the code generator's numeric worlds: σ^{(k)} is differentiated
here with sympy and evaluated with ``sympy.lambdify(modules="mpmath")`` at the
working precision of ``mpmath.mp``; the RNN state is recomputed from its
definition (THEORY §1) without any sensitivity template.
"""

from __future__ import annotations

from functools import cache

import mpmath
import sympy as sp

from symbolic import resolve
from symbolic.activations import symbol


@cache
def sigma_mp(name: str, k: int):
    act = resolve(name)
    return sp.lambdify(symbol(), sp.diff(act.expr(), symbol(), k), modules="mpmath")


def hidden_states(name, w, u, X):
    """h_0..h_{T-1} of one neuron at mpmath precision (lists of mpf)."""
    f = sigma_mp(name, 0)
    h = mpmath.mpf(0)
    out = []
    for x in X:
        z = w * h + mpmath.fsum(ui * xi for ui, xi in zip(u, x, strict=True))
        h = f(z)
        out.append(h)
    return out
