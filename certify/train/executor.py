"""GD / projected GD with the drift inequality checked at every iterate (THEORY §3, §7).

:func:`train` runs

* ``algorithm="pgd"``: ``Θ(k+1) = Π_{Ω_ρ}(Θ(k) − η ∇R̂(Θ(k)))``, or
* ``algorithm="gd"``:  ``Θ(k+1) = Θ(k) − η ∇R̂(Θ(k))``,

and at every k checks

    Ψ_{k+1} ≤ Ψ_k − 2η (R̂(Θ(k)) − R̂(Θ̄)) + 2η E_k + η² G_k          (LHS ≤ RHS)

with ``Ψ_k = ‖Θ(k) − Θ̄‖²``, ``G_k = ‖∇R̂(Θ(k))‖²``,
``E_k = Σ_{j,t} ω_{jt} |r_{jt}(Θ(k))| β_t Ψ_k / (2√m)`` (ω = 1/(nT), or 1/n at
t = T−1 for the ``final-step`` loss).  ``β_t`` are floats supplied by the caller
(upper endpoints of certified intervals).  Everything computed here is
*observed* floating point; the certified inputs are the β_t (and L_t).

Which constants: for projected GD the case's ball Ω_ρ (``beta``), valid since
Θ(k) and Θ̄ lie in it.  For plain GD the iterate may leave Ω_ρ: at every step
the constants of the smallest ball holding Θ(k), Θ(k+1) and Θ̄ are used,
``beta_for_radius(ρ_w, ρ_u)`` (the certifier's closed form at that ball's
α_m); without it, ``beta`` is used while that ball lies inside Ω_ρ, and a step
for which no finite constant is available is marked *not checked*.

Floating-point allowance (a violation is ``slack < −fp_k``)::

    fp_k = c · u · (P + n·T) · (Ψ_k + Ψ_{k+1} + 2η|R̂(Θ(k))| + 2η|R̂(Θ̄)| + 2η E_k + η² G_k)

with ``c = 16`` by default (``fp_factor``), ``u = 2⁻⁵³`` and ``P = m(1+d)`` the
number of parameters: every term of the inequality is a sum of at most ``P``
(parameter space) or ``n·T`` (residuals) rounded products, and the update
itself is computed with a rounded gradient, whose effect on Ψ_{k+1} is bounded
by the same magnitudes (``2η|⟨e, Θ(k) − Θ̄⟩| ≤ ‖e‖/‖g‖·(Ψ_k + η² G_k)``).  It is
an explicit, magnitude-based allowance stated in the certificate, not a rigorous error
bound (the executor's numbers are observed).

Resolution rule (when a step counts as *checked*)::

    fp_k ≤ 2⁻²⁰ · 2η (|R̂(Θ(k))| + |R̂(Θ̄)|)          (RESOLUTION = 2⁻²⁰)

For GD, in exact arithmetic ``Ψ_{k+1} = Ψ_k − 2η⟨∇R̂, Θ(k) − Θ̄⟩ + η² G_k``: the
terms ``Ψ_k``, ``Ψ_{k+1}`` and ``η² G_k`` cancel, and what the check decides is
``⟨∇R̂(Θ(k)), Θ(k) − Θ̄⟩ ≥ R̂(Θ(k)) − R̂(Θ̄) − E_k``, times 2η.  A wrong constant
or gradient shows there as a deficit on the scale of ``2η(|R̂(Θ(k))| + |R̂(Θ̄)|)``.
The allowance must cover the rounding of the large cancelling terms; when it
is not below one part in 2²⁰ (≈ 10⁻⁶) of that scale, the check cannot see such a
deficit, and the step is *not checked (allowance not small)*, never passed.
``E_k`` is left out of the scale on purpose: a huge E_k (a vacuous constant)
would make any allowance look small.  A step whose slack is below ``−fp_k`` is a
violation whatever the ratio (it is beyond the allowance).  The shipped cases
stay below 2⁻²⁰ by a factor ≥ 6 (largest ratio 1.5·10⁻⁷); huge steps
(η = 10¹⁵, 10³⁰: Ψ and η²G dwarf the loss terms) or a huge ``fp_factor`` do not.

Every step that is not checked gets one reason (the first that applies, see
:data:`NOT_CHECKED`): non-finite loss, gradient or distance; comparator
outside Ω_ρ (projected GD); β_t of Ω_ρ not finite (projected GD); no finite
β_t for the ball holding Θ(k), Θ(k+1), Θ̄ (GD); E_k or the RHS not finite; the
allowance not small (the rule above).

Gradient check: at k = 0 and k = τ−1 the reverse-mode gradient is compared
with a central difference of the loss along the gradient's direction
(Richardson-extrapolated, steps h and h/2): ``status`` is ``"mismatch"`` when
they differ by more than ``GRAD_RTOL`` relative plus ten times the difference
of the two estimates, at h and again at h·2⁻⁸, ``"inconclusive"`` when the two
estimates differ by more than 1%.  A mismatch makes the verdict ``fail``.

A-priori bound (THEORY §7) at the end: with ``Λ = mean_t L_t²`` (``L_{T−1}²``
for the final-step loss) and ``τ`` iterations,

    (1/τ) Σ_k R̂(Θ(k)) ≤ [R̂(Θ̄) + Ψ_0/(2ητ) + (1/τ) Σ_k E_k] / (1 − η Λ),

applicable when ``η Λ < 1``, every step was checked (all E_k known) and, for
GD, the L_t used hold on every iterate's ball (``L_for_radius`` at the largest
ball of the run, or ``L`` when the run never left Ω_ρ).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import array_api_compat
import numpy as np

from . import projection, rnn

__all__ = ["RunResult", "TrainSettings", "DriftConstants", "train", "FP_FORMULA", "BACKENDS",
           "namespace_for", "to_backend", "RESOLUTION", "ALLOWANCE_RULE", "NOT_CHECKED"]

U_ROUND = 2.0 ** -53
FP_CONSTANT = 16.0
FP_FORMULA = ("fp_k = {c:g} * u * (P + n*T) * (Psi_k + Psi_{{k+1}} + 2*eta*|R(Theta_k)| "
              "+ 2*eta*|R(Theta_bar)| + 2*eta*E_k + eta^2*G_k), u = 2^-53, P = m*(1+d)")
#: a step is checked only if fp_k ≤ RESOLUTION · 2η(|R̂(Θ(k))| + |R̂(Θ̄)|) (module doc)
RESOLUTION = 2.0 ** -20
ALLOWANCE_RULE = ("checked only if fp_k <= 2^-20 * 2*eta*(|R(Theta_k)| + |R(Theta_bar)|) "
                  "(a slack below -fp_k is a violation whatever the ratio)")
#: reasons a step is not checked: code → words (the certificate's legend)
NOT_CHECKED = {
    "non_finite": "non-finite loss, gradient or distance",
    "comparator_outside": "comparator outside Ω_ρ (projected GD)",
    "beta_not_finite": "β_t of Ω_ρ not finite",
    "no_ball_constants": "no finite β_t for the ball holding Θ(k), Θ(k+1), Θ̄",
    "non_finite_E": "E_k or RHS not finite",
    "allowance_not_small": "allowance not small",
}
#: relative tolerance of the gradient check (reverse mode vs central differences)
GRAD_RTOL = 1e-6
#: relative slack for membership tests of observed iterates in a ball
BALL_RTOL = 1e-12
BACKENDS = ("numpy", "torch", "cupy", "array_api_strict")


# --------------------------------------------------------------------------
# backends


def namespace_for(backend: str):
    """The array namespace for a backend name (ImportError if not installed)."""
    if backend == "numpy":
        return rnn._namespace(np.zeros(1))
    if backend == "torch":
        import torch  # noqa: F401

        return array_api_compat.array_namespace(torch.zeros(1))
    if backend == "cupy":
        import cupy

        return array_api_compat.array_namespace(cupy.zeros(1))
    if backend == "array_api_strict":
        import array_api_strict

        return array_api_strict
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def to_backend(a, backend: str, device=None):
    """``a`` (NumPy or any array) as a float64 array of ``backend`` (on ``device``)."""
    if backend == "numpy":
        return np.asarray(rnn.to_numpy(a), dtype=np.float64)
    host = np.ascontiguousarray(rnn.to_numpy(a), dtype=np.float64)
    if backend == "torch":
        import torch

        return torch.asarray(host, dtype=torch.float64, device=device or "cpu")
    if backend == "cupy":
        import cupy

        if device is not None:
            with cupy.cuda.Device(device):
                return cupy.asarray(host)
        return cupy.asarray(host)
    if backend == "array_api_strict":
        import array_api_strict as xps

        return xps.asarray(host, dtype=xps.float64)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def _device_name(x) -> str:
    try:
        return str(array_api_compat.device(x))
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


# --------------------------------------------------------------------------
# settings


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """How :func:`train` runs (checked when the run starts; ValueError).

    ``eta`` (η > 0) and ``iterations`` (τ ≥ 1); ``rho_w``, ``rho_u`` the radii of
    Ω_ρ; ``algorithm`` "pgd" (projected onto Ω_ρ) or "gd"; ``activation`` and
    ``loss`` ("all-steps" | "final-step") of R̂; ``backend`` ∈ :data:`BACKENDS`
    and ``device`` (torch/CuPy) where the loop runs; ``threads`` the NumPy
    thread-pool size (results do not depend on it); ``fp_factor`` the constant
    ``c`` of the floating-point allowance (None: :data:`FP_CONSTANT` = 16);
    ``progress(k, total)``, if given, is called after each step.
    """

    eta: float
    iterations: int
    rho_w: float
    rho_u: float
    algorithm: str = "pgd"
    activation: object = "tanh"
    loss: str = "all-steps"
    backend: str = "numpy"
    device: object = None
    threads: int | None = None
    fp_factor: float | None = None
    progress: Callable[[int, int], None] | None = None


@dataclass(frozen=True, eq=False, kw_only=True)
class DriftConstants:
    """The certified constants the drift inequality is checked against (floats: upper
    endpoints of certified intervals; module doc).

    ``beta`` and ``L`` are arrays over t (length T) of the case's ball Ω_ρ;
    ``beta_for_radius``/``L_for_radius`` map a ball ``(ρ_w, ρ_u)`` to those arrays
    (used by GD when the iterate leaves Ω_ρ).  ``comparator_loss_bound`` is an
    a-priori bound of R̂(Θ̄) (THEORY §6); the a-priori bound is then also reported
    with it.  Any of them may be None (not known).
    """

    beta: Sequence[float] | None = None
    L: Sequence[float] | None = None
    beta_for_radius: Callable[[float, float], Sequence[float]] | None = None
    L_for_radius: Callable[[float, float], Sequence[float]] | None = None
    comparator_loss_bound: float | None = None


# --------------------------------------------------------------------------
# result


@dataclass(frozen=True, eq=False)
class RunResult:
    """Per-iterate record of a run (NumPy arrays on the host, observed floats).

    Arrays indexed by the step k = 0..τ−1: ``loss`` (R̂(Θ(k))), ``psi`` (Ψ_k),
    ``grad_sq`` (G_k), ``E``, ``lhs`` (Ψ_{k+1}), ``rhs``, ``slack`` (rhs − lhs),
    ``fp_allowance``, ``checked`` (bool), ``ball_w``/``ball_u`` (the ball whose
    constants were used; NaN when not checked).  ``radius_w``/``radius_u`` have
    τ+1 entries: the radius of Θ(0)..Θ(τ).  ``E``, ``rhs`` and ``slack`` are NaN
    where no finite E_k was available.  ``allowance_ratio`` is
    ``fp_k / (2η(|R̂(Θ(k))| + |R̂(Θ̄)|))`` (the resolution rule, module doc);
    ``not_checked_reason`` a key of :data:`NOT_CHECKED` per step (None: checked);
    ``gradient_check`` the comparison with central differences; ``beta_case`` the
    β_t of Ω_ρ the run used (None: not finite or not given).
    """

    algorithm: str
    eta: float
    iterations: int
    loss_kind: str
    activation: str
    width: int
    rho: tuple[float, float]
    loss: np.ndarray
    psi: np.ndarray
    grad_sq: np.ndarray
    E: np.ndarray
    lhs: np.ndarray
    rhs: np.ndarray
    slack: np.ndarray
    fp_allowance: np.ndarray
    fp_formula: str
    checked: np.ndarray
    ball_w: np.ndarray
    ball_u: np.ndarray
    radius_w: np.ndarray
    radius_u: np.ndarray
    min_slack: float | None
    argmin_slack: int | None
    violations: list[int]
    not_checked: list[int]
    exit_time: int | None
    apriori: dict
    loss_comparator: float
    comparator_radius: tuple[float, float]
    final_loss: float
    avg_loss: float
    w_final: np.ndarray
    U_final: np.ndarray
    backend: str
    device: str
    timing: dict
    notes: list[str] = field(default_factory=list)
    allowance_ratio: np.ndarray | None = None
    not_checked_reason: list = field(default_factory=list)
    gradient_check: dict = field(default_factory=dict)
    beta_case: np.ndarray | None = None

    @property
    def passed(self) -> bool:
        """No violation, every step checked, and the gradient check did not disagree."""
        return (not self.violations and not self.not_checked
                and self.gradient_check.get("status") != "mismatch")

    def not_checked_counts(self) -> dict[str, int]:
        """How many steps were not checked, per reason code (nonzero counts only)."""
        out: dict[str, int] = {}
        for r in self.not_checked_reason:
            if r is not None:
                out[r] = out.get(r, 0) + 1
        return out

    def not_checked_text(self) -> str | None:
        """E.g. "299 of 300 iterates not checked: 298 non-finite loss, …, 1 allowance not
        small (rule …)"; None when every step was checked."""
        counts = self.not_checked_counts()
        if not counts:
            return None
        parts = [f"{n} {NOT_CHECKED[code]}" + (f" (rule: {ALLOWANCE_RULE})"
                                               if code == "allowance_not_small" else "")
                 for code, n in counts.items()]
        return (f"{len(self.not_checked)} of {self.iterations} iterates not checked: "
                + ", ".join(parts))

    def summary(self) -> dict:
        """JSON-ready executor summary (the certificate's ``executor`` block)."""

        def f(x):
            return None if x is None or not math.isfinite(x) else float(x)

        ratio = (np.asarray(self.allowance_ratio, dtype=float) if self.allowance_ratio
                 is not None else np.full(self.iterations, np.nan))
        return {
            "algorithm": self.algorithm, "eta": self.eta, "iterations": self.iterations,
            "loss": [float(v) for v in self.loss], "avg_loss": f(self.avg_loss),
            "final_loss": f(self.final_loss), "loss_comparator": f(self.loss_comparator),
            "drift": {"min_slack": f(self.min_slack) if self.min_slack is not None else None,
                      "argmin": self.argmin_slack, "violations": list(self.violations),
                      "checked": int(np.sum(self.checked)),
                      "not_checked": list(self.not_checked),
                      "not_checked_by_reason": self.not_checked_counts(),
                      "not_checked_reason": list(self.not_checked_reason),
                      "not_checked_legend": dict(NOT_CHECKED),
                      "not_checked_text": self.not_checked_text(),
                      "allowance_rule": {
                          "rule": ALLOWANCE_RULE, "resolution": RESOLUTION,
                          "ratio": [f(v) for v in ratio],
                          "ratio_max": (f(float(np.nanmax(ratio)))
                                        if np.any(np.isfinite(ratio)) else None)},
                      "slack": [f(v) for v in self.slack],
                      "fp_allowance": {"formula": self.fp_formula,
                                       "values": [f(v) for v in self.fp_allowance],
                                       "max": f(float(np.nanmax(self.fp_allowance)))
                                       if np.any(np.isfinite(self.fp_allowance)) else None}},
            "radius": {"w": [float(v) for v in self.radius_w],
                       "u": [float(v) for v in self.radius_u]},
            "exit_time": self.exit_time,
            "apriori": {k: (f(v) if isinstance(v, float) else v) for k, v in self.apriori.items()},
            "gradient_check": _json_ready(self.gradient_check),
            "backend": self.backend, "device": self.device, "timing": dict(self.timing),
            "notes": list(self.notes),
        }


