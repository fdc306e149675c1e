"""Activation registry and safe parsing of user-supplied activations.

An activation is a sympy expression in the single real symbol ``z``.  Built-in
names: ``tanh``, ``logistic`` (alias ``sigmoid``) and ``gaussian``
(``exp(-z**2/2)``).  Anything else is parsed as an expression string with
sympy's parser under a *restricted namespace* (no Python builtins, a whitelist
of names); the tokens are screened before the parser sees them, so no user text
ever reaches Python's ``eval`` unchecked.

Every activation must be C² on all of R (checked symbolically with sympy's
``continuous_domain`` for σ, σ', σ''); boundedness of σ, σ', σ'' is checked by
the certification in :mod:`certify.trusted.activation_constants` (an unbounded
expression is rejected there with a clear error).

``trusted_form`` rewrites an expression so that it only uses the primitives
whose mpmath.iv implementations round outward properly (arithmetic, integer
powers, exp, log, sqrt, sin, cos, tan): tanh, sinh and cosh become
expressions in exp.

``array_form`` rewrites an expression for the *array* world only: tanh
becomes copysign((1 − e)/(1 + e), a) = sign(a)·(1 − e)/(1 + e) with one
(vectorized, fast) e = exp(−2·min(|a|, 40)), with no overflow, underflow or NaN
for any float input including ±inf.

``derivative_in_sigma`` derives σ' as a polynomial in σ where one exists
(tanh: 1 − σ², logistic: σ − σ²), so that reverse mode can keep σ(z_t) alone
on its tape and recompute σ'(z_t) from it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

BUILTIN_SOURCES: dict[str, str] = {
    "tanh": "tanh(z)",
    "logistic": "1/(1 + exp(-z))",
    "gaussian": "exp(-z**2/2)",
}
ALIASES: dict[str, str] = {"sigmoid": "logistic", "gauss": "gaussian"}

#: names a user expression may use; each maps to a trusted primitive or a
#: rewrite into trusted primitives (see ``trusted_form``)
ALLOWED_NAMES = ("z", "exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh", "pi", "E")

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>\*\*|[-+*/()^]))")


class ActivationError(ValueError):
    """A user-supplied activation is malformed, not C², or unbounded."""


#: the longest part of a user's expression that an error message quotes
ECHO_LIMIT = 80


def echo(text) -> str:
    """``repr(text)`` for an error message: one line (repr escapes line breaks)
    and, for text longer than :data:`ECHO_LIMIT` characters, its first
    ECHO_LIMIT characters, an ellipsis and the length, so that a 40 KB
    expression never makes a 40 KB message."""
    text = str(text)
    if len(text) <= ECHO_LIMIT:
        return repr(text)
    return f"{text[:ECHO_LIMIT] + '…'!r} ({len(text)} characters)"


@dataclass(frozen=True)
class Activation:
    """A named activation; ``source`` is the expression string in ``z``."""

    name: str
    source: str

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_SOURCES

    def expr(self):
        return _parse(self.source)

    def derivative(self, k: int):
        """σ^{(k)} as a sympy expression (k = 0, 1, 2, 3)."""
        return _derivative(self.source, k)


def resolve(spec: str) -> Activation:
    """Map a name or an expression string to a validated :class:`Activation`.

    Raises :class:`ActivationError` with a one-line message for anything that
    is not a known name, does not parse, uses a name outside the whitelist, or
    is not C² on R.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ActivationError("activation must be a non-empty string")
    key = spec.strip()
    key = ALIASES.get(key.lower(), key)
    if key.lower() in BUILTIN_SOURCES:
        name = key.lower()
        return Activation(name, BUILTIN_SOURCES[name])
    _screen(key)
    expr = _parse(key)
    _check_c2(key, expr)
    return Activation(key, key)


def _screen(text: str) -> None:
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ActivationError(f"activation expression {echo(text)}: unexpected character "
                                  f"{text[pos:].strip()[:1]!r} at position {pos}")
        name = m.group("name")
        if name is not None and name not in ALLOWED_NAMES:
            raise ActivationError(f"activation expression {echo(text)}: unknown name {echo(name)} "
                                  f"(allowed: {', '.join(ALLOWED_NAMES)}; or one of "
                                  f"{', '.join(BUILTIN_SOURCES)})")
        pos = m.end()


