"""Certified activation constants σ₀, σ₁, σ₂ and closed-form L_t, β_t.

σ_k = sup_{z∈R} |σ^{(k)}(z)| is enclosed as an interval [lo, hi] with
lo ≤ σ_k ≤ hi, both from the trusted engine:

* **compact part** — branch and bound on [−Z, Z]: bisection discards every
  sub-interval on which σ^{(k+1)} cannot vanish (σ^{(k)} is monotone there, so
  its extreme values sit at break points); the remaining narrow *critical
  cells* are evaluated with the mean-value form (see
  :mod:`certify.intervals`);
* **tails** — on |z| ≥ Z the sign of σ^{(k+1)} is certified factor by factor,
  so σ^{(k)} is monotone there and |σ^{(k)}| ≤ max(|σ^{(k)}(±Z)|, |lim|), with
  the limit at ±∞ computed exactly by sympy and enclosed by the engine.

Upper bound: the largest |value| over all break points, cells and limits.
Lower bound: the largest certified |σ^{(k)}| at a point (cell midpoints, ±Z)
or the limit's magnitude.  An activation whose σ^{(k)} has no finite limit,
or whose tails cannot be certified, is rejected.

The decomposition (Z, cells, limits) is cached on disk next to the generated
code, as exact binary endpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from mpmath import iv, mpf

from symbolic import activation_functions, resolve
from symbolic.activations import Activation, ActivationError
from symbolic.codegen import cache_dir, write_atomic

from .intervals import (
    NS,
    ActivationEnclosure,
    Decomposition,
    find_cells,
    from_man_exp_signed,
    hi,
    interval_strings,
    is_finite,
    lo,
    lower_abs,
    man_exp,
    upper_abs,
)

Z_CANDIDATES = (8, 16, 32, 64, 128)
CELL_TOL = mpf(2) ** -32


@dataclass(frozen=True)
class ActivationConstants:
    """Certified σ₀, σ₁, σ₂ (iv intervals enclosing the sups) and the tight enclosure."""

    activation: Activation
    sigma0: object
    sigma1: object
    sigma2: object
    enclosure: ActivationEnclosure

    def to_json(self) -> dict:
        return {"name": self.activation.name, "expression": self.activation.source,
                "sigma0": interval_strings(self.sigma0),
                "sigma1": interval_strings(self.sigma1),
                "sigma2": interval_strings(self.sigma2)}


def _weak_sign(values) -> int | None:
    """Sign of a product of intervals if each factor has a weak sign, else None."""
    sign = 1
    for v in values:
        if not hasattr(v, "a"):
            v = iv.mpf(v)
        a, b = lo(v), hi(v)
        if a != a or b != b:  # NaN
            return None
        if a >= 0:
            continue
        if b <= 0:
            sign = -sign
            continue
        return None
    return sign


def _tail_ok(gen, k: int, Z) -> bool:
    """σ^{(k+1)} has a certified weak sign on both tails |z| ≥ Z."""
    for side in ("pos", "neg"):
        forms = getattr(gen, f"tail{k + 1}_{side}")(Z, ns=NS)
        if not any(_weak_sign(f) is not None for f in forms):
            return False
    return True


FAR = mpf(2) ** 20


def _limits(act: Activation, k: int):
    """Enclosures of lim_{z→±∞} σ^{(k)}(z), given that σ^{(k)} is monotone on the tails.

    First the trusted interval code of σ^{(k)} on [2²⁰, +∞] (resp. [−∞, −2²⁰]):
    a finite result encloses every value there, so (σ^{(k)} being monotone and
    bounded on the tail) the limit exists and lies in it.  If that evaluation is
    not finite (e.g. a 0·∞ form), sympy computes the limit exactly and the
    engine encloses the resulting constant.
    """
    gen = activation_functions(act)
    f = getattr(gen, f"d{k}_interval")
    out = []
    for side, X in (("+", iv.mpf([FAR, "+inf"])), ("-", iv.mpf(["-inf", -FAR]))):
        try:
            Y = f(X, ns=NS)
        except (ArithmeticError, ValueError):
            Y = None
        if Y is not None and is_finite(Y):
            out.append(Y)
            continue
        out.append(_sympy_limit(act, k, side))
    return out[0], out[1]


def _sympy_limit(act: Activation, k: int, side: str):
    import sympy as sp

    from symbolic.activations import symbol
    from symbolic.codegen import interval_constant

    direction = sp.oo if side == "+" else -sp.oo
    lim = sp.limit(act.derivative(k), symbol(), direction)
    if not (lim.is_real and lim.is_finite):
        raise ActivationError(
            f"activation {act.name!r}: its derivative of order {k} has no finite limit at "
            f"{side}infinity ({lim}); sup over R is not certified to be finite")
    return iv.mpf(interval_constant(lim)(NS))


def _decompose(act: Activation, k: int) -> Decomposition:
    gen = activation_functions(act)
    for Z in Z_CANDIDATES:
        if _tail_ok(gen, k, Z):
            break
    else:
        raise ActivationError(f"activation {act.name!r}: cannot certify that its derivative "
                              f"of order {k} is monotone for |z| >= {Z_CANDIDATES[-1]}")
    lim_pos, lim_neg = _limits(act, k)
    fprime = getattr(gen, f"d{k + 1}_interval")
    try:
        cells = find_cells(lambda X: fprime(X, ns=NS), mpf(-Z), mpf(Z), CELL_TOL)
    except RuntimeError:
        raise ActivationError(f"activation {act.name!r}: cannot isolate the critical points "
                              f"of its derivative of order {k}") from None
    if len(cells) > 256:
        raise ActivationError(f"activation {act.name!r}: too many critical points "
                              f"({len(cells)}) for its derivative of order {k}")
    return Decomposition(k, mpf(Z), tuple(cells), lim_pos, lim_neg)


# ---- exact on-disk form -------------------------------------------------


def _enc_mpf(x: mpf) -> list:
    man, exp = man_exp(x)
    return [str(man), int(exp)]


def _dec_mpf(v) -> mpf:
    return from_man_exp_signed(int(v[0]), int(v[1]))


def _enc_iv(x) -> list:
    return [_enc_mpf(lo(x)), _enc_mpf(hi(x))]


def _dec_iv(v):
    return iv.mpf([_dec_mpf(v[0]), _dec_mpf(v[1])])


def _store(path, decomps: dict[int, Decomposition]) -> None:
    data = {str(k): {"Z": _enc_mpf(d.Z), "cells": [_enc_iv(c) for c in d.cells],
                     "lim_pos": _enc_iv(d.lim_pos), "lim_neg": _enc_iv(d.lim_neg)}
            for k, d in decomps.items()}
    write_atomic(path, json.dumps(data))


def _load(path) -> dict[int, Decomposition] | None:
    try:
        data = json.loads(path.read_text())
        return {int(k): Decomposition(int(k), _dec_mpf(v["Z"]),
                                      tuple(_dec_iv(c) for c in v["cells"]),
                                      _dec_iv(v["lim_pos"]), _dec_iv(v["lim_neg"]))
                for k, v in data.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None


@lru_cache(maxsize=1)
def _kernel_key() -> str:
    """Hash of the interval kernels: a cached decomposition is reused only if the
    code that certified it is unchanged."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("intervals.py", "activation_constants.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]