def _json_ready(obj):
    """Plain-JSON copy (non-finite floats → None)."""
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj


# --------------------------------------------------------------------------
# the run


def _finite_array(v, T: int) -> np.ndarray | None:
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    if a.shape[0] != T or not np.all(np.isfinite(a)):
        return None
    return a


def _call_constants(fn, rw: float, ru: float, T: int) -> np.ndarray | None:
    if fn is None:
        return None
    try:
        return _finite_array(fn(rw, ru), T)
    except (ArithmeticError, ValueError):
        return None


def train(w0, U0, c, X, Y, comparator, settings: TrainSettings,
          constants: DriftConstants | None = None) -> RunResult:
    """Run GD / projected GD from Θ(0) = (w0, U0) and check the drift inequality each step.

    ``comparator`` is Θ̄: a pair ``(w̄, Ū)`` or an object with ``.w`` and ``.U``
    (:class:`certify.train.comparator.Comparator`).  ``settings`` says how to run
    (:class:`TrainSettings`: step, iterations, Ω_ρ, algorithm, activation, loss,
    backend, allowance constant, progress callback); ``constants`` the certified
    constants to check against (:class:`DriftConstants`; None: none, every step
    is then *not checked*).

    Inputs are moved to ``settings.backend`` (``settings.device`` for torch/CuPy)
    and the loop stays there; only scalars per iterate come back.
    """
    t_start = time.perf_counter()
    s = _validated(settings)
    run = _setup(w0, U0, c, X, Y, comparator, s,
                 DriftConstants() if constants is None else constants)
    rec = _Record.empty(s.iterations)
    w, U, t_grad, t_check = _run_steps(run, rec)
    return _assemble(run, rec, w, U, (t_start, t_grad, t_check))


