"""Targets ``Y`` (n, T) for a case (THEORY §6; seed paper 002's concept classes).

Kinds (``[target].kind``):

``transport`` — the realizable class (the only one with ``in_class = True``)
    ``f*_t(X) = E_{θ∼init}[⟨v(θ), ∇_θ h_t(X; θ)⟩]`` for the transport map

        v_w(θ) = ν̄_w · cos(⟨a, u⟩ + b₀),      v_u(θ) = ν̄_u · sin(⟨a', u⟩ + b₁) · e

    with ``a, a' ~ N(0, I_d/d)``, ``e`` uniform on S^{d−1}, ``b₀, b₁ ~ Unif[0, 2π)``
    drawn from the target seed (it depends on ``u`` only, so ``|v_w| ≤ ν̄_w`` and
    ``‖v_u‖ ≤ ν̄_u``; both hold exactly for the stored doubles: the amplitudes are
    shrunk by 2⁻⁵⁰ relative, below the exact decimal ν̄).  The expectation is
    over one neuron's initial law, ``u ~ N(0, I_d)``, ``w ~ Unif[−α₀, α₀]``, and
    is estimated by plain Monte Carlo with ``M = mc_draws`` draws; the reported
    standard error is the per-(j, t) sample standard deviation over √M (an
    honest estimate: no variance reduction is claimed).  The directional
    derivative ``j_t = ⟨v, ∇_θ h_t⟩`` is computed forward in t with the
    generated template ``symbolic.cell_functions().jvp`` (and ``z``, and the
    generated σ, σ'), never by a hand-written derivative.

    Seeds: ``SeedSequence([target].seed).spawn(2)`` gives two independent
    streams, the first for the map's parameters, the second for the Monte
    Carlo draws; both are independent of the init stream
    (``default_rng([init].seed)``) and of the data stream.

    The executor builds the comparator ``θ̄_i = θ_i(0) + c_i v(θ_i(0))/√m`` with
    ``TargetInfo.transport_map(w0, U0) -> (vw, vU)``.

``additive`` — seed 002's additive concept class
    ``y_t = A · Σ_{l=0}^{t} γ^{t−l} φ(β_lᵀ x_l) / (φ_max · Σ_{k=0}^{T−1} γ^k)``
    with one seeded unit vector β_l per position l, ``γ = [target].decay``
    (default 0.5), ``A = [target].amplitude`` (default 1) and
    ``φ_max = max_{|s|≤1} |φ(s)|``, so ``|y_t| ≤ A``.

``multi-index`` — seed 002's non-additive class
    ``y_t = A · φ(βᵀ[x_{t−l₁}; …; x_{t−l_N}]) / φ_max`` with lags
    ``[target].lags`` (``x_s = 0`` for s < 0) and a seeded β uniform on the
    sphere of radius 1/√N in R^{N·d} (so the argument lies in [−1, 1]).

``linear-system`` — a stable linear state-space model
    ``s_t = A s_{t−1} + B x_t`` (``s_{−1} = 0``), ``y_t = amplitude · Cᵀ s_t /
    Σ_{k<T} ρ^k`` with ``A = ρ·Q`` (``ρ = [target].rho_A < 1``, Q a seeded
    random orthogonal matrix, so ``‖A‖₂ = ρ(A) = ρ``), B seeded with
    ``‖B‖₂ = 1`` and C a seeded unit vector, state dimension
    ``[target].state_dim`` (default 4); ``|y_t| ≤ amplitude``.

``file`` / ``data`` — Y from the data source (``file``: the .npz's ``Y``;
    ``data``: any source that defines targets: file, statsmodels, ode).

Links φ (``[target].link``): ``tanh``, ``sin``, ``square`` (s²), ``linear`` (s).
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FieldError

__all__ = [
    "TargetInfo",
    "TransportMap",
    "TARGET_KINDS",
    "LINKS",
    "make_transport_map",
    "transport_target",
    "cached_transport_target",
    "directional_states",
    "neuron_states",
    "additive_target",
    "multi_index_target",
    "linear_system_target",
    "build_target",
]

TARGET_KINDS = ("transport", "additive", "multi-index", "linear-system", "file", "data")

#: link name -> (φ on arrays, max_{|s|≤1} |φ(s)|)
LINKS: dict[str, tuple[Callable, float]] = {
    "tanh": (np.tanh, math.tanh(1.0)),
    "sin": (np.sin, math.sin(1.0)),
    "square": (np.square, 1.0),
    "linear": (lambda s: s, 1.0),
}

#: draws per RNG block (fixed, so results do not depend on memory chunking)
DRAW_BLOCK = 4096
#: elements per work array in the Monte Carlo loop (samples are grouped to fit)
_WORK_ELEMENTS = 1 << 21
#: relative shrink of the transport amplitudes, so |v| ≤ ν̄ holds for the doubles
_SHRINK = 1.0 - 2.0**-50


@dataclass(frozen=True, eq=False)
class TargetInfo:
    """A case's target: ``Y`` (n, T) and what is known about it."""

    kind: str
    Y: np.ndarray
    in_class: bool
    stderr: np.ndarray | None = None  # per-(j, t) Monte Carlo standard error (transport)
    mc_draws: int | None = None
    seed: int | None = None
    transport_map: TransportMap | None = None
    nu_w: float | None = None
    nu_u: float | None = None
    description: str = ""

    @property
    def max_stderr(self) -> float | None:
        return None if self.stderr is None else float(np.max(self.stderr))