@lru_cache(maxsize=32)
def enclosure_for(act: Activation) -> ActivationEnclosure:
    """The tight σ, σ', σ'' enclosure for ``act`` (certified decomposition, cached)."""
    from symbolic.codegen import _act_stem

    path = cache_dir() / f"{_act_stem(act.source)}.{_kernel_key()}.decomp.json"
    decomps = _load(path) if path.exists() else None
    if decomps is None:
        decomps = {k: _decompose(act, k) for k in range(3)}
        _store(path, decomps)
    return ActivationEnclosure(activation_functions(act), decomps)


def _sup_abs(enc: ActivationEnclosure, k: int):
    """Enclosure [lo, hi] of sup_R |σ^{(k)}|."""
    dec = enc.decomps[k]
    everything = enc(k, iv.mpf(["-inf", "+inf"]))
    top = upper_abs(everything)
    lows = [lower_abs(dec.lim_pos), lower_abs(dec.lim_neg)]
    for z in (dec.Z, -dec.Z):
        lows.append(lower_abs(enc.point(k, z)))
    for c in dec.cells:
        lows.append(lower_abs(enc.point(k, (lo(c) + hi(c)) / 2)))
    return iv.mpf([max(lows), top])


@lru_cache(maxsize=32)
def certify_activation(spec: str | Activation) -> ActivationConstants:
    """Certified σ₀, σ₁, σ₂ for an activation name or expression."""
    act = resolve(spec) if isinstance(spec, str) else spec
    enc = enclosure_for(act)
    s0, s1, s2 = (_sup_abs(enc, k) for k in range(3))
    for k, s in enumerate((s0, s1, s2)):
        if not is_finite(s):
            raise ActivationError(f"activation {act.name!r}: sup of |derivative of order {k}| "
                                  "is not finite")
    return ActivationConstants(act, s0, s1, s2, enc)


def closed_form_constants(activation: str | Activation, alpha, steps: int) -> dict:
    """σ-constants and L_t, β_t (t = 0..steps−1) at α_m = alpha, as iv intervals.

    ``alpha`` may be a decimal string (exact), an int, a Fraction or a float
    (taken as the exact binary value).  L_t, β_t are evaluated by the derived
    recurrence in interval arithmetic, which equals the closed form
    (:func:`symbolic.bounds.prove`) in every regime, also when q = σ₁α_m
    straddles the cutoff 1.
    """
    from symbolic.bounds import numeric_recurrence

    ac = certify_activation(activation)
    a = to_interval(alpha)
    if lo(a) < 0:
        raise ValueError("alpha must be >= 0")
    # the bound is increasing in every constant: use the upper endpoints
    s0, s1, s2 = (iv.mpf(hi(x)) for x in (ac.sigma0, ac.sigma1, ac.sigma2))
    L, B = numeric_recurrence(s0, s1, s2, iv.mpf(hi(a)), steps, iv)
    return {"activation": ac, "alpha_m": a, "q": ac.sigma1 * a, "t": list(range(steps)),
            "L": L, "beta": B}


def to_interval(x):
    """Exact enclosure of a number given as str (decimal), int, Fraction, float or iv."""
    from fractions import Fraction

    if hasattr(x, "a") and hasattr(x, "b"):
        return x
    if isinstance(x, Fraction):
        return iv.mpf(x.numerator) / x.denominator
    if isinstance(x, bool):
        raise TypeError("bool is not a number")
    if isinstance(x, int | float):
        return iv.mpf(x)
    if isinstance(x, str):
        return iv.mpf(x.strip())
    raise TypeError(f"cannot make an interval from {type(x).__name__}")