def _validated(s: TrainSettings) -> TrainSettings:
    """``s`` checked (ValueError) and normalized: η, ρ as floats, the iterations an int."""
    if s.algorithm not in ("pgd", "gd"):
        raise ValueError(f"algorithm must be 'pgd' or 'gd', got {s.algorithm!r}")
    rnn._check_loss(s.loss)
    eta = float(s.eta)
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"eta must be a positive finite number, got {eta}")
    tau = int(s.iterations)
    if tau < 1:
        raise ValueError(f"iterations must be ≥ 1, got {s.iterations}")
    return replace(s, eta=eta, iterations=tau, rho_w=float(s.rho_w), rho_u=float(s.rho_u))


def _fp_constant(fp_factor) -> float:
    """The constant ``c`` of the allowance (default :data:`FP_CONSTANT`), checked."""
    fp_c = FP_CONSTANT if fp_factor is None else float(fp_factor)
    if not (fp_c > 0 and math.isfinite(fp_c)):
        raise ValueError(f"fp_factor must be a positive finite number, got {fp_factor}")
    return fp_c


def _within(s: TrainSettings, rw, ru) -> bool:
    """The radii ``(rw, ru)`` lie in Ω_ρ (relative slack :data:`BALL_RTOL`)."""
    return rw <= s.rho_w * (1 + BALL_RTOL) and ru <= s.rho_u * (1 + BALL_RTOL)