# --------------------------------------------------------------------------
# transport


def _namespace(*arrays):
    try:
        from array_api_compat import array_namespace

        return array_namespace(*arrays)
    except ImportError:  # pragma: no cover - array-api-compat is a core dependency
        return np


@dataclass(frozen=True, eq=False)
class TransportMap:
    """``v(θ) = (ν̄_w cos(⟨a,u⟩+b₀), ν̄_u sin(⟨a',u⟩+b₁) e)`` (see the module docstring).

    ``tmap(w0, U0) -> (vw (m,), vU (m, d))``; any array-API namespace.
    """

    nu_w: float
    nu_u: float
    a: np.ndarray
    b0: float
    a2: np.ndarray
    b1: float
    e: np.ndarray
    amp_w: float  # ≤ ν̄_w·(1 − 2⁻⁵⁰), the double actually used
    amp_u: float

    def __call__(self, w0, U0):
        xp = _namespace(U0)
        try:
            from array_api_compat import device

            dev = device(U0)
            a, a2, e = (xp.asarray(v, device=dev) for v in (self.a, self.a2, self.e))
        except ImportError:  # pragma: no cover
            a, a2, e = self.a, self.a2, self.e
        vw = self.amp_w * xp.cos(U0 @ a + self.b0)
        vU = (self.amp_u * xp.sin(U0 @ a2 + self.b1))[:, None] * e[None, :]
        return vw, vU


def make_transport_map(d: int, nu_w, nu_u, seed: int) -> TransportMap:
    """The transport map of target seed ``seed`` in input dimension ``d``."""
    from .data import into_unit_ball
    from .init import float_below

    map_ss, _ = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(map_ss)
    a = rng.standard_normal(d) / math.sqrt(d)
    a2 = rng.standard_normal(d) / math.sqrt(d)
    g = rng.standard_normal(d)
    e = into_unit_ball((g / np.linalg.norm(g))[None, None, :])[0, 0]
    b0, b1 = (float(b) for b in rng.uniform(0.0, 2.0 * math.pi, size=2))
    return TransportMap(nu_w=float(nu_w), nu_u=float(nu_u), a=a, b0=b0, a2=a2, b1=b1, e=e,
                        amp_w=float_below(nu_w) * _SHRINK, amp_u=float_below(nu_u) * _SHRINK)


def _templates(activation):
    import symbolic

    act = symbolic.activation_functions(activation)
    return symbolic.cell_functions(), act