@lru_cache(maxsize=64)
def _parse(source: str):
    import sympy as sp
    from sympy.parsing.sympy_parser import (
        auto_number,
        convert_xor,
        factorial_notation,
        parse_expr,
        rationalize,
    )

    z = symbol()
    local = {"z": z, "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "sin": sp.sin,
             "cos": sp.cos, "tan": sp.tan, "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
             "pi": sp.pi, "E": sp.E}
    glob = {"__builtins__": {}, "Integer": sp.Integer, "Float": sp.Float,
            "Rational": sp.Rational, "Symbol": sp.Symbol}
    # decimals become exact rationals: "0.1" means 1/10, not the nearest double
    transformations = (auto_number, factorial_notation, convert_xor, rationalize)
    try:
        expr = parse_expr(source, local_dict=local, global_dict=glob,
                          transformations=transformations, evaluate=True)
    except Exception as exc:  # sympy raises many kinds for malformed input
        raise ActivationError(f"activation expression {echo(source)} does not parse: "
                              f"{type(exc).__name__}") from None
    if not isinstance(expr, sp.Expr):
        raise ActivationError(f"activation expression {echo(source)} is not a scalar expression")
    if expr.free_symbols - {z}:
        raise ActivationError(f"activation expression {echo(source)} has symbols other than z")
    if z not in expr.free_symbols:
        raise ActivationError(f"activation expression {echo(source)} does not depend on z")
    return expr


def _check_c2(source: str, expr) -> None:
    import sympy as sp
    from sympy.calculus.util import continuous_domain

    z = symbol()
    for k in range(3):
        dk = sp.diff(expr, z, k)
        try:
            dom = continuous_domain(dk, z, sp.S.Reals)
        except Exception:
            raise ActivationError(f"activation expression {echo(source)}: cannot prove that its "
                                  f"derivative of order {k} is continuous on R") from None
        if dom != sp.S.Reals:
            raise ActivationError(f"activation expression {echo(source)} is not twice continuously "
                                  f"differentiable on R (order-{k} derivative is continuous "
                                  f"only on {echo(dom)})")


@lru_cache(maxsize=1)
def symbol():
    import sympy as sp

    return sp.Symbol("z", real=True)


@lru_cache(maxsize=256)
def _derivative(source: str, k: int):
    import sympy as sp

    return sp.diff(_parse(source), symbol(), k)


def trusted_form(expr):
    """Rewrite ``expr`` into the primitives whose mpmath.iv versions round
    outward correctly: + − × ÷, integer powers, exp, log, sqrt, sin, cos, tan.

    tanh(a) = 1 − 2/(exp(2a)+1) (tight at both tails, no ∞/∞), sinh and cosh
    as half-sums of exponentials.  Raises ActivationError if another function
    remains.
    """
    import sympy as sp

    out = expr.replace(sp.tanh, lambda a: 1 - 2 / (sp.exp(2 * a) + 1))
    out = out.replace(sp.sinh, lambda a: (sp.exp(a) - sp.exp(-a)) / 2)
    out = out.replace(sp.cosh, lambda a: (sp.exp(a) + sp.exp(-a)) / 2)
    trusted = (sp.exp, sp.log, sp.sin, sp.cos, sp.tan)
    for f in out.atoms(sp.Function):
        if not isinstance(f, trusted):
            raise ActivationError(f"function {echo(f.func)} has no trusted interval implementation")
    return out


#: |a| beyond which tanh(a) is evaluated at ±TANH_CLAMP in the array world:
#: 1 − tanh(40) = 2/(e⁸⁰ + 1) < 4·10⁻³⁵, far below half an ulp of 1 (1.1·10⁻¹⁶),
#: while e⁻⁸⁰ is a normal double (no underflow)
TANH_CLAMP = 40

#: exp(−2|a|) is a normal double for |a| ≤ 354 (e⁻⁷⁰⁸ > 2⁻¹⁰²²): where the
#: unclamped array form (``array_form(…, clamp=False)``) may underflow beyond
TANH_UNDERFLOW = 354