def _sqdist(xp, wa, Ua, wbar, Ubar) -> float:
    """‖(wa, Ua) − (w̄, Ū)‖²."""
    return float(xp.sum((wa - wbar) ** 2) + xp.sum((Ua - Ubar) ** 2))


@dataclass(frozen=True, eq=False, slots=True)
class _Run:
    """A run's fixed inputs, on the backend: validated settings, Θ(0), Θ̄ and what is
    known of it, R̂, the loss weights ω, the case's constants and the allowance scale."""

    settings: TrainSettings
    constants: DriftConstants
    xp: object
    w0: object
    U0: object
    wbar: object
    Ubar: object
    risk: rnn.Risk
    omega: object
    T: int
    sm: float  # √m
    fp_c: float
    fp_scale: float  # c · u · (P + n·T)
    beta_case: np.ndarray | None  # β_t of Ω_ρ (host), None: not given or not finite
    beta_dev: object  # the same on the backend
    L_case: np.ndarray | None
    R_bar: float
    rad_bar: tuple[float, float]
    bar_in_case: bool
    psi0: float
    notes: list[str]
    t_comparator: float


def _setup(w0, U0, c, X, Y, comparator, s: TrainSettings, constants: DriftConstants) -> _Run:
    """Move the inputs to the backend; R̂(Θ̄), Θ̄'s radius, the case's constants."""
    wbar_in, Ubar_in = (comparator.w, comparator.U) if hasattr(comparator, "w") else comparator
    xp = namespace_for(s.backend)
    w0, U0, c, X, Y, wbar, Ubar = (to_backend(a, s.backend, s.device)
                                   for a in (w0, U0, c, X, Y, wbar_in, Ubar_in))
    m, d = U0.shape
    n, T = Y.shape
    fp_c = _fp_constant(s.fp_factor)
    from .comparator import loss_weights  # local: comparator imports rnn only

    omega = loss_weights(xp, n, T, s.loss, w0)
    risk = rnn.Risk(c, X, Y, s.activation, s.loss, s.threads)
    beta_case, L_case, notes = _case_constants(constants, T)
    t0 = time.perf_counter()
    R_bar = risk.value(wbar, Ubar)
    rad_bar = projection.radius(wbar, Ubar, w0, U0)
    bar_in_case = _within(s, rad_bar[0], rad_bar[1])
    if s.algorithm == "pgd" and not bar_in_case:
        notes.append(f"comparator outside Ω_ρ (radius {rad_bar}, ρ = ({s.rho_w}, {s.rho_u})): "
                     "the projected-GD drift inequality does not apply")
    t_comparator = time.perf_counter() - t0
    beta_dev = _like(xp, beta_case, w0) if beta_case is not None else None
    return _Run(s, constants, xp, w0, U0, wbar, Ubar, risk, omega, T, math.sqrt(m), fp_c,
                fp_c * U_ROUND * (m * (1 + d) + n * T), beta_case, beta_dev, L_case, R_bar,
                rad_bar, bar_in_case, _sqdist(xp, w0, U0, wbar, Ubar), notes, t_comparator)


