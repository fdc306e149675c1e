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


def reference(name, theta, xs, t, order):
    """50-digit derivatives of h_t at θ: order 0 (value), 1 (g), 2 (H), 3 (∂H[a][b][k])."""
    p = len(theta)
    with mpmath.workdps(50):
        th = [mpmath.mpf(v) for v in theta]
        X = [[mpmath.mpf(v) for v in row] for row in xs[:t + 1]]

        def f(*a):
            return hidden_states(name, a[0], list(a[1:]), X)[t]

        if order == 0:
            return f(*th)
        if order == 1:
            return [mpmath.diff(f, th, tuple(int(k == a) for k in range(p))) for a in range(p)]
        if order == 2:
            return [[mpmath.diff(f, th, tuple(int(k == a) + int(k == b) for k in range(p)))
                     for b in range(p)] for a in range(p)]
        return [[[mpmath.diff(f, th, tuple(int(k == a) + int(k == b) + int(k == c)
                                            for k in range(p)))
                  for c in range(p)] for b in range(p)] for a in range(p)]