def tanh_exp(a, m=None):
    """sign(a)·(1 − e)/(1 + e) with e = exp(−2m), m = |a| by default: tanh(a) for real a.

    Only exp of a non-positive number appears, so nothing overflows; the
    quotient is formed on |a| (1 − e and 1 + e are both accurate), so the
    absolute error in floating point is about one rounding of 1.
    """
    import sympy as sp

    if m is None:
        m = sp.Abs(a)
    e = sp.exp(-2 * m)
    return sp.sign(a) * (1 - e) / (1 + e)


@lru_cache(maxsize=1)
def copysign_function():
    """The sympy function ``CopySign(x, y)``: IEEE ``copysign``, |x| with the sign of y.

    Only :func:`array_form` builds it, as ``CopySign(R, a)`` with ``R ≥ 0`` and
    ``R = 0`` at ``a = 0``; there it equals ``sign(a)·R`` (the identity is
    checked in ``tests/symbolic/test_codegen_array_form.py``) and costs one elementwise
    pass instead of two (``sign`` and a product).  Printed as ``ns.copysign``
    (array API ≥ 2023.12).  Numbers evaluate; ``rewrite(sp.Piecewise)`` gives
    the definition on the reals.
    """
    import sympy as sp

    class CopySign(sp.Function):
        nargs = 2

        @classmethod
        def eval(cls, x, y):
            if x.is_number and y.is_number and x.is_real and y.is_real:
                return -sp.Abs(x) if y.is_negative else sp.Abs(x)
            return None

        def _eval_rewrite_as_Piecewise(self, x, y, **kwargs):
            return sp.Piecewise((-sp.Abs(x), y < 0), (sp.Abs(x), True))

    return CopySign


def array_form(expr, clamp: bool = True):
    """Rewrite ``expr`` for fast, safe floating-point evaluation on arrays.

    ``tanh(a) → CopySign((1 − e)/(1 + e), a)`` with e = exp(−2·min(|a|, 40));
    as (1 − e)/(1 + e) ≥ 0 (0 < e ≤ 1) and it is 0 at a = 0, this is
    ``tanh_exp(a, min(|a|, TANH_CLAMP))`` = sign(a)·(1 − e)/(1 + e).  NumPy's float64
    tanh is a scalar loop about 2-3 times slower than its exp on common CPUs,
    so this is about twice as fast; its absolute error is about 2·10⁻¹⁶ (tanh's values lie in
    [−1, 1]), and e ∈ [e⁻⁸⁰, 1]: no overflow, underflow or NaN for any float
    input including ±inf.  The rewrite is the identity for |a| ≤ 40
    (``tanh_exp(a) = tanh(a)`` for all real a) and changes the value by less
    than 4·10⁻³⁵ beyond.  Printed with the array-API functions ``copysign``,
    ``abs``, ``minimum`` and ``exp``.  Only for *observed* numbers: never for
    the interval world (see :func:`trusted_form`).  Every other function is
    left as is.

    ``clamp=False`` drops the ``min(·, 40)``: e = exp(−2|a|), i.e. exactly
    ``tanh_exp(a)``, one elementwise pass fewer.  In floating point it gives
    the same numbers bit for bit for every input (for |a| ≥ 40 both e are
    below 2⁻⁵⁴, so 1 − e and 1 + e round to 1 and the result is ±1), but
    raises two floating-point flags the clamp avoids: underflow of the exp
    for finite |a| > :data:`TANH_UNDERFLOW`, overflow of −2|a| for
    |a| > 2¹⁰²³.  Only for a caller that ignores both
    (``np.errstate(under="ignore", over="ignore")`` around the call).
    """
    import sympy as sp

    def rewrite(a):
        m = sp.Min(sp.Abs(a), TANH_CLAMP) if clamp else sp.Abs(a)
        e = sp.exp(-2 * m)
        return copysign_function()((1 - e) / (1 + e), a)

    return expr.replace(sp.tanh, rewrite)