def _case_constants(constants: DriftConstants, T: int):
    """β_t and L_t of Ω_ρ as finite host arrays (None: not given or not finite), and the
    note that β was given but not usable."""
    beta, L = constants.beta, constants.L
    beta_case = _finite_array(beta, T) if beta is not None else None
    L_case = _finite_array(L, T) if L is not None else None
    notes: list[str] = []
    if beta is not None and beta_case is None:
        notes.append("beta for the case's ball is not finite (or has the wrong length)")
    return beta_case, L_case, notes


def _like(xp, a_np, like):
    """The host array ``a_np`` on ``like``'s backend, dtype and device."""
    return xp.asarray(a_np, dtype=like.dtype, device=array_api_compat.device(like))


@dataclass(eq=False)
class _Record:
    """What the loop writes, per step k (NaN / None until written; see :class:`RunResult`).
    ``fp`` is the allowance, ``ratio`` the allowance ratio, ``reason`` the not-checked code,
    ``radius_w``/``radius_u`` have τ+1 entries."""

    loss: np.ndarray
    psi: np.ndarray
    grad_sq: np.ndarray
    E: np.ndarray
    lhs: np.ndarray
    rhs: np.ndarray
    slack: np.ndarray
    fp: np.ndarray
    ratio: np.ndarray
    ball_w: np.ndarray
    ball_u: np.ndarray
    checked: np.ndarray
    reason: list
    radius_w: np.ndarray
    radius_u: np.ndarray
    grad_points: list

    @classmethod
    def empty(cls, tau: int) -> _Record:
        keys = ("loss", "psi", "grad_sq", "E", "lhs", "rhs", "slack", "fp", "ratio", "ball_w",
                "ball_u")
        radius_w, radius_u = np.full(tau + 1, np.nan), np.full(tau + 1, np.nan)
        radius_w[0], radius_u[0] = 0.0, 0.0
        return cls(**{k: np.full(tau, np.nan) for k in keys}, checked=np.zeros(tau, dtype=bool),
                   reason=[None] * tau, radius_w=radius_w, radius_u=radius_u, grad_points=[])


