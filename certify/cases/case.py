"""Case files: load, validate, build (INTERFACE.md "Case file").

``load_case(path) -> Case`` reads a TOML case file, validates every table and
key, and eagerly builds the data (:mod:`certify.cases.data`), the symmetric
initialization (:mod:`certify.cases.init`) and the target (:mod:`certify.cases.targets`),
so that bad input is caught at load time.  Every user mistake is a
:class:`certify.errors.UserError` with a one-line message
``"{path}: [table].key: what is wrong"``.

Exact decimals.  The numbers that the certificate uses as exact rationals
(``[init].alpha0``, ``[ball].rho_w``, ``[ball].rho_u``, ``[train].eta``,
``[target].nu_w``, ``[target].nu_u``, ``[certify].delta``) may be written as
TOML floats (``0.1``), integers or decimal strings (``"0.1"``).  Either way the
loader keeps the *decimal text*: the value is a :class:`DecimalValue`, a
``float`` (the nearest double, usable anywhere a float is) that also carries
``.text`` (the decimal as written, e.g. ``"0.1"``) and ``.exact`` (the
:class:`fractions.Fraction` it denotes, ``1/10``).  Certifiers build intervals
from ``.text`` (``mpmath.iv.mpf(x.text)`` encloses the decimal), never from
the double.

Schema (``*`` = required; defaults in parentheses)::

    name*            string of letters, digits, '.', '_', '-'
    [model]          activation* (tanh | logistic | gaussian | sympy expression in z),
                     width* (even int > 0)
    [init]           seed* (int ≥ 0), alpha0* (decimal ≥ 0)
    [ball]           rho_w*, rho_u* (decimals ≥ 0)
    [data]           kind* and, by kind:
        sphere, gaussian-clipped:  n*, steps*, dim*, seed*
        file:                      path* (.npz, relative to the case file), n, steps, dim
                                   (optional; checked against the file)
        statsmodels:               series* (sunspots | co2), n*, steps*, dim*, stride (steps)
        ode:                       system* (van-der-pol | lorenz), n*, steps*, dim*, seed*,
                                   mu (1.0, van-der-pol only), noise (0.0), dt, burn_in
        sphere, gaussian-clipped, ode: test_n (0): held-out samples, the same source drawn
                                   with seed + 2^32 (the target evaluated on them);
                                   certificates then report executor.held_out
    [target]         kind* and, by kind:
        transport:      nu_w*, nu_u* (decimals ≥ 0), mc_draws* (int ≥ 2), seed*
        additive:       seed*, link ("tanh"), decay (0.5, in [0, 1]), amplitude (1.0)
        multi-index:    seed*, lags* (distinct ints in [0, steps)), link ("tanh"),
                        amplitude (1.0)
        linear-system:  seed*, rho_A* (in [0, 1)), state_dim (4), amplitude (1.0)
        file:           (none; needs data.kind = "file" with Y in the .npz)
        data:           (none; Y from the data source: file, statsmodels or ode)
    [train]          algorithm* (pgd | gd), eta* (decimal > 0), iterations* (int ≥ 1),
                     loss ("all-steps" | "final-step"; "all-steps")
    [certify]        (optional) delta ("0.05", in (0, 1)), data_specific (true),
                     box_budget (2000), rel_tol (0.02), lower_samples (none: the
                     certifier's default), memory_cap_mb (1536, ≥ 64), fp_factor
                     (none: the certifier's default), time_limit_s (none: no limit;
                     > 0: wall-clock seconds for the data-specific bounds, after which
                     the refinement stops, sound and looser, and the certificate
                     says so),
                     engine ("mpmath.iv" | "python-flint", aliases "iv", "mpmath",
                     "flint", "arb"; "mpmath.iv": the trusted interval engine of the
                     data-specific bounds; python-flint must be installed for
                     "python-flint")
    [meta]           (optional, free-form) description (string)

Links for ``additive`` / ``multi-index``: tanh | sin | square | linear.
With ``algorithm = "pgd"`` and a transport target, ``nu_w ≤ rho_w`` and
``nu_u ≤ rho_u`` are required (the comparator must lie in the ball).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FieldError, UserError
from .data import (
    SERIES,
    SOURCES,
    SOURCES_WITH_TARGETS,
    SYSTEMS,
    TEST_SOURCES,
    Data,
    build_source,
    build_test_source,
)
from .init import Init, symmetric_init
from .targets import LINKS, TARGET_KINDS, TargetInfo, build_target

__all__ = [
    "Case",
    "ModelSpec",
    "InitSpec",
    "BallSpec",
    "DataSpec",
    "TargetSpec",
    "TrainSpec",
    "CertifySpec",
    "Data",
    "Init",
    "TargetInfo",
    "DecimalValue",
    "load_case",
    "parse_case",
    "case_from_doc",
    "read_case_doc",
    "parse_float",
]

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


class DecimalValue(float):
    """A float that remembers the decimal it was written as.

    ``float(x)`` is the nearest double; ``x.text`` the decimal text (underscores
    removed); ``x.exact`` the exact :class:`~fractions.Fraction`.
    """

    text: str
    exact: Fraction

    def __new__(cls, text):
        if isinstance(text, DecimalValue):
            text = text.text
        elif isinstance(text, bool):
            raise ValueError("a boolean is not a decimal number")
        elif isinstance(text, int):
            text = str(text)
        elif not isinstance(text, str):
            raise TypeError(f"DecimalValue needs decimal text, got {type(text).__name__}")
        t = text.strip().replace("_", "")
        if not _DECIMAL.fullmatch(t):
            raise ValueError(f"not a decimal number: {text!r}")
        exact = Fraction(t)
        obj = super().__new__(cls, float(exact))
        obj.text = t
        obj.exact = exact
        return obj

    def __getnewargs__(self):
        return (self.text,)

    def __repr__(self):
        return f"DecimalValue({self.text!r})"

    def __str__(self):
        return self.text


def parse_float(s: str):
    """TOML floats as :class:`DecimalValue` (the decimal text kept); inf and nan as floats."""
    try:
        return DecimalValue(s)
    except ValueError:  # inf, nan: kept as plain floats, rejected where a number must be finite
        return float(s)


# --------------------------------------------------------------------------
# specs


@dataclass(frozen=True)
class ModelSpec:
    activation: str  # canonical name ("tanh", "logistic", "gaussian" or the expression)
    width: int
    source: str  # the sympy expression in z
    act: Any = field(repr=False, compare=False, default=None)  # symbolic.Activation


@dataclass(frozen=True)
class InitSpec:
    seed: int
    alpha0: DecimalValue


@dataclass(frozen=True)
class BallSpec:
    rho_w: DecimalValue
    rho_u: DecimalValue


@dataclass(frozen=True)
class DataSpec:
    kind: str
    n: int | None = None
    steps: int | None = None
    dim: int | None = None
    seed: int | None = None
    path: str | None = None  # as written ("file")
    resolved_path: Path | None = None  # absolute ("file")
    series: str | None = None  # "statsmodels"
    stride: int | None = None  # "statsmodels"
    system: str | None = None  # "ode"
    mu: float | None = None
    noise: float | None = None
    dt: float | None = None
    burn_in: float | None = None
    test_n: int = 0  # held-out samples (generated sources only)


@dataclass(frozen=True)
class TargetSpec:
    kind: str
    seed: int | None = None
    nu_w: DecimalValue | None = None  # transport
    nu_u: DecimalValue | None = None
    mc_draws: int | None = None
    link: str | None = None  # additive, multi-index
    decay: float | None = None  # additive
    lags: tuple[int, ...] | None = None  # multi-index
    amplitude: float | None = None  # additive, multi-index, linear-system
    rho_A: float | None = None  # linear-system
    state_dim: int | None = None


@dataclass(frozen=True)
class TrainSpec:
    algorithm: str  # "pgd" | "gd"
    eta: DecimalValue
    iterations: int
    loss: str = "all-steps"  # "all-steps" | "final-step"


@dataclass(frozen=True)
class CertifySpec:
    delta: DecimalValue = field(default_factory=lambda: DecimalValue("0.05"))
    data_specific: bool = True
    box_budget: int = 2000
    rel_tol: float = 0.02
    lower_samples: int | None = None
    memory_cap_mb: int = 1536
    fp_factor: float | None = None
    time_limit_s: float | None = None
    engine: str = "mpmath.iv"  # canonical name (certify.trusted.engines.canonical_engine)


@dataclass(frozen=True, eq=False)
class Case:
    """A validated case with its data, initialization and target built."""

    name: str
    path: Path
    sha256: str
    raw: dict
    model: ModelSpec
    init_spec: InitSpec
    ball: BallSpec
    data_spec: DataSpec
    target_spec: TargetSpec
    train: TrainSpec
    certify: CertifySpec
    meta: dict
    data: Data | None = None
    init: Init | None = None
    target_info: TargetInfo | None = None

    @property
    def description(self) -> str:
        return str(self.meta.get("description", ""))

    @property
    def width(self) -> int:
        return self.model.width

    m = width

    @property
    def activation(self):
        """The :class:`symbolic.Activation`."""
        return self.model.act

    @property
    def alpha0(self) -> DecimalValue:
        return self.init_spec.alpha0

    @property
    def alpha_m(self) -> float:
        """α_m = α₀ + ρ_w/√m as a float (observed; certifiers use the decimal texts)."""
        return float(self.init_spec.alpha0) + float(self.ball.rho_w) / math.sqrt(self.model.width)

    @property
    def seeds(self) -> dict:
        return {"init": self.init_spec.seed, "data": self.data_spec.seed,
                "target": self.target_spec.seed}


# --------------------------------------------------------------------------
# validation helpers

_MISSING = object()


def _toml_type(v) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "table"
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return "date-time"
    return type(v).__name__


def _show(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, (dict, list)):
        return _toml_type(v)
    return str(v)


class _Table:
    """One TOML table being read: typed getters that record the keys used."""

    def __init__(self, where: str, name: str, d: dict):
        self.where = where
        self.name = name
        self.d = d
        self.used: set[str] = set()

    def key(self, key: str) -> str:
        return f"[{self.name}].{key}" if self.name else key

    def error(self, key: str, msg: str) -> UserError:
        return UserError(f"{self.where}: {self.key(key)}: {msg}")

    def _raw(self, key, required, default):
        self.used.add(key)
        if key in self.d:
            return self.d[key]
        if required:
            raise self.error(key, "missing (required)")
        return default

    def has(self, key: str) -> bool:
        return key in self.d

    def str(self, key, *, required=True, default=None, choices=None) -> str | None:
        v = self._raw(key, required, _MISSING)
        if v is _MISSING:
            return default
        if not isinstance(v, str):
            raise self.error(key, f"expected a string, got {_toml_type(v)} {_show(v)}")
        if choices is not None and v not in choices:
            raise self.error(key, f"must be one of {', '.join(map(repr, choices))}, got {v!r}")
        return v

    def int(self, key, *, required=True, default=None, min=None) -> int | None:
        v = self._raw(key, required, _MISSING)
        if v is _MISSING:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(key, f"expected an integer, got {_toml_type(v)} {_show(v)}")
        if min is not None and v < min:
            raise self.error(key, f"must be ≥ {min}, got {v}")
        return v

    def bool(self, key, *, required=True, default=None) -> bool | None:
        v = self._raw(key, required, _MISSING)
        if v is _MISSING:
            return default
        if not isinstance(v, bool):
            raise self.error(key, f"expected a boolean (true or false), got {_toml_type(v)} "
                             f"{_show(v)}")
        return v

    def float(self, key, *, required=True, default=None, min=None, max=None,
              min_open=False, max_open=False) -> float | None:
        v = self._raw(key, required, _MISSING)
        if v is _MISSING:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(key, f"expected a number, got {_toml_type(v)} {_show(v)}")
        x = float(v)
        if not math.isfinite(x):
            raise self.error(key, f"must be finite, got {v}")
        self._range(key, Fraction(x), x, min, max, min_open, max_open)
        return x

    def decimal(self, key, *, required=True, default=None, min=None, max=None,
                min_open=False, max_open=False) -> DecimalValue | None:
        v = self._raw(key, required, _MISSING)
        if v is _MISSING:
            return None if default is None else DecimalValue(default)
        if isinstance(v, bool):
            raise self.error(key, f"expected a decimal number, got boolean {_show(v)}")
        if isinstance(v, DecimalValue):
            x = v
        elif isinstance(v, int):
            x = DecimalValue(v)
        elif isinstance(v, float):
            raise self.error(key, f"must be finite, got {v}")
        elif isinstance(v, str):
            try:
                x = DecimalValue(v)
            except ValueError:
                raise self.error(key, f"expected a decimal number (like 0.5 or \"0.5\"), "
                                 f"got {v!r}") from None
        else:
            raise self.error(key, f"expected a decimal number, got {_toml_type(v)} {_show(v)}")
        self._range(key, x.exact, x.text, min, max, min_open, max_open)
        return x

    def _range(self, key, q: Fraction, shown, lo, hi, lo_open, hi_open):
        if lo is not None:
            if lo_open and not q > Fraction(lo):
                what = "positive" if lo == 0 else f"> {lo}"
                raise self.error(key, f"must be {what}, got {shown}")
            if not lo_open and not q >= Fraction(lo):
                what = "nonnegative" if lo == 0 else f"≥ {lo}"
                raise self.error(key, f"must be {what}, got {shown}")
        if hi is not None:
            if hi_open and not q < Fraction(hi):
                raise self.error(key, f"must be < {hi}, got {shown}")
            if not hi_open and not q <= Fraction(hi):
                raise self.error(key, f"must be ≤ {hi}, got {shown}")

    def int_list(self, key, *, required=True) -> tuple[int, ...] | None:
        v = self._raw(key, required, _MISSING)
        if v is _MISSING:
            return None
        if not isinstance(v, list):
            raise self.error(key, f"expected an array of integers, got {_toml_type(v)} "
                             f"{_show(v)}")
        if not v:
            raise self.error(key, "must not be empty")
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int):
                raise self.error(key, f"expected an array of integers, found {_toml_type(x)} "
                                 f"{_show(x)}")
        return tuple(v)

    def finish(self, context: str = "") -> None:
        unknown = [k for k in self.d if k not in self.used]
        if not unknown:
            return
        allowed = ", ".join(sorted(self.used)) or "none"
        ctx = f" {context}" if context else ""
        if len(unknown) == 1:
            raise self.error(unknown[0], f"unknown key{ctx} (allowed: {allowed})")
        names = ", ".join(self.key(k) for k in unknown)
        raise UserError(f"{self.where}: {names}: unknown keys{ctx} (allowed: {allowed})")


_TABLES = ("model", "init", "ball", "data", "target", "train", "certify", "meta")
_REQUIRED_TABLES = ("model", "init", "ball", "data", "target", "train")


def _tables(where: str, doc: dict) -> dict[str, _Table]:
    top = _Table(where, "", doc)
    top.str("name")
    out = {}
    for name in _TABLES:
        if name not in doc:
            if name in _REQUIRED_TABLES:
                raise UserError(f"{where}: [{name}]: missing table (required)")
            out[name] = _Table(where, name, {})
            top.used.add(name)
            continue
        v = doc[name]
        top.used.add(name)
        if not isinstance(v, dict):
            raise UserError(f"{where}: [{name}]: expected a table, got {_toml_type(v)} "
                            f"{_show(v)}")
        out[name] = _Table(where, name, v)
    unknown = [k for k in doc if k not in top.used]
    if unknown:
        k = unknown[0]
        kind = "table" if isinstance(doc[k], dict) else "key"
        shown = f"[{k}]" if kind == "table" else k
        raise UserError(f"{where}: {shown}: unknown {kind} (allowed: name, "
                        f"{', '.join('[' + t + ']' for t in _TABLES)})")
    return out


# --------------------------------------------------------------------------
# the loader


def parse_case(path, doc: dict) -> dict:
    """Validate a parsed TOML document; returns the spec objects (no building).

    Keys: name, model, init_spec, ball, data_spec, target_spec, train, certify, meta.
    Each table is read by its own parser, in the order of the schema (so the first
    mistake in that order is the one reported), then the checks across tables.
    """
    where = str(path)
    T = _tables(where, doc)
    name = _name(where, doc["name"])
    model = _model(T["model"])
    init_spec = _init(T["init"])
    ball = _ball(T["ball"])
    data_spec = _data(T["data"])
    target_spec = _target(T["target"], data_spec)
    train = _train(T["train"])
    _comparator_in_ball(T["target"], train, target_spec, ball)
    certify = _certify(T["certify"])
    meta = _meta(T["meta"])
    return dict(name=name, model=model, init_spec=init_spec, ball=ball, data_spec=data_spec,
                target_spec=target_spec, train=train, certify=certify, meta=meta)


def _name(where: str, name: str) -> str:
    """``name`` (already checked to be a string): it names the output files."""
    if not _NAME.fullmatch(name):
        raise UserError(f"{where}: name: must be letters, digits, '.', '_' or '-' (it names "
                        f"the output files), got {name!r}")
    return name


def _model(t: _Table) -> ModelSpec:
    """``[model]``: a certifiable activation and an even width."""
    act_text = t.str("activation")
    width = t.int("width")
    if width <= 0:
        raise t.error("width", f"must be positive, got {width}")
    if width % 2:
        raise t.error("width", f"must be even, got {width}")
    import symbolic

    from ..trusted.activation_constants import check_certifiable

    try:
        act = check_certifiable(symbolic.resolve(act_text))
    except symbolic.ActivationError as exc:
        raise t.error("activation", str(exc)) from None
    t.finish()
    return ModelSpec(activation=act.name, width=width, source=act.source, act=act)


def _init(t: _Table) -> InitSpec:
    """``[init]``: seed and α₀."""
    init_spec = InitSpec(seed=t.int("seed", min=0), alpha0=t.decimal("alpha0", min=0))
    t.finish()
    return init_spec


def _ball(t: _Table) -> BallSpec:
    """``[ball]``: the radii ρ_w, ρ_u."""
    ball = BallSpec(rho_w=t.decimal("rho_w", min=0), rho_u=t.decimal("rho_u", min=0))
    t.finish()
    return ball


def _data(t: _Table) -> DataSpec:
    """``[data]``: the keys of its kind of source (a relative path is resolved against
    the case file's folder)."""
    kind = t.str("kind", choices=SOURCES)
    base = Path(t.where).resolve().parent
    if kind in ("sphere", "gaussian-clipped"):
        data_spec = DataSpec(kind=kind, n=t.int("n", min=1), steps=t.int("steps", min=1),
                             dim=t.int("dim", min=1), seed=t.int("seed", min=0))
    elif kind == "file":
        data_spec = _data_file(t, base)
    elif kind == "statsmodels":
        steps = t.int("steps", min=1)
        data_spec = DataSpec(kind=kind, series=t.str("series", choices=SERIES),
                             n=t.int("n", min=1), steps=steps, dim=t.int("dim", min=1),
                             stride=t.int("stride", required=False, default=steps, min=1))
    else:
        data_spec = _data_ode(t)
    test_n = t.int("test_n", required=False, default=0, min=0)
    if test_n and kind not in TEST_SOURCES:
        raise t.error("test_n", f"held-out samples need a source drawn from a seed "
                      f"({', '.join(TEST_SOURCES)}), not {kind!r}")
    data_spec = _replace(data_spec, test_n=test_n)
    t.finish(f"for data kind {kind!r}" + (f" with system {data_spec.system!r}"
                                          if kind == "ode" else ""))
    return data_spec


def _data_file(t: _Table, base: Path) -> DataSpec:
    """``[data]`` of kind ``file``: the path, and optional shapes checked against the file."""
    p = t.str("path")
    if not p.strip():
        raise t.error("path", "must not be empty")
    rp = Path(p) if Path(p).is_absolute() else base / p
    return DataSpec(kind="file", path=p, resolved_path=rp,
                    n=t.int("n", required=False, min=1),
                    steps=t.int("steps", required=False, min=1),
                    dim=t.int("dim", required=False, min=1))


def _data_ode(t: _Table) -> DataSpec:
    """``[data]`` of kind ``ode``: the system (``mu`` for Van der Pol only), whose state
    dimension ``dim`` must be."""
    system = t.str("system", choices=tuple(SYSTEMS))
    mu = None
    if system == "van-der-pol":
        mu = t.float("mu", required=False, default=1.0, min=0)
    data_spec = DataSpec(kind="ode", system=system, n=t.int("n", min=1),
                         steps=t.int("steps", min=1), dim=t.int("dim", min=1),
                         seed=t.int("seed", min=0), mu=mu,
                         noise=t.float("noise", required=False, default=0.0, min=0),
                         dt=t.float("dt", required=False, min=0, min_open=True),
                         burn_in=t.float("burn_in", required=False, min=0))
    if data_spec.dim != SYSTEMS[system]:
        raise t.error("dim", f"system {system!r} has a {SYSTEMS[system]}-dimensional "
                      f"state, so dim must be {SYSTEMS[system]}, got {data_spec.dim}")
    return data_spec


def _target(t: _Table, data_spec: DataSpec) -> TargetSpec:
    """``[target]``: the keys of its kind (multi-index lags and the kinds that take Y
    from the data source are checked against ``[data]``)."""
    tkind = t.str("kind", choices=TARGET_KINDS)
    if tkind == "transport":
        target_spec = TargetSpec(kind=tkind, nu_w=t.decimal("nu_w", min=0),
                                 nu_u=t.decimal("nu_u", min=0),
                                 mc_draws=t.int("mc_draws", min=2), seed=t.int("seed", min=0))
    elif tkind == "additive":
        target_spec = TargetSpec(kind=tkind, seed=t.int("seed", min=0), link=_link(t),
                                 decay=t.float("decay", required=False, default=0.5, min=0,
                                               max=1),
                                 amplitude=_amplitude(t))
    elif tkind == "multi-index":
        lags = _lags(t, data_spec.steps)
        target_spec = TargetSpec(kind=tkind, seed=t.int("seed", min=0), lags=lags,
                                 link=_link(t), amplitude=_amplitude(t))
    elif tkind == "linear-system":
        target_spec = TargetSpec(kind=tkind, seed=t.int("seed", min=0),
                                 rho_A=t.float("rho_A", min=0, max=1, max_open=True),
                                 state_dim=t.int("state_dim", required=False, default=4, min=1),
                                 amplitude=_amplitude(t))
    else:  # file, data
        target_spec = TargetSpec(kind=tkind)
        _target_from_source(t, tkind, data_spec.kind)
    t.finish(f"for target kind {tkind!r}")
    return target_spec


def _link(t: _Table) -> str:
    """``[target].link`` (additive, multi-index)."""
    return t.str("link", required=False, default="tanh", choices=tuple(LINKS))


def _amplitude(t: _Table) -> float:
    """``[target].amplitude`` (additive, multi-index, linear-system)."""
    return t.float("amplitude", required=False, default=1.0, min=0, min_open=True)


def _lags(t: _Table, steps: int | None) -> tuple[int, ...]:
    """``[target].lags``: distinct, each in [0, steps) (≥ 0 when steps comes from a file
    and is checked at build time)."""
    lags = t.int_list("lags")
    if len(set(lags)) != len(lags):
        raise t.error("lags", f"must be distinct, got {list(lags)}")
    for lag in lags:
        if lag < 0 or (steps is not None and lag >= steps):
            bound = f"[0, {steps})" if steps is not None else "≥ 0"
            raise t.error("lags", f"each lag must be in {bound}, got {lag}")
    return lags


def _target_from_source(t: _Table, tkind: str, data_kind: str) -> None:
    """Target kinds ``file`` and ``data`` need a data source that has Y."""
    if tkind == "file" and data_kind != "file":
        raise t.error("kind", f"'file' needs [data].kind = \"file\" (an .npz with Y), "
                      f"got data kind {data_kind!r}")
    if tkind == "data" and data_kind not in SOURCES_WITH_TARGETS:
        raise t.error("kind", f"'data' needs a data source that defines targets "
                      f"({', '.join(SOURCES_WITH_TARGETS)}), got data kind "
                      f"{data_kind!r}")


def _train(t: _Table) -> TrainSpec:
    """``[train]``: algorithm, step size, iterations and loss."""
    train = TrainSpec(algorithm=t.str("algorithm", choices=("pgd", "gd")),
                      eta=t.decimal("eta", min=0, min_open=True),
                      iterations=t.int("iterations", min=1),
                      loss=t.str("loss", required=False, default="all-steps",
                                 choices=("all-steps", "final-step")))
    t.finish()
    return train


def _comparator_in_ball(t: _Table, train: TrainSpec, target_spec: TargetSpec,
                        ball: BallSpec) -> None:
    """Across tables: projected GD needs the transport comparator inside the ball
    (``nu_w ≤ rho_w``, ``nu_u ≤ rho_u``; ``t`` is ``[target]``)."""
    if train.algorithm != "pgd" or target_spec.kind != "transport":
        return
    for nu, rho in (("nu_w", "rho_w"), ("nu_u", "rho_u")):
        a, b = getattr(target_spec, nu), getattr(ball, rho)
        if a.exact > b.exact:
            raise t.error(nu, f"{a} exceeds [ball].{rho} = {b}: with projected "
                          f"GD the comparator must lie in the ball "
                          f"(need {nu} ≤ {rho})")


def _certify(t: _Table) -> CertifySpec:
    """``[certify]`` (optional): every key has a default."""
    certify = CertifySpec(
        delta=t.decimal("delta", required=False, default="0.05", min=0, max=1,
                        min_open=True, max_open=True),
        data_specific=t.bool("data_specific", required=False, default=True),
        box_budget=t.int("box_budget", required=False, default=2000, min=1),
        rel_tol=t.float("rel_tol", required=False, default=0.02, min=0, min_open=True),
        lower_samples=t.int("lower_samples", required=False, min=1),
        memory_cap_mb=t.int("memory_cap_mb", required=False, default=1536, min=64),
        fp_factor=t.float("fp_factor", required=False, min=0, min_open=True),
        time_limit_s=t.float("time_limit_s", required=False, min=0, min_open=True),
        engine=_engine(t),
    )
    t.finish()
    return certify


def _meta(t: _Table) -> dict:
    """``[meta]`` (optional, free-form): only ``description`` must be a string."""
    if "description" in t.d:
        t.str("description")
    return dict(t.d)


def _engine(t: _Table) -> str:
    """``[certify].engine``: a known interval engine whose package is installed."""
    from ..trusted.engines import DEFAULT_ENGINE, ENGINE_NAMES, canonical_engine, engine_unavailable

    name = t.str("engine", required=False, default=DEFAULT_ENGINE)
    try:
        canon = canonical_engine(name)
    except ValueError:
        raise t.error("engine", f"unknown interval engine {name!r} (choose from "
                      f"{', '.join(map(repr, ENGINE_NAMES))})") from None
    why = engine_unavailable(canon)
    if why:
        raise t.error("engine", why)
    return canon


def read_case_doc(path) -> tuple[dict, bytes]:
    """The TOML document of the case file ``path`` (decimals kept as
    :class:`DecimalValue`, through :func:`parse_float`) and its bytes.

    Raises :class:`UserError` for a missing, unreadable, non-UTF-8 or non-TOML file.
    """
    where = str(path)
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{where}: is a folder, expected a case file (.toml)")
    try:
        raw_bytes = p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{where}: no such case file") from None
    except OSError as exc:
        raise UserError(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    try:
        doc = tomllib.loads(text, parse_float=parse_float)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{where}: invalid TOML: {exc}") from None
    return doc, raw_bytes


def case_from_doc(path, doc: dict, sha256: str, *, build: bool = True,
                  cache: bool = True) -> Case:
    """Validate (and with ``build``, build) a case from its parsed TOML document.

    ``path`` names the case in messages and anchors relative data paths; ``sha256``
    identifies its content in the certificate.  This is :func:`load_case` after the
    file is read: a sweep point (a base document with keys replaced) goes through it,
    so it is validated exactly like a case file.
    """
    where = str(path)
    specs = parse_case(where, doc)
    case = Case(path=Path(path), sha256=sha256, raw=doc, **specs)
    if not build:
        return case
    try:
        return _build(case, cache=cache)
    except FieldError as exc:
        raise UserError(f"{where}: [{exc.table}].{exc.key}: {exc.message}") from None


def load_case(path, *, build: bool = True, cache: bool = True) -> Case:
    """Load, validate and (``build=True``) build the case in ``path``.

    ``build=False`` validates the file only (``data``, ``init`` and
    ``target_info`` are None).  ``cache=False`` recomputes a Monte Carlo
    target even when a cached copy exists (see :mod:`certify.cases.targets`).
    Raises :class:`UserError` for any mistake in the file or its data.
    """
    doc, raw_bytes = read_case_doc(path)
    return case_from_doc(path, doc, hashlib.sha256(raw_bytes).hexdigest(), build=build,
                         cache=cache)


def _build(case: Case, *, cache: bool) -> Case:
    ds, ts = case.data_spec, case.target_spec
    need_y = ts.kind in ("file", "data")
    X, Y_source = build_source(ds, Path(case.path).resolve().parent, need_y=need_y)
    if ts.kind == "multi-index" and ds.steps is None:
        for lag in ts.lags:
            if lag >= X.shape[1]:
                raise FieldError("target", "lags", f"each lag must be in [0, {X.shape[1]}), "
                                 f"got {lag}")
    n, T, d = X.shape
    init = symmetric_init(case.model.width, d, case.init_spec.alpha0, case.init_spec.seed)
    info = build_target(ts, X, activation=case.model.act, alpha0=case.init_spec.alpha0,
                        Y_source=Y_source, cache=cache)
    Y = np.ascontiguousarray(info.Y, dtype=np.float64)
    if Y.shape != (n, T):  # pragma: no cover - builders return (n, T)
        raise FieldError("target", "kind", f"target has shape {Y.shape}, expected {(n, T)}")
    if not np.isfinite(Y).all():
        raise FieldError("target", "kind", "target has non-finite values")
    X_test, Ys_test = build_test_source(ds)
    Y_test = None
    if X_test is not None:
        held = build_target(ts, X_test, activation=case.model.act,
                            alpha0=case.init_spec.alpha0, Y_source=Ys_test, cache=cache)
        Y_test = np.ascontiguousarray(held.Y, dtype=np.float64)
    return _replace(case, data=Data(X=X, Y=Y, X_test=X_test, Y_test=Y_test), init=init,
                    target_info=info)


def _replace(case: Case, **changes) -> Case:
    import dataclasses

    return dataclasses.replace(case, **changes)
