"""Input data sources (THEORY §1: every input vector satisfies ‖x_t‖₂ ≤ 1).

Each source returns ``X`` of shape (n, T, d), float64, with ``‖x_t‖₂ ≤ 1``
holding *exactly* (as a sum of squares of the stored doubles, checked in
rational arithmetic where floating point cannot decide), and, for sources
that define their own targets, ``Y`` of shape (n, T).

Sources (``[data].kind``):

``sphere``
    ``x_t`` uniform on the unit sphere S^{d−1}: a standard normal vector
    divided by its norm (seeded by ``[data].seed``).
``gaussian-clipped``
    ``x_t ~ N(0, I_d/d)``, projected onto the unit ball (``x / max(1, ‖x‖)``).
``file``
    an ``.npz`` (``[data].path``, relative to the case file) holding ``X``
    (n, T, d) and, when the target comes from the file, ``Y`` (n, T); shapes,
    finiteness and ``‖x_t‖ ≤ 1`` are checked (nothing is rescaled).
``statsmodels``
    a real series bundled with statsmodels (``[data].series``: ``sunspots``,
    yearly 1700–2008, 309 values; or ``co2``, weekly Mauna Loa 1958–2001,
    2284 values, missing weeks filled by linear interpolation).  The series
    ``v`` is scaled affinely onto [−1, 1] (min ↦ −1, max ↦ 1).  Window ``j``
    starts at ``τ_j = (d−1) + j·stride`` (``[data].stride``, default T); its
    input at step t holds the current and d−1 lagged values,
    ``x_t = (v[τ+t], v[τ+t−1], …, v[τ+t−d+1]) / √d``, and its target is the
    next value, ``y_t = v[τ+t+1]`` (one-step-ahead prediction).
``ode``
    noisy observations of a dynamical system integrated with
    ``scipy.integrate.solve_ivp`` (LSODA, rtol 1e-8, atol 1e-10).
    ``[data].system = "van-der-pol"`` (d = 2; ``ṗ = q``,
    ``q̇ = μ(1 − p²)q − p``, ``[data].mu`` default 1; initial states uniform
    on [−3, 3]²; ``dt`` default 0.2, ``burn_in`` default 10) or ``"lorenz"``
    (d = 3; σ = 10, r = 28, b = 8/3; initial states ``(0, 0, 25) + 10·N(0, I)``;
    ``dt`` default 0.05, ``burn_in`` default 5).  Sample j is observed at
    times ``burn_in + k·dt``, k = 0..T, as ``o_k = s(t_k) + noise·N(0, I)``
    (``[data].noise`` ≥ 0, default 0).  Inputs ``x_t = o_t / S`` with
    ``S = max_{j,t<T} ‖o_t‖`` (so the largest input has norm 1); targets are
    the next observation of the first coordinate, ``y_t = o_{t+1,1} / S_1``
    with ``S_1 = max_{j,t} |o_{t+1,1}|`` (so |y_t| ≤ 1).  Initial states and
    noise come from ``default_rng([data].seed)``, in that order.

scipy and statsmodels are optional (the ``data`` extra) and imported only
when a case asks for them.  The statsmodels series are read from the data
files statsmodels ships, without importing statsmodels (or pandas).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import FieldError

__all__ = [
    "Data",
    "SOURCES",
    "SERIES",
    "SYSTEMS",
    "build_source",
    "sphere",
    "gaussian_clipped",
    "load_npz",
    "statsmodels_series",
    "ode",
    "OdeSettings",
    "into_unit_ball",
    "norm_violations",
]

SOURCES = ("sphere", "gaussian-clipped", "file", "statsmodels", "ode")
#: sources that also define the targets Y
SOURCES_WITH_TARGETS = ("file", "statsmodels", "ode")
SERIES = ("sunspots", "co2")
SYSTEMS = {"van-der-pol": 2, "lorenz": 3}
ODE_DEFAULTS = {"van-der-pol": {"dt": 0.2, "burn_in": 10.0},
                "lorenz": {"dt": 0.05, "burn_in": 5.0}}


@dataclass(frozen=True, eq=False)
class Data:
    """Training samples: ``X`` (n, T, d) and ``Y`` (n, T), float64; held-out samples
    ``X_test``, ``Y_test`` (``[data].test_n`` of them; None when it is 0)."""

    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray | None = None
    Y_test: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def steps(self) -> int:
        return int(self.X.shape[1])

    @property
    def dim(self) -> int:
        return int(self.X.shape[2])


# --------------------------------------------------------------------------
# the unit-ball condition, decided exactly


def _band(d: int) -> float:
    # fl(Σ x²) over d terms is within γ_{d}·Σx² ≲ d·2⁻⁵³ of the exact sum; rows
    # whose computed sum lies within this band of 1 are decided exactly
    return max(1e-12, 4.0 * (d + 1) * 2.0**-53)


def _exact_sq(row) -> Fraction:
    return sum((Fraction(float(v)) ** 2 for v in row), Fraction(0))


def norm_violations(X: np.ndarray) -> np.ndarray:
    """Boolean mask (shape X.shape[:-1]) of the vectors with exact ‖x‖₂ > 1.

    Floating point decides every vector whose computed squared norm is clearly
    on one side of 1; the rest are decided in exact rational arithmetic.
    ``X`` must be finite.
    """
    X = np.asarray(X, dtype=np.float64)
    s = np.sum(X * X, axis=-1)
    band = _band(X.shape[-1])
    bad = s > 1.0 + band
    near = np.argwhere((s > 1.0 - band) & ~bad)
    for idx in near:
        idx = tuple(idx)
        if _exact_sq(X[idx]) > 1:
            bad[idx] = True
    return bad


def into_unit_ball(X: np.ndarray) -> np.ndarray:
    """``x / max(1, ‖x‖)`` for every vector, then shrink any vector whose exact
    norm still exceeds 1 (by rounding) by a few ulps.  Returns a new array."""
    X = np.array(X, dtype=np.float64, copy=True)
    nrm = np.sqrt(np.sum(X * X, axis=-1))
    scale = np.where(nrm > 1.0, 1.0 / np.where(nrm > 1.0, nrm, 1.0), 1.0)
    X *= scale[..., None]
    shrink = 1.0 - 2.0**-52
    for _ in range(64):
        bad = norm_violations(X)
        if not bad.any():
            return np.ascontiguousarray(X)
        X[bad] *= shrink
        shrink *= shrink
    raise AssertionError("could not bring the data into the unit ball")  # pragma: no cover


def check_inputs(X: np.ndarray, key: str, where: str = "") -> None:
    """Raise FieldError([data].key) if X has NaN/inf or a vector with ‖x‖ > 1."""
    pre = f"{where}: " if where else ""
    finite = np.isfinite(X)
    if not finite.all():
        j, t, k = (int(i) for i in np.argwhere(~finite)[0])
        raise FieldError("data", key, f"{pre}X[{j}, {t}, {k}] = {X[j, t, k]} is not finite")
    bad = norm_violations(X)
    if bad.any():
        j, t = (int(i) for i in np.argwhere(bad)[0])
        excess = float(_exact_sq(X[j, t]) - 1)
        count = int(bad.sum())
        raise FieldError("data", key, f"{pre}‖x_t‖₂ > 1 at X[{j}, {t}] (‖x‖² = 1 + {excess:.3g}); "
                         f"{count} vector{'s' if count > 1 else ''} in all: every input must "
                         f"satisfy ‖x_t‖₂ ≤ 1, rescale the data")


# --------------------------------------------------------------------------
# sources


def sphere(n: int, T: int, d: int, seed: int) -> np.ndarray:
    """x_t uniform on S^{d−1} (normalized standard normal vectors)."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, T, d))
    nrm = np.sqrt(np.sum(G * G, axis=-1, keepdims=True))
    nrm[nrm == 0] = 1.0  # probability zero; keeps the zero vector (inside the ball)
    return into_unit_ball(G / nrm)