def _run_steps(run: _Run, rec: _Record):
    """The loop k = 0..τ−1: evaluate R̂ and ∇R̂ at Θ(k), then :func:`_step`.  Returns
    Θ(τ) and the seconds spent in the evaluation and in the rest of the steps."""
    tau, progress = run.settings.iterations, run.settings.progress
    w, U, psi = run.w0, run.U0, run.psi0
    t_grad = t_check = 0.0
    ws = rnn.Workspace()  # the tape's memory, reused by every step
    for k in range(tau):
        tg = time.perf_counter()
        res = rnn._evaluate(w, U, run.risk, grad=True, workspace=ws)
        t_grad += time.perf_counter() - tg
        tc = time.perf_counter()
        w, U, psi = _step(run, rec, k, w, U, psi, res)
        t_check += time.perf_counter() - tc
        if progress is not None:
            progress(k + 1, tau)
    return w, U, t_grad, t_check


class _Observed(NamedTuple):
    """Step k's observed terms: R̂(Θ(k)), residuals r (n, T), G_k, Ψ_k, Ψ_{k+1}."""

    R: float
    r: object
    G: float
    psi: float
    psi1: float


def _step(run: _Run, rec: _Record, k: int, w, U, psi: float, res: dict):
    """Step k from Θ(k) = (w, U) with R̂, r, ∇R̂ in ``res``: Θ(k+1), its radius, the
    drift check, and the gradient check at k = 0 and τ−1.  Returns Θ(k+1), Ψ_{k+1}."""
    s = run.settings
    xp = run.xp
    gw, gU = res["gw"], res["gU"]
    G = float(xp.sum(gw * gw) + xp.sum(gU * gU))
    w1, U1 = w - s.eta * gw, U - s.eta * gU
    if s.algorithm == "pgd":
        w1, U1 = projection.project(w1, U1, run.w0, run.U0, s.rho_w, s.rho_u)
    rw1, ru1 = projection.radius(w1, U1, run.w0, run.U0)
    rec.radius_w[k + 1], rec.radius_u[k + 1] = rw1, ru1
    psi1 = _sqdist(xp, w1, U1, run.wbar, run.Ubar)
    consts = _step_constants(run, rec.radius_w[k], rec.radius_u[k], rw1, ru1)
    _check_drift(run, rec, k, _Observed(res["R"], res["r"], G, psi, psi1), consts)
    if k in (0, s.iterations - 1):
        rec.grad_points.append(_gradient_check(k, w, U, gw, gU, G, run.risk))
    return w1, U1, psi1


def _step_constants(run: _Run, rw0, ru0, rw1, ru1):
    """The β_t that apply at a step from radius (rw0, ru0) to (rw1, ru1) (module doc):
    ``(β host, β backend, ball_w, ball_u)``, or all None when none is available."""
    s = run.settings
    if s.algorithm == "pgd":
        if run.bar_in_case and run.beta_case is not None:
            return run.beta_case, run.beta_dev, s.rho_w, s.rho_u
        return None, None, None, None
    bw = max(rw0, rw1, run.rad_bar[0])
    bu = max(ru0, ru1, run.rad_bar[1])
    if run.constants.beta_for_radius is not None:
        beta_k = _call_constants(run.constants.beta_for_radius, bw, bu, run.T)
        if beta_k is None:
            return None, None, None, None
        return beta_k, _like(run.xp, beta_k, run.w0), bw, bu
    if run.beta_case is not None and _within(s, bw, bu):
        return run.beta_case, run.beta_dev, s.rho_w, s.rho_u
    return None, None, None, None


def _check_drift(run: _Run, rec: _Record, k: int, obs: _Observed, consts) -> None:
    """Record step k's terms and decide it: checked (slack and allowance recorded) or
    the reason it is not (:data:`NOT_CHECKED`, first that applies)."""
    s, R_bar = run.settings, run.R_bar
    eta = s.eta
    beta_k, beta_dev, bw, bu = consts
    R, G, psi, psi1 = obs.R, obs.G, obs.psi, obs.psi1
    finite = all(math.isfinite(v) for v in (R, G, psi, psi1))
    rec.loss[k], rec.psi[k], rec.grad_sq[k], rec.lhs[k] = R, psi, G, psi1
    base = psi + psi1 + 2 * eta * abs(R) + 2 * eta * abs(R_bar) + eta * eta * G
    rec.fp[k] = run.fp_scale * base if finite else np.nan
    scale = 2 * eta * (abs(R) + abs(R_bar))
    if not finite:
        reason = "non_finite"
    elif beta_k is None:
        reason = ("no_ball_constants" if s.algorithm == "gd" else
                  "comparator_outside" if not run.bar_in_case else "beta_not_finite")
    else:
        E, rhs = _drift_rhs(run, obs, beta_dev)
        fp = run.fp_scale * (base + 2 * eta * E)
        if math.isfinite(E) and math.isfinite(rhs):
            rec.E[k], rec.rhs[k], rec.slack[k] = E, rhs, rhs - psi1
            rec.fp[k], rec.ball_w[k], rec.ball_u[k] = fp, bw, bu
            reason = _resolution_reason(rhs - psi1, fp, scale)
        else:
            reason = "non_finite_E"
    if finite:
        rec.ratio[k] = rec.fp[k] / scale if scale > 0 else math.inf
    rec.reason[k] = reason
    rec.checked[k] = reason is None