def directional_states(w, U, vw, vU, X, activation, ns=np, keep_h: bool = True):
    """Hidden states and directional derivatives of neurons ``(w_b, u_b)``.

    Returns ``(H, J)``, each (n, T, B): ``H[j, t, b] = h_t(X_j; θ_b)`` and
    ``J[j, t, b] = ⟨v_b, ∇_θ h_t(X_j; θ_b)⟩`` for directions ``v_b = (vw_b, vU_b)``,
    computed with the generated templates ``z``, ``jvp``, σ and σ'.
    ``keep_h=False`` skips storing H (returned as None).
    """
    cell, act = _templates(activation)
    S = X @ U.T  # (n, T, B): s_t = ⟨u, x_t⟩
    VX = X @ vU.T  # (n, T, B): ⟨v_u, x_t⟩
    n, T = X.shape[0], X.shape[1]
    B = w.shape[0]
    H = ns.zeros((n, T, B), dtype=X.dtype) if keep_h else None
    J = ns.zeros((n, T, B), dtype=X.dtype)
    h = ns.zeros((n, B), dtype=X.dtype)
    jv = ns.zeros((n, B), dtype=X.dtype)
    for t in range(T):
        z = cell.z(w, h, S[:, t, :], ns=ns)
        s1 = act.d1_array(z, ns=ns)
        jv = cell.jvp(s1, w, h, vw, VX[:, t, :], jv, ns=ns)
        h = act.d0_array(z, ns=ns)
        if keep_h:
            H[:, t, :] = h
        J[:, t, :] = jv
    return H, J


def neuron_states(w, U, X, activation, ns=np):
    """Hidden states ``H[j, t, i] = h_t^i(X_j)`` (n, T, m) with the generated templates."""
    cell, act = _templates(activation)
    S = X @ U.T
    n, T = X.shape[0], X.shape[1]
    H = ns.zeros((n, T, w.shape[0]), dtype=X.dtype)
    h = ns.zeros((n, w.shape[0]), dtype=X.dtype)
    for t in range(T):
        h = act.d0_array(cell.z(w, h, S[:, t, :], ns=ns), ns=ns)
        H[:, t, :] = h
    return H


def _draw_theta(rng, B: int, d: int, alpha0) -> tuple[np.ndarray, np.ndarray]:
    """B draws of one neuron's initial law: U (B, d) ~ N(0, I), then w ~ Unif[−α₀, α₀]."""
    from .init import float_below

    U = rng.standard_normal((B, d))
    a = float(alpha0)
    w = rng.uniform(-a, a, size=B) if a > 0 else np.zeros(B)
    a_lo = float_below(alpha0)
    return np.clip(w, -a_lo, a_lo), U