def gaussian_clipped(n: int, T: int, d: int, seed: int) -> np.ndarray:
    """x_t ~ N(0, I/d) projected onto the unit ball."""
    rng = np.random.default_rng(seed)
    return into_unit_ball(rng.standard_normal((n, T, d)) / math.sqrt(d))


def load_npz(path: Path, *, need_y: bool, shown: str | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Read and validate ``X`` (and ``Y``) from an .npz; FieldError on ``[data].path``."""
    shown = shown or str(path)
    path = Path(path)
    if not path.is_file():
        raise FieldError("data", "path", f"no such file: {shown}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise FieldError("data", "path", f"{shown}: not a readable .npz file "
                         f"({type(exc).__name__}: {exc})") from None
    if "X" not in arrays:
        raise FieldError("data", "path", f"{shown}: no array named 'X' "
                         f"(found: {', '.join(sorted(arrays)) or 'none'})")
    X = _numeric(arrays["X"], "X", shown)
    if X.ndim != 3 or min(X.shape) == 0:
        raise FieldError("data", "path", f"{shown}: X has shape {X.shape}, "
                         f"expected (n, T, d) with n, T, d ≥ 1")
    check_inputs(X, "path", shown)
    Y = None
    if "Y" in arrays:
        Y = _numeric(arrays["Y"], "Y", shown)
        if Y.shape != X.shape[:2]:
            raise FieldError("data", "path", f"{shown}: Y has shape {Y.shape}, expected "
                             f"(n, T) = {X.shape[:2]} to match X")
        if not np.isfinite(Y).all():
            j, t = (int(i) for i in np.argwhere(~np.isfinite(Y))[0])
            raise FieldError("data", "path", f"{shown}: Y[{j}, {t}] = {Y[j, t]} is not finite")
    elif need_y:
        raise FieldError("data", "path", f"{shown}: no array named 'Y' (the target comes "
                         f"from the file)")
    return np.ascontiguousarray(X), (None if Y is None else np.ascontiguousarray(Y))


def _numeric(a: np.ndarray, name: str, shown: str) -> np.ndarray:
    if a.dtype.kind not in "fiu":
        raise FieldError("data", "path", f"{shown}: {name} has dtype {a.dtype}, expected "
                         f"real numbers")
    out = a.astype(np.float64)
    if a.dtype.kind in "iu" and not np.array_equal(out.astype(a.dtype), a):
        raise FieldError("data", "path", f"{shown}: {name} has integers not exact in float64")
    return out


def _optional_package(name: str, table_key: tuple[str, str]):
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise FieldError(*table_key, f"needs the package {name!r}: install the 'data' extra "
                         f"(pip install 'rnn-certify[data]')")
    return spec


def series_values(series: str) -> np.ndarray:
    """The raw values of a statsmodels series (read from its bundled CSV)."""
    spec = _optional_package("statsmodels", ("data", "series"))
    root = Path(spec.origin).parent / "datasets"
    if series == "sunspots":
        arr = np.genfromtxt(root / "sunspots" / "sunspots.csv", delimiter=",", names=True)
        v = np.asarray(arr["SUNACTIVITY"], dtype=np.float64)
    elif series == "co2":
        arr = np.genfromtxt(root / "co2" / "co2.csv", delimiter=",", names=True)
        v = np.asarray(arr["co2"], dtype=np.float64)
        ok = np.isfinite(v)
        idx = np.arange(v.size)
        v = np.interp(idx, idx[ok], v[ok])
    else:
        raise FieldError("data", "series", f"unknown series {series!r} "
                         f"(expected one of: {', '.join(SERIES)})")
    if v.size == 0 or not np.isfinite(v).all():  # pragma: no cover - bundled data
        raise FieldError("data", "series", f"series {series!r} could not be read")
    return v


def statsmodels_series(series: str, n: int, T: int, d: int, stride: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows over a statsmodels series (see the module docstring)."""
    v = series_values(series)
    lo, hi = float(v.min()), float(v.max())
    v = np.clip((2.0 * v - (lo + hi)) / (hi - lo), -1.0, 1.0)
    need = (d - 1) + (n - 1) * stride + T + 1
    if need > v.size:
        raise FieldError("data", "n", f"series {series!r} has {v.size} values; n = {n} windows "
                         f"of steps = {T} with stride = {stride} and dim = {d} lags need {need}")
    tau = (d - 1) + stride * np.arange(n)
    t = np.arange(T)
    lags = np.arange(d)
    X = v[tau[:, None, None] + t[None, :, None] - lags[None, None, :]] / math.sqrt(d)
    Y = v[tau[:, None] + t[None, :] + 1]
    return into_unit_ball(X), np.ascontiguousarray(Y)


def _vdp(mu):
    def f(_t, y):
        p, q = y[0::2], y[1::2]
        out = np.empty_like(y)
        out[0::2] = q
        out[1::2] = mu * (1.0 - p * p) * q - p
        return out
    return f


def _lorenz(sigma=10.0, r=28.0, b=8.0 / 3.0):
    def f(_t, y):
        x, yy, z = y[0::3], y[1::3], y[2::3]
        out = np.empty_like(y)
        out[0::3] = sigma * (yy - x)
        out[1::3] = x * (r - z) - yy
        out[2::3] = x * yy - b * z
        return out
    return f


@dataclass(frozen=True)
class OdeSettings:
    """The optional settings of an ``ode`` source: ``[data].mu`` (Van der Pol only),
    ``noise``, ``dt`` and ``burn_in`` (None: the system's default, ``ODE_DEFAULTS``)."""

    mu: float | None = 1.0
    noise: float = 0.0
    dt: float | None = None
    burn_in: float | None = None


def ode(system: str, n: int, T: int, d: int, seed: int,
        settings: OdeSettings = OdeSettings()) -> tuple[np.ndarray, np.ndarray]:
    """Noisy observations of Van der Pol or Lorenz (see the module docstring)."""
    mu, noise, dt, burn_in = settings.mu, settings.noise, settings.dt, settings.burn_in
    if system not in SYSTEMS:
        raise FieldError("data", "system", f"unknown system {system!r} "
                         f"(expected one of: {', '.join(SYSTEMS)})")
    k = SYSTEMS[system]
    if d != k:
        raise FieldError("data", "dim", f"system {system!r} has a {k}-dimensional state, "
                         f"so dim must be {k}, got {d}")
    _optional_package("scipy", ("data", "kind"))
    from scipy.integrate import solve_ivp

    dt = ODE_DEFAULTS[system]["dt"] if dt is None else float(dt)
    burn_in = ODE_DEFAULTS[system]["burn_in"] if burn_in is None else float(burn_in)
    rng = np.random.default_rng(seed)
    if system == "van-der-pol":
        y0 = rng.uniform(-3.0, 3.0, size=(n, 2))
        fun = _vdp(float(mu))
    else:
        y0 = np.array([0.0, 0.0, 25.0]) + 10.0 * rng.standard_normal((n, 3))
        fun = _lorenz()
    times = burn_in + dt * np.arange(T + 1)
    sol = solve_ivp(fun, (0.0, float(times[-1])), y0.reshape(-1), method="LSODA",
                    t_eval=times, rtol=1e-8, atol=1e-10)
    if not sol.success or sol.y.shape[1] != T + 1 or not np.isfinite(sol.y).all():
        raise FieldError("data", "system", f"integrating {system!r} failed: {sol.message}")
    states = sol.y.reshape(n, k, T + 1).transpose(0, 2, 1)  # (n, T+1, k)
    obs = states + float(noise) * rng.standard_normal(states.shape)
    inputs = obs[:, :T, :]
    S = float(np.sqrt(np.sum(inputs**2, axis=-1)).max())
    nxt = obs[:, 1:, 0]
    S1 = float(np.abs(nxt).max())
    X = inputs / (S if S > 0 else 1.0)
    Y = nxt / (S1 if S1 > 0 else 1.0)
    return into_unit_ball(X), np.ascontiguousarray(Y)


#: the held-out samples of a generated source use the seed ``seed + TEST_SEED_OFFSET``
#: (independent of the training draws and of n, so a search over n keeps one test set)
TEST_SEED_OFFSET = 2**32
#: the sources that can draw held-out samples (those generated from a seed)
TEST_SOURCES = ("sphere", "gaussian-clipped", "ode")


def build_test_source(spec) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(X, Y or None)`` of the ``spec.test_n`` held-out samples of a generated
    source (``(None, None)`` when test_n is 0)."""
    if not spec.test_n:
        return None, None
    held = dataclasses.replace(spec, n=spec.test_n, seed=spec.seed + TEST_SEED_OFFSET)
    return build_source(held)


def build_source(spec, base_dir: Path | None = None, *, need_y: bool = False
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(X, Y or None)`` for a :class:`certify.cases.case.DataSpec` (FieldError on bad input).

    ``base_dir`` is where a relative ``[data].path`` is looked up (the case
    file's folder).  ``need_y``: the target is taken from the data source.
    """
    kind = spec.kind
    if kind == "sphere":
        return sphere(spec.n, spec.steps, spec.dim, spec.seed), None
    if kind == "gaussian-clipped":
        return gaussian_clipped(spec.n, spec.steps, spec.dim, spec.seed), None
    if kind == "file":
        p = Path(spec.path)
        if not p.is_absolute() and base_dir is not None:
            p = Path(base_dir) / p
        X, Y = load_npz(p, need_y=need_y, shown=str(spec.path))
        for key, got, want in (("n", X.shape[0], spec.n), ("steps", X.shape[1], spec.steps),
                               ("dim", X.shape[2], spec.dim)):
            if want is not None and got != want:
                raise FieldError("data", key, f"is {want} but {spec.path} has X of shape "
                                 f"{X.shape}")
        return X, Y
    if kind == "statsmodels":
        return statsmodels_series(spec.series, spec.n, spec.steps, spec.dim, spec.stride)
    if kind == "ode":
        settings = OdeSettings(mu=spec.mu, noise=spec.noise, dt=spec.dt, burn_in=spec.burn_in)
        return ode(spec.system, spec.n, spec.steps, spec.dim, spec.seed, settings)
    raise FieldError("data", "kind", f"unknown data kind {kind!r} "
                     f"(expected one of: {', '.join(SOURCES)})")