def sign_form(expr):
    """``expr`` with every ``CopySign(R, a)`` written as ``sign(a)·R`` (valid where
    R ≥ 0 and R = 0 at a = 0, as in :func:`array_form`); for the proofs."""
    import sympy as sp

    return expr.replace(copysign_function(), lambda x, y: sp.sign(y) * x)


@lru_cache(maxsize=64)
def scaled_form(source: str):
    """``(k, F)`` with σ(z) = F(k·z) and F built on one ``exp(y)``, or None.

    Derived, not looked up: every tanh(a) of σ is written 1 − 2/(1 + exp(2a))
    (= tanh(a) for real a), and σ must then contain exactly one exp atom
    ``exp(k·z)`` with k = ±2^j, j ≥ 0 (so that k·w and k·s are exact in
    floating point short of overflow, and the caller's y = k·w·h + k·s is k·z
    bit for bit);
    F(y) = σ(y/k) in that form, accepted only if ``simplify(F(k·z) − σ(z)) == 0``.
    tanh gives (2, 1 − 2/(1 + exp(y))), logistic (−1, 1/(1 + exp(y))); Gaussian
    none.  For observed numbers only, on NumPy's hot path: the forward pass
    forms y directly (the scaled weights cost nothing per element) and F needs
    three elementwise passes besides the exp, against five for
    :func:`array_form`.  In floating point F(y) is accurate to a few roundings
    of 1 in absolute terms (not relatively near σ = 0); exp(y) may overflow to
    inf for y > 709, where F is at its limit (the caller ignores the flag).
    """
    import sympy as sp

    z = symbol()
    y = sp.Symbol("y", real=True)
    sig = _parse(source).replace(sp.tanh, lambda a: 1 - 2 / (1 + sp.exp(2 * a)))
    exps = sig.atoms(sp.exp)
    if len(exps) != 1:
        return None
    (atom,) = exps
    k = sp.simplify(atom.args[0] / z)
    if not (k.is_Rational and k != 0 and k.free_symbols == set()):
        return None
    mant, ex = math.frexp(abs(float(k)))
    if mant != 0.5 or ex < 1 or sp.Rational(float(k)) != k:  # ±2^j, j ≥ 0, exactly
        return None
    F = sig.subs(z, y / k)
    if F.has(z) or F.atoms(sp.exp) != {sp.exp(y)}:
        return None
    if sp.simplify(F.subs(y, k * z) - _parse(source).rewrite(sp.exp)) != 0:
        return None  # pragma: no cover - the rewrite is an identity
    return k, F


@lru_cache(maxsize=64)
def derivative_in_sigma(source: str):
    """σ' as a polynomial ``P(s0)`` in ``s0 = σ(z)``, or None where there is none.

    Derived, not looked up: σ must depend on z through a single function atom
    G (tanh(z), exp(−z), …) and σ' through G alone; the equation σ(G) = s0 is
    solved for G (sympy), every solution substituted into σ' and simplified;
    accepted only if all give the same polynomial P and
    ``simplify(σ'(z) − P(σ(z))) == 0`` (a proof of σ' = P∘σ on R).  tanh gives
    1 − s0², logistic s0 − s0², Gaussian none (σ' = −z·σ needs z).
    """
    import sympy as sp

    z = symbol()
    s0 = sp.Symbol("s0", real=True)
    sig, d1 = _parse(source), _derivative(source, 1)
    atoms = sig.atoms(sp.Function)
    if len(atoms) != 1:
        return None
    (G,) = atoms
    E = sp.Dummy("E")
    sig_E, d1_E = sig.subs(G, E), d1.subs(G, E)
    if sig_E.has(z) or d1_E.has(z):
        return None
    try:
        sols = sp.solve(sp.Eq(sig_E, s0), E)
    except (NotImplementedError, ValueError):  # pragma: no cover - sympy gave up
        return None
    polys = {sp.expand(sp.cancel(d1_E.subs(E, sol))) for sol in sols}
    if len(polys) != 1:
        return None
    (P,) = polys
    if P.has(z) or not P.is_polynomial(s0):
        return None
    if sp.simplify(d1 - P.subs(s0, sig)) != 0:
        return None
    return P