def _drift_summary(rec: _Record):
    """Violations (checked, slack < −fp), the steps not checked, the smallest checked
    slack and its step (None, None when nothing was checked)."""
    checked, slack = rec.checked, rec.slack
    violations = [int(k) for k in np.nonzero(checked & (slack < -rec.fp))[0]]
    not_checked = [int(k) for k in np.nonzero(~checked)[0]]
    if not checked.any():
        return violations, not_checked, None, None
    idx = np.nonzero(checked)[0]
    j = int(idx[np.argmin(slack[idx])])
    return violations, not_checked, float(slack[j]), j


def _exit_time(run: _Run, rec: _Record) -> int | None:
    """The first k with Θ(k) outside Ω_ρ (None: never)."""
    s = run.settings
    outside = np.nonzero((rec.radius_w > s.rho_w * (1 + BALL_RTOL))
                         | (rec.radius_u > s.rho_u * (1 + BALL_RTOL)))[0]
    return int(outside[0]) if outside.size else None


def _assemble(run: _Run, rec: _Record, w, U, seconds: tuple[float, float, float]) -> RunResult:
    """The :class:`RunResult` of a finished loop ending at Θ(τ) = (w, U); ``seconds`` is
    (the run's start, time in the evaluation, time in the rest of the steps)."""
    s, notes = run.settings, run.notes
    final_loss = run.risk.value(w, U)
    violations, not_checked, min_slack, argmin = _drift_summary(rec)
    exit_time = _exit_time(run, rec)
    gcheck = _gradient_summary(rec.grad_points)
    if gcheck["status"] == "mismatch":
        notes.append("the reverse-mode gradient disagrees with central differences of the loss")
    avg_loss = float(np.mean(rec.loss))
    apriori = _apriori(run, rec, exit_time, avg_loss)
    result = RunResult(
        algorithm=s.algorithm, eta=s.eta, iterations=s.iterations, loss_kind=s.loss,
        activation=str(s.activation), width=run.U0.shape[0], rho=(s.rho_w, s.rho_u),
        loss=rec.loss, psi=rec.psi, grad_sq=rec.grad_sq, E=rec.E, lhs=rec.lhs, rhs=rec.rhs,
        slack=rec.slack, fp_allowance=rec.fp, fp_formula=FP_FORMULA.format(c=run.fp_c),
        checked=rec.checked, ball_w=rec.ball_w, ball_u=rec.ball_u,
        radius_w=rec.radius_w, radius_u=rec.radius_u, min_slack=min_slack, argmin_slack=argmin,
        violations=violations, not_checked=not_checked, exit_time=exit_time, apriori=apriori,
        loss_comparator=run.R_bar, comparator_radius=run.rad_bar, final_loss=final_loss,
        avg_loss=avg_loss, w_final=rnn.to_numpy(w).copy(), U_final=rnn.to_numpy(U).copy(),
        backend=s.backend, device=_device_name(w), timing=_timing(*seconds, run), notes=notes,
        allowance_ratio=rec.ratio, not_checked_reason=rec.reason, gradient_check=gcheck,
        beta_case=run.beta_case)
    text = result.not_checked_text()
    if text:
        notes.append(text)
    return result


def _timing(t_start: float, t_grad: float, t_check: float, run: _Run) -> dict:
    """The run's seconds: in total, per part, per iteration."""
    return {"total": time.perf_counter() - t_start, "loss_and_grad": t_grad,
            "check_and_step": t_check, "comparator_loss": run.t_comparator,
            "per_iteration": (t_grad + t_check) / run.settings.iterations}


def _drift_rhs(run: _Run, obs: _Observed, beta_dev) -> tuple[float, float]:
    """``E_k`` and the RHS ``Ψ_k − 2η(R̂(Θ(k)) − R̂(Θ̄)) + 2η E_k + η² G_k`` (observed),
    with the β_t ``beta_dev`` (on the backend)."""
    xp, eta, psi = run.xp, run.settings.eta, obs.psi
    wabs = xp.sum(xp.abs(obs.r) * run.omega, axis=0)  # (T,): Σ_j ω_jt |r_jt|
    E = float(xp.sum(wabs * beta_dev)) * psi / (2.0 * run.sm)
    return E, psi - 2.0 * eta * (obs.R - run.R_bar) + 2.0 * eta * E + eta * eta * obs.G


def _resolution_reason(slack: float, fp: float, scale: float) -> str | None:
    """None (checked) or "allowance_not_small": the resolution rule of the module doc.
    A slack below −fp is a violation whatever the ratio, so it counts as checked."""
    if slack < -fp:
        return None
    return None if fp <= RESOLUTION * scale else "allowance_not_small"