def transport_target(X: np.ndarray, activation, alpha0, tmap: TransportMap, draws: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo estimate of ``f*`` and its standard error, each (n, T).

    Draws come in fixed blocks of :data:`DRAW_BLOCK` from the second stream of
    ``SeedSequence(seed)``; samples are processed in groups so that work
    arrays hold about 2²¹ numbers (memory O(block·group·T)); the result does
    not depend on the grouping.  Block statistics are merged with Chan's
    parallel variance formula.
    """
    if draws < 2:
        raise ValueError("need at least two draws for a standard error")
    X = np.asarray(X, dtype=np.float64)
    n, T, d = X.shape
    _, mc_ss = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(mc_ss)
    group = max(1, _WORK_ELEMENTS // (T * DRAW_BLOCK))
    count = 0
    mean = np.zeros((n, T))
    m2 = np.zeros((n, T))
    while count < draws:
        B = min(DRAW_BLOCK, draws - count)
        w, U = _draw_theta(rng, B, d, alpha0)
        vw, vU = tmap(w, U)
        bmean = np.empty((n, T))
        bm2 = np.empty((n, T))
        for j0 in range(0, n, group):
            _, J = directional_states(w, U, vw, vU, X[j0:j0 + group], activation,
                                      keep_h=False)
            mu = J.mean(axis=2)
            bmean[j0:j0 + group] = mu
            bm2[j0:j0 + group] = np.sum((J - mu[..., None]) ** 2, axis=2)
        tot = count + B
        delta = bmean - mean
        mean = mean + delta * (B / tot)
        m2 = m2 + bm2 + delta**2 * (count * B / tot)
        count = tot
    stderr = np.sqrt(m2 / (draws - 1) / draws)
    return mean, stderr


def _cache_key(X, activation, alpha0, tmap: TransportMap, draws: int, seed: int) -> str:
    """Everything the Monte Carlo result depends on, hashed."""
    import symbolic

    from . import data as _data
    from . import init as _init

    if isinstance(activation, str):
        activation = symbolic.resolve(activation)
    h = hashlib.sha256()
    h.update(b"transport-mc-v1\0")
    for mod in (sys.modules[__name__], _data, _init):
        h.update(Path(mod.__file__).read_bytes())
    for mod in (symbolic.cell_functions(), symbolic.activation_functions(activation)):
        h.update(Path(mod.__file__).read_bytes())
    h.update(np.__version__.encode())
    X = np.ascontiguousarray(X, dtype=np.float64)
    h.update(repr(X.shape).encode())
    h.update(X.tobytes())
    a_text = getattr(alpha0, "text", None) or repr(float(alpha0))
    for part in (activation.source, a_text, repr(tmap.amp_w), repr(tmap.amp_u),
                 repr(tmap.nu_w), repr(tmap.nu_u), str(int(draws)), str(int(seed)),
                 str(DRAW_BLOCK)):
        h.update(part.encode() + b"\0")
    for arr in (tmap.a, tmap.a2, tmap.e, np.array([tmap.b0, tmap.b1])):
        h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return h.hexdigest()[:32]


def cached_transport_target(X, activation, alpha0, tmap: TransportMap, draws: int, seed: int
                            ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`transport_target`, memoized on disk.

    The result is a deterministic function of its inputs; it is stored under
    the code cache (``$RNN_CERTIFY_CACHE/<code key>/targets/``) with a key that
    hashes the inputs (X's bytes, the activation, α₀'s decimal text, the map,
    M, the seed), the source of this module, of :mod:`certify.cases.data` and
    :mod:`certify.cases.init`, the generated templates and NumPy's version.  A file
    that cannot be read is recomputed.
    """
    from symbolic.codegen import cache_dir

    n, T, _ = np.shape(X)
    path = cache_dir() / "targets" / (_cache_key(X, activation, alpha0, tmap, draws, seed)
                                      + ".npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            mean, se = np.array(z["mean"]), np.array(z["stderr"])
        if mean.shape == (n, T) and se.shape == (n, T) and np.isfinite(mean).all():
            return mean, se
    except (OSError, KeyError, ValueError):
        pass
    mean, se = transport_target(X, activation, alpha0, tmap, draws, seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp.npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, mean=mean, stderr=se)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:  # a read-only cache only costs time
        pass
    return mean, se


# --------------------------------------------------------------------------
# seed 002's concept classes and a linear system


def _link(link: str):
    if link not in LINKS:
        raise FieldError("target", "link", f"unknown link {link!r} "
                         f"(expected one of: {', '.join(LINKS)})")
    return LINKS[link]


def _unit_rows(rng, k: int, d: int) -> np.ndarray:
    from .data import into_unit_ball

    G = rng.standard_normal((k, d))
    return into_unit_ball((G / np.linalg.norm(G, axis=1, keepdims=True))[None])[0]


def additive_target(X: np.ndarray, seed: int, link: str = "tanh", decay: float = 0.5,
                    amplitude: float = 1.0) -> np.ndarray:
    """``y_t = A Σ_{l≤t} γ^{t−l} φ(β_lᵀ x_l) / (φ_max Σ_{k<T} γ^k)``."""
    phi, phi_max = _link(link)
    n, T, d = X.shape
    beta = _unit_rows(np.random.default_rng(seed), T, d)  # β_l, one per position
    P = phi(np.einsum("ntd,td->nt", X, beta))
    Y = np.empty((n, T))
    acc = np.zeros(n)
    for t in range(T):
        acc = decay * acc + P[:, t]
        Y[:, t] = acc
    norm = phi_max * sum(decay**k for k in range(T))
    return amplitude * Y / norm


def multi_index_target(X: np.ndarray, seed: int, lags, link: str = "tanh",
                       amplitude: float = 1.0) -> np.ndarray:
    """``y_t = A φ(βᵀ[x_{t−l₁}; …; x_{t−l_N}]) / φ_max`` with ‖β‖ = 1/√N."""
    phi, phi_max = _link(link)
    n, T, d = X.shape
    lags = [int(l) for l in lags]
    N = len(lags)
    beta = _unit_rows(np.random.default_rng(seed), 1, N * d)[0] / math.sqrt(N)
    arg = np.zeros((n, T))
    for k, l in enumerate(lags):
        shifted = np.zeros_like(X)
        if l < T:
            shifted[:, l:, :] = X[:, :T - l, :]
        arg += shifted @ beta[k * d:(k + 1) * d]
    return amplitude * phi(arg) / phi_max


def linear_system_target(X: np.ndarray, seed: int, rho_A: float, state_dim: int = 4,
                         amplitude: float = 1.0) -> np.ndarray:
    """``s_t = A s_{t−1} + B x_t``, ``y_t = A_mp Cᵀ s_t / Σ_{k<T} ρ^k`` (module docstring)."""
    n, T, d = X.shape
    k = int(state_dim)
    rng = np.random.default_rng(seed)
    Q, R = np.linalg.qr(rng.standard_normal((k, k)))
    Q = Q * np.sign(np.diag(R))[None, :]
    A = float(rho_A) * Q
    Bm = rng.standard_normal((k, d))
    Bm = Bm / np.linalg.norm(Bm, 2)
    C = _unit_rows(rng, 1, k)[0]
    s = np.zeros((n, k))
    Y = np.empty((n, T))
    for t in range(T):
        s = s @ A.T + X[:, t, :] @ Bm.T
        Y[:, t] = s @ C
    norm = sum(float(rho_A) ** j for j in range(T))
    return amplitude * Y / norm


# --------------------------------------------------------------------------


def build_target(spec, X: np.ndarray, *, activation, alpha0, Y_source: np.ndarray | None = None,
                 cache: bool = True) -> TargetInfo:
    """The :class:`TargetInfo` of a :class:`certify.cases.case.TargetSpec` on inputs ``X``.

    ``activation``: a :class:`symbolic.Activation` (or name); ``alpha0``: the
    init's α₀ (the law of w in the transport expectation); ``Y_source``: the
    targets defined by the data source, if any; ``cache``: reuse (and store)
    a Monte Carlo result in the on-disk cache (:func:`cached_transport_target`).
    """
    kind = spec.kind
    if kind == "transport":
        n, T, d = X.shape
        tmap = make_transport_map(d, spec.nu_w, spec.nu_u, spec.seed)
        run = cached_transport_target if cache else transport_target
        Y, se = run(X, activation, alpha0, tmap, spec.mc_draws, spec.seed)
        desc = (f"transport target f*_t = E_init[<v, grad h_t>], v_w = nu_w cos(<a,u>+b0), "
                f"v_u = nu_u sin(<a',u>+b1) e (nu_w = {spec.nu_w}, nu_u = {spec.nu_u}); "
                f"Monte Carlo with M = {spec.mc_draws} draws, max stderr {float(se.max()):.3g}")
        return TargetInfo(kind=kind, Y=Y, in_class=True, stderr=se, mc_draws=spec.mc_draws,
                          seed=spec.seed, transport_map=tmap, nu_w=float(spec.nu_w),
                          nu_u=float(spec.nu_u), description=desc)
    if kind == "additive":
        Y = additive_target(X, spec.seed, spec.link, float(spec.decay), float(spec.amplitude))
        desc = (f"additive concept class y_t = A sum_l decay^(t-l) phi(beta_l.x_l) "
                f"(phi = {spec.link}, decay = {spec.decay}, A = {spec.amplitude})")
    elif kind == "multi-index":
        Y = multi_index_target(X, spec.seed, spec.lags, spec.link, float(spec.amplitude))
        desc = (f"multi-index y_t = A phi(beta.[x_(t-l) for l in {list(spec.lags)}]) "
                f"(phi = {spec.link}, A = {spec.amplitude})")
    elif kind == "linear-system":
        Y = linear_system_target(X, spec.seed, float(spec.rho_A), spec.state_dim,
                                 float(spec.amplitude))
        desc = (f"linear system s_t = A s_(t-1) + B x_t, y_t = C.s_t (rho_A = {spec.rho_A}, "
                f"state_dim = {spec.state_dim}, A = {spec.amplitude})")
    elif kind in ("file", "data"):
        if Y_source is None:
            raise FieldError("target", "kind", f"{kind!r} needs a data source that defines "
                             f"targets (data kinds: file with Y, statsmodels, ode)")
        Y = np.asarray(Y_source, dtype=np.float64)
        desc = "targets from the data source"
    else:
        raise FieldError("target", "kind", f"unknown target kind {kind!r} "
                         f"(expected one of: {', '.join(TARGET_KINDS)})")
    return TargetInfo(kind=kind, Y=np.ascontiguousarray(Y), in_class=False,
                      seed=getattr(spec, "seed", None), description=desc)
