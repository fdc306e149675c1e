"""Code generation from the sympy derivations, with an on-disk cache.

Two numeric worlds:

* **array** — functions ``f(*args, ns)`` where ``ns`` is an array-API
  namespace (NumPy, CuPy, torch via array-api-compat, array-api-strict).
  Rationals print as float divisions: these numbers are *observed*.
  Expressions are first rewritten by :func:`symbolic.activations.array_form`
  (tanh as sign(a)·(1 − e)/(1 + e), e = exp(−2·min(|a|, 40)): NumPy's
  float64 exp is SIMD, its tanh is not); activation functions are emitted
  with common subexpressions shared (``x0 = tanh(z)`` computed once, then
  rewritten), and the joint ``d01_array``/``d012_array`` return σ, σ'
  (, σ'') from one transcendental evaluation.
* **interval** — functions ``f(*args, ns)`` where ``ns`` is the interval
  namespace of :mod:`certify.intervals` (mpmath.iv).  Expressions are first
  rewritten by :func:`symbolic.activations.trusted_form` so only the primitives
  mpmath.iv rounds outward correctly appear; rationals print as
  ``ns.mpf(p)/q`` (an exact integer divided with outward rounding), π as the
  enclosure ``ns.pi``.

The cell templates of :mod:`symbolic.cell` and the bound step of
:mod:`symbolic.bounds` are polynomials, so one generated function serves both
worlds (floats, arrays and intervals all support + − × and integer powers).

Generated modules are written to a cache directory (``$RNN_CERTIFY_CACHE``,
else ``$XDG_CACHE_HOME/rnn-certify``, else ``~/.cache/rnn-certify``) under a
key that hashes the source of this package's derivation modules, the sympy
version and the activation's expression; loading a cached module does not
import sympy, which keeps ``import symbolic`` and warm start-up fast.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_DERIVATION_FILES = ("activations.py", "cell.py", "bounds.py", "codegen.py")


def cache_dir() -> Path:
    root = os.environ.get("RNN_CERTIFY_CACHE")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) / "rnn-certify" if xdg else Path.home() / ".cache" / "rnn-certify"
    return base / _code_key()


@lru_cache(maxsize=1)
def _code_key() -> str:
    h = hashlib.sha256()
    for name in _DERIVATION_FILES:
        h.update((_HERE / name).read_bytes())
    try:
        h.update(metadata.version("sympy").encode())
    except metadata.PackageNotFoundError:  # pragma: no cover - sympy is a core dependency
        h.update(b"sympy?")
    h.update(sys.version.split()[0].encode())
    return h.hexdigest()[:16]


def _printer(world: str):
    from sympy.printing.pycode import PythonCodePrinter

    class Printer(PythonCodePrinter):
        def _module_format(self, fqn, register=True):
            return "ns." + fqn.split(".")[-1]

        def _print_Rational(self, e):
            if world == "interval":
                return f"(ns.mpf({e.p})/{e.q})"
            return f"({e.p}/{e.q})"

        def _print_Half(self, e):
            return self._print_Rational(e)

        def _print_Pi(self, e):
            return "ns.pi"

        def _print_Pow(self, e, rational=False):
            # x**(p/2) → sqrt(x)**p: only integer powers and sqrt are trusted
            if world == "interval" and e.exp.is_Rational and e.exp.q == 2:
                return f"ns.sqrt({self._print(e.base)})**({e.exp.p})"
            return super()._print_Pow(e, rational=rational)

        def _print_Float(self, e):  # pragma: no cover - inputs are rationalized
            raise TypeError("floating-point constant in an expression to generate")

        # array_form's tanh: array-API sign, abs and elementwise minimum / maximum
        def _print_sign(self, e):
            if world != "array":
                return super()._print_sign(e)
            return f"ns.sign({self._print(e.args[0])})"

        def _print_Abs(self, e):
            if world != "array":
                return super()._print_Abs(e)
            return f"ns.abs({self._print(e.args[0])})"

        def _print_Min(self, e):
            if world != "array":
                return super()._print_Min(e)
            return self._print_lattice(e, "minimum")

        def _print_Max(self, e):
            if world != "array":
                return super()._print_Max(e)
            return self._print_lattice(e, "maximum")

        def _print_lattice(self, e, fn):
            args = sorted(e.args, key=lambda a: a.is_Number)  # arrays first, numbers last
            out = self._print(args[0])
            for a in args[1:]:
                b = f"{float(a)!r}" if a.is_Number else self._print(a)
                out = f"ns.{fn}({out}, {b})"
            return out

    return Printer({"standard": "python3"})


def emit(name: str, args: tuple[str, ...], expr, world: str, *, share: bool = False) -> str:
    """Source of ``def name(*args, ns)`` returning ``expr`` (a ``sympy.Tuple`` returns a tuple).

    In the array world ``expr`` is rewritten by :func:`symbolic.activations.array_form`;
    with ``share`` (or whenever that rewrite applies) common subexpressions
    are computed once (see :func:`_emit_shared`).
    """
    if world == "interval":
        from .activations import trusted_form

        expr = trusted_form(expr)
        _check_powers(expr)
    elif world == "array":
        from .activations import array_form

        if share or array_form(expr) != expr:
            return _emit_shared(name, args, expr)
    body = _printer(world).doprint(expr)
    return f"def {name}({', '.join(args)}, ns):\n    return {body}\n"


def _emit_shared(name: str, args: tuple[str, ...], expr) -> str:
    """Array-world ``def name(*args, ns)`` with common subexpressions computed once.

    Two passes of ``sympy.cse``: first on the derived expressions themselves,
    so that e.g. σ = tanh(z), σ' = 1 − tanh(z)², σ'' = 2 tanh(z)(tanh(z)² − 1)
    become ``x0 = tanh(z)`` and polynomials in ``x0``; then each piece is
    rewritten by :func:`symbolic.activations.array_form` and shared again (the
    exp inside the rewritten tanh).  So one transcendental call per element
    serves every output, whatever the namespace.
    """
    import sympy as sp

    from .activations import array_form

    multi = isinstance(expr, sp.Tuple)
    exprs = list(expr.args) if multi else [expr]
    taken = set().union(*(e.free_symbols for e in exprs)) | {sp.Symbol(a) for a in args}
    syms = (s for s in sp.numbered_symbols("_x") if s not in taken)
    pr = _printer("array")
    lines = [f"def {name}({', '.join(args)}, ns):"]

    def assign(values):
        repl, reduced = sp.cse(values, symbols=syms)
        for s, e in repl:
            lines.append(f"    {pr.doprint(s)} = {pr.doprint(e)}")
        return reduced

    # every tanh(·) becomes its own variable (listed as extra outputs, so cse
    # extracts it even where it occurs once): σ' = 1 − x0² is then evaluated
    # the same way in d1_array and in d01_array
    extra = sorted(set().union(*(e.atoms(sp.tanh) for e in exprs)), key=sp.default_sort_key)
    repl, reduced = sp.cse(exprs + extra, symbols=syms)
    reduced = reduced[:len(exprs)]
    for s, e in repl:
        (v,) = assign([array_form(e)])
        lines.append(f"    {pr.doprint(s)} = {pr.doprint(v)}")
    outs = [pr.doprint(e) for e in assign([array_form(e) for e in reduced])]
    if multi:
        lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
    else:
        lines.append(f"    return {outs[0]}")
    return "\n".join(lines) + "\n"


def _check_powers(expr):
    import sympy as sp

    for p in expr.atoms(sp.Pow):
        if not (p.exp.is_Integer or (p.exp.is_Rational and p.exp.q == 2)):
            from .activations import ActivationError

            raise ActivationError(f"power {p} has no trusted interval implementation "
                                  f"(only integer and half-integer powers)")


def _load(path: Path, modname: str):
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _module(stem: str, build):
    """Load generated module ``stem`` from the cache, building it on a miss."""
    path = cache_dir() / f"{stem}.py"
    if not path.exists():
        src = "# generated by symbolic.codegen; do not edit (delete to regenerate)\n\n" + build()
        write_atomic(path, src)
    return _load(path, f"symbolic._generated_{stem}")


# --------------------------------------------------------------------------
# the cell: sensitivity templates (activation independent, polynomial)


@lru_cache(maxsize=1)
def cell_module():
    """Generated module with one function per template of :func:`symbolic.cell.derive`."""

    def build():
        from .cell import derive

        parts = []
        for t in derive().values():
            parts.append(emit(t.name, t.args, t.expr, "array"))
        return "\n\n".join(parts)

    return _module("cell", build)


@lru_cache(maxsize=1)
def _bound_module():
    def build():
        import sympy as sp

        from .bounds import _syms, recurrences

        s0, s1, s2, a, K, t = _syms()
        L_next, b_next, Lp, Bp = recurrences()
        args = ("sigma1", "sigma2", "a", "K", "L_prev", "beta_prev")
        expr = sp.Tuple(L_next, b_next)
        return emit("bound_step", args, expr, "array")

    return _module("bounds", build)


def bound_step(ctx=None):
    """(σ₁, σ₂, a, K, L_{t-1}, β_{t-1}) ↦ (L_t, β_t), generated from the derived recurrence."""
    f = _bound_module().bound_step
    return lambda *args: f(*args, ns=ctx)


# --------------------------------------------------------------------------
# activations: σ, σ', σ'', σ''' in both worlds


def _act_stem(source: str) -> str:
    return "act_" + hashlib.sha256(source.encode()).hexdigest()[:16]


@lru_cache(maxsize=64)
def activation_module(source: str):
    """Generated module for one activation: ``d{k}_array`` and ``d{k}_interval``
    for k = 0..3 (σ^{(k)}); ``d01_array`` → (σ, σ') and ``d012_array`` →
    (σ, σ', σ'') from shared transcendental calls; plus ``tail{k}_{pos,neg}``
    factor forms for the tail-sign test."""

    def build():
        import sympy as sp

        from .activations import _derivative

        parts = [f"SOURCE = {source!r}\n"]
        for k in range(4):
            dk = _derivative(source, k)
            parts.append(emit(f"d{k}_array", ("z",), dk, "array", share=True))
            parts.append(emit(f"d{k}_interval", ("z",), dk, "interval"))
        ds = [_derivative(source, k) for k in range(3)]
        parts.append(emit("d01_array", ("z",), sp.Tuple(*ds[:2]), "array", share=True))
        parts.append(emit("d012_array", ("z",), sp.Tuple(*ds), "array", share=True))
        # factor-wise forms of σ^{(k)} for the certified tail-sign test
        for k in range(1, 4):
            for side, sgn in (("pos", 1), ("neg", -1)):
                parts.append(_emit_tail(f"tail{k}_{side}", _derivative(source, k), sgn))
        return "\n\n".join(parts)

    return _module(_act_stem(source), build)


def _emit_tail(name: str, expr, sgn: int) -> str:
    """``def name(Z, ns) -> list[list]``: forms of expr on the tail sgn·z ≥ Z.

    Each form is a list of interval values whose product has the sign of
    σ^{(k)} on the whole tail, evaluated factor by factor so that 0·∞ never
    appears.  Form 1: the factors of ``expr`` on z ∈ [Z, ∞].  Form 2: the
    numerator and denominator factors after substituting y = e^{-|z|}
    (y ∈ [0, e^{-Z}]), which settles exponential polynomials such as
    e^{2z} − 4e^{z} + 1.  The caller accepts the first form whose every
    factor has a weak sign.
    """
    import sympy as sp

    from .activations import symbol

    z = symbol()
    y = sp.Symbol("y", positive=True)
    e = expr.subs(z, sgn * z)
    forms = [("z", sp.Mul.make_args(sp.factor(e)))]
    try:
        ey = sp.together(sp.expand(_trusted(e).subs(z, -sp.log(y))))
        num, den = sp.fraction(ey)
        fy = sp.Mul.make_args(sp.factor(num)) + sp.Mul.make_args(sp.factor(den))
        if all(z not in f.free_symbols for f in fy):
            forms.append(("y", fy))
    except Exception:  # noqa: BLE001 - an optional second form; form 1 still stands
        pass
    pr = _printer("interval")
    lines = [f"def {name}(Z, ns):",
             "    z = ns.mpf([Z, '+inf'])",
             "    y = ns.mpf([0, ns.exp(-ns.mpf(Z)).b])",
             "    return ["]
    for var, fs in forms:
        body = ", ".join(pr.doprint(_trusted(f)) for f in fs)
        lines.append(f"        [{body}],  # in {var}")
    lines.append("    ]")
    return "\n".join(lines) + "\n"


def _trusted(e):
    from .activations import trusted_form

    out = trusted_form(e)
    _check_powers(out)
    return out


def interval_constant(expr):
    """Compile a constant sympy expression into a function ``f(ns)`` returning
    its interval enclosure (trusted primitives only)."""
    src = emit("const", (), expr, "interval").replace("def const(, ns)", "def const(ns)")
    scope: dict = {}
    exec(compile(src, "<symbolic.codegen constant>", "exec"), scope)  # generated code
    return scope["const"]