def _gradient_check(k, w, U, gw, gU, G, risk: rnn.Risk) -> dict:
    """Reverse-mode gradient ``(gw, gU)`` (``G`` = its squared norm) at Θ = (w, U) vs a
    central difference of the loss ``risk`` along its direction.

    ``d(h) = (R̂(Θ + h v) − R̂(Θ − h v)) / 2h`` with ``v = ∇R̂/‖∇R̂‖`` must equal
    ``‖∇R̂‖``; ``fd`` is the Richardson value ``(4 d(h/2) − d(h))/3`` and ``est``
    ``|d(h) − d(h/2)|`` relative (its error scale), with ``h = 2⁻¹⁴ max(1, ‖Θ‖)``.
    A mismatch is confirmed at ``h·2⁻⁸`` (a loss that varies on a scale below h,
    e.g. saturated units, is not a wrong gradient).  Observed numbers.
    """
    out = {"k": int(k), "analytic": None, "fd": None, "rel_err": None, "est": None, "h": None}
    gn = math.sqrt(G) if math.isfinite(G) else math.nan
    if not (math.isfinite(gn) and gn > 0):
        return out | {"status": "skipped"}
    vw, vU = gw / gn, gU / gn
    xp = array_api_compat.array_namespace(w)
    h0 = 2.0 ** -14 * max(1.0, math.sqrt(float(xp.sum(w * w) + xp.sum(U * U))))

    def d(step):
        up = risk.value(w + step * vw, U + step * vU)
        dn = risk.value(w - step * vw, U - step * vU)
        return (up - dn) / (2 * step)

    for h in (h0, h0 * 2.0 ** -8):
        d1, d2 = d(h), d(h / 2)
        fd = (4 * d2 - d1) / 3
        rel, est = abs(fd - gn) / gn, abs(d1 - d2) / gn
        if not (math.isfinite(rel) and math.isfinite(est)) or est > 1e-2:
            status = "inconclusive"
        else:
            status = "ok" if rel <= GRAD_RTOL + 10 * est else "mismatch"
        if status != "mismatch":
            break
    return out | {"analytic": gn, "fd": fd, "rel_err": rel, "est": est, "h": h,
                  "status": status}


def _gradient_summary(points: list[dict]) -> dict:
    """The gradient check's record: the points and an overall status (the worst of
    mismatch > inconclusive > ok > skipped)."""
    order = ("mismatch", "inconclusive", "ok", "skipped")
    status = next((s for s in order if any(p["status"] == s for p in points)), "skipped")
    return {"status": status, "rtol": GRAD_RTOL, "points": points,
            "method": "central differences along the gradient, steps h and h/2, Richardson; "
                      "h = 2^-14 * max(1, |Theta|), a mismatch confirmed at h * 2^-8; "
                      "observed"}


def _apriori_L(run: _Run, rec: _Record, exit_time: int | None) -> np.ndarray | None:
    """The L_t that hold on every iterate's ball (module doc): ``L_for_radius`` at the
    largest ball of a GD run, else the case's L while the run never left Ω_ρ."""
    s, c = run.settings, run.constants
    L = None
    if s.algorithm == "pgd" or exit_time is None:
        L = run.L_case
    if c.L_for_radius is not None and s.algorithm == "gd":
        bw = float(max(np.nanmax(rec.radius_w), run.rad_bar[0]))
        bu = float(max(np.nanmax(rec.radius_u), run.rad_bar[1]))
        L = _call_constants(c.L_for_radius, bw, bu, run.T)
    return L


def _apriori(run: _Run, rec: _Record, exit_time: int | None, observed: float) -> dict:
    """The a-priori bound of the average loss (module doc) against the ``observed``
    average, or why it does not apply."""
    out = {"bound": None, "observed": observed, "applicable": False, "ratio": None,
           "eta_L2": None, "reason": ""}
    L = _apriori_L(run, rec, exit_time)
    if L is None:
        out["reason"] = "no finite L_t for a ball holding every iterate"
        return out
    eta, tau, T, psi0 = run.settings.eta, run.settings.iterations, run.T, run.psi0
    checked, comparator_loss_bound = rec.checked, run.constants.comparator_loss_bound
    lam = float(np.mean(L ** 2)) if run.settings.loss == "all-steps" else float(L[T - 1] ** 2)
    out["eta_L2"] = eta * lam
    if not checked.all():
        out["reason"] = "some steps not checked (E_k unknown)"
        return out
    if not eta * lam < 1:
        out["reason"] = "eta * mean_t L_t^2 >= 1"
        return out
    meanE = float(np.mean(rec.E))

    def bound(Rb):
        return (Rb + psi0 / (2 * eta * tau) + meanE) / (1 - eta * lam)

    b = bound(run.R_bar)
    out.update(bound=b, applicable=bool(math.isfinite(b)),
               ratio=(b / observed) if observed > 0 else None,
               holds=bool(observed <= b))
    if comparator_loss_bound is not None:
        b2 = bound(float(comparator_loss_bound))
        out.update(bound_certified_comparator=b2,
                   ratio_certified_comparator=(b2 / observed) if observed > 0 else None)
    return out
