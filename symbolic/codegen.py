"""Code generation from the sympy derivations, with an on-disk cache.

Two numeric worlds:

* **array** — functions ``f(*args, ns)`` where ``ns`` is an array-API
  namespace (NumPy, CuPy, torch via array-api-compat, array-api-strict).
  Rationals print as float divisions: these numbers are *observed*.
  Expressions are first rewritten by :func:`symbolic.activations.array_form`
  (tanh as copysign((1 − e)/(1 + e), a), e = exp(−2·min(|a|, 40)): NumPy's
  float64 tanh is a scalar loop several times slower than its exp);
  activation functions are emitted with common subexpressions shared
  (``x0 = tanh(z)`` computed once, then rewritten), and the joint
  ``d01_array``/``d012_array`` return σ, σ' (, σ'') from one transcendental
  evaluation.  Each array function used on NumPy's hot path also has an
  in-place twin ``<name>_into`` (:func:`emit_into`): the same program as
  ufunc calls writing into preallocated buffers (``out=``), one call per
  elementwise operation and no temporary allocated.
* **interval** — functions ``f(*args, ns)`` where ``ns`` is the interval
  namespace of :mod:`certify.trusted.intervals` (mpmath.iv).  Expressions are first
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
    """A sympy code printer for ``world`` ("array" or "interval"; see the module docstring)."""
    from sympy.printing.pycode import PythonCodePrinter

    class Printer(_WorldRules, PythonCodePrinter):
        _world = world

    return Printer({"standard": "python3"})


class _WorldRules:
    """The printing rules of :func:`_printer`, mixed in before sympy's
    ``PythonCodePrinter`` (which this module imports only when printing);
    ``_world`` is set by the subclass."""

    _world = "array"

    def _module_format(self, fqn, register=True):
        return "ns." + fqn.split(".")[-1]

    def _print_Rational(self, e):
        if self._world == "interval":
            return f"(ns.mpf({e.p})/{e.q})"
        return f"({e.p}/{e.q})"

    def _print_Half(self, e):
        return self._print_Rational(e)

    def _print_Pi(self, e):
        return "ns.pi"

    def _print_Pow(self, e, rational=False):
        # x**(p/2) → sqrt(x)**p: only integer powers and sqrt are trusted
        if self._world == "interval" and e.exp.is_Rational and e.exp.q == 2:
            return f"ns.sqrt({self._print(e.base)})**({e.exp.p})"
        return super()._print_Pow(e, rational=rational)

    def _print_Float(self, e):  # pragma: no cover - inputs are rationalized
        raise TypeError("floating-point constant in an expression to generate")

    # array_form's tanh: array-API sign, abs and elementwise minimum / maximum
    def _print_sign(self, e):
        if self._world != "array":
            return super()._print_sign(e)
        return f"ns.sign({self._print(e.args[0])})"

    def _print_Abs(self, e):
        if self._world != "array":
            return super()._print_Abs(e)
        return f"ns.abs({self._print(e.args[0])})"

    def _print_CopySign(self, e):
        if self._world != "array":  # pragma: no cover - only array_form builds CopySign
            raise TypeError("CopySign outside the array world")
        return f"ns.copysign({self._print(e.args[0])}, {self._print(e.args[1])})"

    def _print_Min(self, e):
        if self._world != "array":
            return super()._print_Min(e)
        return self._print_lattice(e, "minimum")

    def _print_Max(self, e):
        if self._world != "array":
            return super()._print_Max(e)
        return self._print_lattice(e, "maximum")

    def _print_lattice(self, e, fn):
        args = sorted(e.args, key=lambda a: a.is_Number)  # arrays first, numbers last
        out = self._print(args[0])
        for a in args[1:]:
            b = f"{float(a)!r}" if a.is_Number else self._print(a)
            out = f"ns.{fn}({out}, {b})"
        return out


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
    return f"def {name}({_params(args)}):\n    return {body}\n"


def _params(args, *extra) -> str:
    return ", ".join((*args, *extra, "ns"))


def _shared_program(args: tuple[str, ...], expr, clamp: bool = True):
    """``(assignments, outputs, multi)``: the array-world program of ``expr``.

    Two passes of ``sympy.cse``: first on the derived expressions themselves,
    so that e.g. σ = tanh(z), σ' = 1 − tanh(z)², σ'' = 2 tanh(z)(tanh(z)² − 1)
    become ``x0 = tanh(z)`` and polynomials in ``x0``; then each piece is
    rewritten by :func:`symbolic.activations.array_form` and shared again (the
    exp inside the rewritten tanh).  So one transcendental call per element
    serves every output, whatever the namespace.  ``assignments`` is a list of
    ``(symbol, expression)`` in evaluation order; ``clamp`` is passed to
    :func:`symbolic.activations.array_form`.
    """
    import sympy as sp

    from .activations import array_form

    multi = isinstance(expr, sp.Tuple)
    exprs = list(expr.args) if multi else [expr]
    taken = set().union(*(e.free_symbols for e in exprs)) | {sp.Symbol(a) for a in args}
    syms = (s for s in sp.numbered_symbols("_x") if s not in taken)
    program = []

    def assign(values):
        repl, reduced = sp.cse(values, symbols=syms)
        program.extend(repl)
        return reduced

    # every tanh(·) becomes its own variable (listed as extra outputs, so cse
    # extracts it even where it occurs once): σ' = 1 − x0² is then evaluated
    # the same way in d1_array and in d01_array
    extra = sorted(set().union(*(e.atoms(sp.tanh) for e in exprs)), key=sp.default_sort_key)
    repl, reduced = sp.cse(exprs + extra, symbols=syms)
    reduced = reduced[:len(exprs)]
    for s, e in repl:
        (v,) = assign([array_form(e, clamp)])
        program.append((s, v))
    outs = assign([array_form(e, clamp) for e in reduced])
    return program, outs, multi


def _emit_shared(name: str, args: tuple[str, ...], expr) -> str:
    """Array-world ``def name(*args, ns)`` with common subexpressions computed once
    (see :func:`_shared_program`)."""
    program, outs, multi = _shared_program(args, expr)
    pr = _printer("array")
    lines = [f"def {name}({_params(args)}):"]
    for s, e in program:
        lines.append(f"    {pr.doprint(s)} = {pr.doprint(e)}")
    outs = [pr.doprint(e) for e in outs]
    if multi:
        lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
    else:
        lines.append(f"    return {outs[0]}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# the in-place ("into") form of an array-world function


def emit_into(name: str, args: tuple[str, ...], expr, clamp: bool = True) -> str:
    """Source of ``def name(*args, out, tmp, ns)``: ``expr`` evaluated in place.

    The same program as the array-world function (:func:`_shared_program`:
    the same sympy expressions, the same shared calls), compiled to a sequence
    of ufunc calls ``ns.f(a, b, out=buffer)``, so no temporary array is
    allocated and each elementwise pass is one call.  ``out`` is a tuple of
    arrays receiving the outputs (one per component of a ``sympy.Tuple``),
    ``tmp`` a sequence of at least ``name.ntmp`` scratch arrays; all have the
    full (broadcast) shape and none may alias an argument.  For NumPy and
    CuPy (the ``out=`` keyword of ufuncs); the array-API path uses the
    allocating form.  Returns ``out``.  ``clamp=False``: see
    :func:`symbolic.activations.array_form` (the caller ignores underflow).
    """
    program, outs, multi = _shared_program(args, expr, clamp)
    try:
        comp = _IntoCompiler(args, program, outs)
    except TypeError:  # a function without a ufunc here: evaluate, then copy
        return _emit_into_copy(name, args, program, outs)
    lines = [f"def {name}({_params(args, 'out', 'tmp')}):"]
    lines += ["    " + ln for ln in comp.lines]
    lines.append("    return out")
    lines.append(f"\n\n{name}.ntmp = {comp.ntmp}")
    return "\n".join(lines) + "\n"


def _emit_into_copy(name, args, program, outs) -> str:
    """Fallback of :func:`emit_into`: the allocating program, copied into ``out``."""
    pr = _printer("array")
    lines = [f"def {name}({_params(args, 'out', 'tmp')}):"]
    for s, e in program:
        lines.append(f"    {pr.doprint(s)} = {pr.doprint(e)}")
    for k, e in enumerate(outs):
        lines.append(f"    ns.copyto(out[{k}], {pr.doprint(e)})")
    lines.append("    return out")
    lines.append(f"\n\n{name}.ntmp = 0")
    return "\n".join(lines) + "\n"


class _IntoCompiler:
    """Three-address code with ``out=`` buffers for one :func:`_shared_program`.

    Every sympy node that is not a symbol or a number gets one ufunc call per
    operation: ``Add`` → add/subtract (a negated partial sum is tracked, not
    formed), ``Mul`` → multiply and one divide for the denominators, ``x**2`` →
    square, ``x**-1`` → divide, other integer powers → repeated multiply, and
    exp, log, sqrt, sin, cos, tan, Abs, sign, Min, Max, CopySign → their ufunc.
    The first non-leaf operand of a node is evaluated directly into the node's
    buffer; the others into scratch buffers, released when used.  A shared
    subexpression lives in a scratch buffer until its last use, or in the
    output buffer when it *is* an output.
    """

    _FUNCS = {"exp": "exp", "log": "log", "sqrt": "sqrt", "sin": "sin", "cos": "cos",
              "tan": "tan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
              "Abs": "absolute", "sign": "sign", "CopySign": "copysign"}

    def __init__(self, args, program, outs):
        import sympy as sp

        self.sp = sp
        self.lines: list[str] = []
        self.free: list[int] = []
        self.ntmp = 0
        self.loc = {sp.Symbol(a): a for a in args}
        for a in args:  # the argument symbols as the derivation wrote them (real=True)
            self.loc[sp.Symbol(a, real=True)] = a
        uses: dict = {}
        for _, e in program:
            for s in e.free_symbols:
                uses[s] = uses.get(s, 0) + 1
        for e in outs:
            for s in e.free_symbols:
                uses[s] = uses.get(s, 0) + 1
        self.uses = uses
        direct = {}  # a shared symbol that is itself an output lives in that output
        for k, e in enumerate(outs):
            if e.is_Symbol and e not in self.loc and e not in direct:
                direct[e] = f"out[{k}]"
        for s, e in program:
            target = direct.get(s)
            if target is None:
                target = self._acquire()
            self._into(e, target)
            self.loc[s] = target
            self._consume(e)
        for k, e in enumerate(outs):
            target = f"out[{k}]"
            if e.is_Symbol and direct.get(e) == target:
                continue
            if self._is_leaf(e):
                self.emit(f"ns.copyto({target}, {self._leaf(e)})")
            else:
                self._into(e, target)
            self._consume(e)

    # buffers -------------------------------------------------------------
    def _acquire(self) -> str:
        if self.free:
            k = self.free.pop()
        else:
            k = self.ntmp
            self.ntmp += 1
        return f"tmp[{k}]"

    def _release(self, buf: str) -> None:
        if buf.startswith("tmp["):
            self.free.append(int(buf[4:-1]))

    def _consume(self, e) -> None:
        """One use of each shared symbol in ``e`` is done; free those at their last."""
        for s in e.free_symbols:
            if s in self.uses:
                self.uses[s] -= 1
                if self.uses[s] == 0 and s in self.loc and self.loc[s].startswith("tmp["):
                    self._release(self.loc[s])

    def emit(self, line: str) -> None:
        self.lines.append(line)

    # expressions ---------------------------------------------------------
    def _is_leaf(self, e) -> bool:
        return e.is_Symbol or e.is_number  # a symbol, or a constant (3, 1/2, π, √2, …)

    def _leaf(self, e) -> str:
        if e.is_Symbol:
            return self.loc[e]
        if not e.is_real:  # pragma: no cover - derived expressions are real
            raise TypeError(f"non-real constant {e}")
        return repr(float(e))  # correctly rounded, as the array world's ns.pi, ns.sqrt(2)

    def _value(self, e):
        """``(name, scratch)``: a leaf's name, or ``e`` evaluated into a scratch buffer."""
        if self._is_leaf(e):
            return self._leaf(e), None
        buf = self._acquire()
        self._into(e, buf)
        return buf, buf

    def _apply(self, fn: str, target: str, *operands) -> None:
        """``target = fn(*operands)``; each operand a sympy leaf/node or a buffer name."""
        names, scratch = [], []
        for op in operands:
            if isinstance(op, str):
                names.append(op)
            else:
                nm, buf = self._value(op)
                names.append(nm)
                if buf is not None:
                    scratch.append(buf)
        self.emit(f"ns.{fn}({', '.join(names)}, out={target})")
        for buf in scratch:
            self._release(buf)

    def _into(self, e, target: str) -> None:
        sp = self.sp
        if self._is_leaf(e):
            self.emit(f"ns.copyto({target}, {self._leaf(e)})")
        elif e.is_Add:
            self._add(e, target)
        elif e.is_Mul:
            self._mul(e, target)
        elif e.is_Pow:
            self._pow(e, target)
        elif isinstance(e, (sp.Min, sp.Max)):
            fn = "minimum" if isinstance(e, sp.Min) else "maximum"
            ops = sorted(e.args, key=self._is_leaf)  # computed operands first
            self._start(ops[0], target, fn, ops[1] if len(ops) > 1 else None)
            for a in ops[2:]:
                self._apply(fn, target, target, a)
        elif type(e).__name__ in self._FUNCS:
            fn = self._FUNCS[type(e).__name__]
            self._start(e.args[0], target, fn, *e.args[1:])
        else:  # pragma: no cover - every derived expression is covered above
            raise TypeError(f"no in-place form for {type(e).__name__}: {e}")

    def _start(self, first, target, fn, *rest):
        """``target = fn(first, *rest)``, with ``first`` evaluated into ``target`` if computed."""
        rest = [r for r in rest if r is not None]
        if self._is_leaf(first):
            self._apply(fn, target, first, *rest)
        else:
            self._into(first, target)
            self._apply(fn, target, target, *rest)

    def _add(self, e, target):
        terms = []
        for a in e.args:
            c, rest = a.as_coeff_Mul()
            if c.is_Number and c.is_negative:
                terms.append((-1, -a))
            else:
                terms.append((1, a))
        terms.sort(key=lambda t: self._is_leaf(t[1]))  # computed terms first
        sgn, first = terms[0]
        if self._is_leaf(first):
            sgn2, second = terms[1]
            if sgn == 1:
                self._apply("add" if sgn2 == 1 else "subtract", target, first, second)
                neg = False
            elif sgn2 == 1:
                self._apply("subtract", target, second, first)
                neg = False
            else:
                self._apply("add", target, first, second)
                neg = True
            rest = terms[2:]
        else:
            self._into(first, target)
            neg = sgn == -1
            rest = terms[1:]
        for s, a in rest:
            if not neg:
                self._apply("add" if s == 1 else "subtract", target, target, a)
            elif s == 1:
                self._apply("subtract", target, a, target)
                neg = False
            else:
                self._apply("add", target, target, a)
        if neg:
            self.emit(f"ns.negative({target}, out={target})")

    def _mul(self, e, target):
        sp = self.sp
        coeff, factors = e.as_coeff_mul()
        num, den = [], []
        for f in factors:
            if f.is_Pow and f.exp.is_Integer and f.exp < 0:
                den.append(f.base if f.exp == -1 else f.base ** (-f.exp))
            else:
                num.append(f)
        num.sort(key=self._is_leaf)  # computed factors first
        if coeff != 1 and not num:
            num, coeff = [coeff], sp.Integer(1)
        if not num:
            num = [sp.Integer(1)]
        if self._is_leaf(num[0]) and len(num) > 1:
            self._apply("multiply", target, num[0], num[1])
            rest = num[2:]
        elif self._is_leaf(num[0]) and not den and coeff == 1:
            self._into(num[0], target)
            rest = []
        elif self._is_leaf(num[0]):
            # a single leaf: fold the coefficient (or the division) into the first call
            if den:
                d = den[0] if len(den) == 1 else sp.Mul(*den)
                self._apply("divide", target, num[0], d)
                den = []
            else:
                self._apply("multiply", target, num[0], coeff)
                coeff = sp.Integer(1)
            rest = []
        else:
            self._into(num[0], target)
            rest = num[1:]
        for f in rest:
            self._apply("multiply", target, target, f)
        if den:
            d = den[0] if len(den) == 1 else sp.Mul(*den)
            self._apply("divide", target, target, d)
        if coeff != 1:
            if coeff == -1:
                self.emit(f"ns.negative({target}, out={target})")
            else:
                self._apply("multiply", target, target, coeff)

    def _pow(self, e, target):
        sp = self.sp
        b, x = e.base, e.exp
        if x == 2:
            self._start(b, target, "square")
        elif x == -1:
            self._apply("divide", target, sp.Integer(1), b)
        elif x == sp.Rational(1, 2):
            self._start(b, target, "sqrt")
        elif x.is_Integer and x > 2:
            nm, buf = self._value(b)
            self.emit(f"ns.multiply({nm}, {nm}, out={target})")
            for _ in range(int(x) - 2):
                self.emit(f"ns.multiply({target}, {nm}, out={target})")
            if buf is not None:
                self._release(buf)
        elif x.is_Integer and x < 0:
            self._apply("divide", target, sp.Integer(1), b ** (-x))
        else:
            self._start(b, target, "power", x)


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
    """Generated module with one function per template of :func:`symbolic.cell.derive`,
    and its in-place twin ``<name>_into`` (see :func:`emit_into`)."""

    def build():
        from .cell import derive

        parts = []
        for t in derive().values():
            parts.append(emit(t.name, t.args, t.expr, "array"))
            parts.append(emit_into(f"{t.name}_into", t.args, t.expr))
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
    (σ, σ', σ'') from shared transcendental calls; the in-place twins
    ``d0_into``, ``d1_into``, ``d01_into`` (:func:`emit_into`) and
    ``d0_into_noclamp``, ``d01_into_noclamp`` (the same numbers without the
    clamp of tanh's argument, for callers that ignore underflow); where σ(z) =
    F(k·z) with one exp (:func:`symbolic.activations.scaled_form`),
    ``Z_SCALE = k`` and ``d0_into_scaled(y)`` = F(y), else ``Z_SCALE = None``;
    where σ' is a
    polynomial in σ (:func:`symbolic.activations.derivative_in_sigma`),
    ``D1_OF_D0 = True`` and ``d1_of_d0_array(s0)``, ``d1_of_d0_into`` give σ'
    from s0 = σ(z); plus ``tail{k}_{pos,neg}`` factor forms for the tail-sign
    test."""

    def build():
        import sympy as sp

        from .activations import _derivative, derivative_in_sigma, scaled_form

        parts = [f"SOURCE = {source!r}\n"]
        for k in range(4):
            dk = _derivative(source, k)
            parts.append(emit(f"d{k}_array", ("z",), dk, "array", share=True))
            parts.append(emit(f"d{k}_interval", ("z",), dk, "interval"))
        ds = [_derivative(source, k) for k in range(3)]
        parts.append(emit("d01_array", ("z",), sp.Tuple(*ds[:2]), "array", share=True))
        parts.append(emit("d012_array", ("z",), sp.Tuple(*ds), "array", share=True))
        parts.append(emit_into("d0_into", ("z",), ds[0]))
        parts.append(emit_into("d1_into", ("z",), ds[1]))
        parts.append(emit_into("d01_into", ("z",), sp.Tuple(*ds[:2])))
        # without the clamp of tanh's argument: same numbers, one pass fewer,
        # for callers that ignore the underflow flag
        parts.append(emit_into("d0_into_noclamp", ("z",), ds[0], clamp=False))
        parts.append(emit_into("d01_into_noclamp", ("z",), sp.Tuple(*ds[:2]), clamp=False))
        # σ(z) = F(k·z) with one exp (tanh: k = 2, F = 1 − 2/(1 + exp(y))): the
        # forward pass forms y = k·z from scaled weights and calls d0_into_scaled
        sf = scaled_form(source)
        parts.append(f"Z_SCALE = {None if sf is None else float(sf[0])!r}\n")
        if sf is not None:
            parts.append(emit_into("d0_into_scaled", ("y",), sf[1]))
        p1 = derivative_in_sigma(source)
        parts.append(f"D1_OF_D0 = {p1 is not None}\n")
        if p1 is not None:
            parts.append(emit("d1_of_d0_array", ("s0",), p1, "array", share=True))
            parts.append(emit_into("d1_of_d0_into", ("s0",), p1))
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
