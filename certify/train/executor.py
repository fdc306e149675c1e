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
from dataclasses import dataclass, field

import array_api_compat
import numpy as np

from . import projection, rnn

__all__ = ["RunResult", "train", "FP_FORMULA", "BACKENDS", "namespace_for", "to_backend",
           "RESOLUTION", "ALLOWANCE_RULE", "NOT_CHECKED"]

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


def train(w0, U0, c, X, Y, *, eta: float, iterations: int, rho_w: float, rho_u: float,
          comparator, algorithm: str = "pgd", beta=None, L=None,
          beta_for_radius: Callable[[float, float], Sequence[float]] | None = None,
          L_for_radius: Callable[[float, float], Sequence[float]] | None = None,
          activation="tanh", loss: str = "all-steps", backend: str = "numpy", device=None,
          progress: Callable[[int, int], None] | None = None, threads=None,
          comparator_loss_bound: float | None = None,
          fp_factor: float | None = None) -> RunResult:
    """Run GD / projected GD from Θ(0) = (w0, U0) and check the drift inequality each step.

    ``comparator`` is Θ̄: a pair ``(w̄, Ū)`` or an object with ``.w`` and ``.U``
    (:class:`certify.train.comparator.Comparator`).  ``beta`` and ``L`` are arrays over
    t (length T) of the case's ball; ``beta_for_radius``/``L_for_radius`` map a
    ball ``(ρ_w, ρ_u)`` to those arrays (used by GD, see the module doc).
    ``comparator_loss_bound`` (optional) is an a-priori bound of R̂(Θ̄)
    (THEORY §6); the a-priori bound is then also reported with it.

    ``backend`` ∈ {"numpy", "torch", "cupy", "array_api_strict"}: inputs are moved
    there (``device`` for torch/CuPy) and the loop stays there; only scalars per
    iterate come back.  ``progress(k, total)`` is called after each step.
    ``fp_factor`` is the constant ``c`` of the floating-point allowance
    (default :data:`FP_CONSTANT` = 16).
    """
    t_start = time.perf_counter()
    if algorithm not in ("pgd", "gd"):
        raise ValueError(f"algorithm must be 'pgd' or 'gd', got {algorithm!r}")
    rnn._check_loss(loss)
    eta = float(eta)
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"eta must be a positive finite number, got {eta}")
    tau = int(iterations)
    if tau < 1:
        raise ValueError(f"iterations must be ≥ 1, got {iterations}")
    rho_w, rho_u = float(rho_w), float(rho_u)
    wbar_in, Ubar_in = (comparator.w, comparator.U) if hasattr(comparator, "w") else comparator

    xp = namespace_for(backend)
    w0, U0, c, X, Y = (to_backend(a, backend, device) for a in (w0, U0, c, X, Y))
    wbar, Ubar = to_backend(wbar_in, backend, device), to_backend(Ubar_in, backend, device)
    m, d = U0.shape
    n, T = Y.shape
    sm = math.sqrt(m)
    P = m * (1 + d)
    fp_c = FP_CONSTANT if fp_factor is None else float(fp_factor)
    if not (fp_c > 0 and math.isfinite(fp_c)):
        raise ValueError(f"fp_factor must be a positive finite number, got {fp_factor}")
    fp_scale = fp_c * U_ROUND * (P + n * T)
    from .comparator import loss_weights  # local: comparator imports rnn only

    omega = loss_weights(xp, n, T, loss, w0)
    risk = rnn.Risk(c, X, Y, activation, loss, threads)
    beta_case = _finite_array(beta, T) if beta is not None else None
    L_case = _finite_array(L, T) if L is not None else None
    notes: list[str] = []
    if beta is not None and beta_case is None:
        notes.append("beta for the case's ball is not finite (or has the wrong length)")

    # the comparator: its loss and its radius
    t0 = time.perf_counter()
    R_bar = rnn.loss(wbar, Ubar, c, X, Y, activation, loss, threads=threads)
    rad_bar = projection.radius(wbar, Ubar, w0, U0)
    bar_in_case = (rad_bar[0] <= rho_w * (1 + BALL_RTOL) and rad_bar[1] <= rho_u * (1 + BALL_RTOL))
    if algorithm == "pgd" and not bar_in_case:
        notes.append(f"comparator outside Ω_ρ (radius {rad_bar}, ρ = ({rho_w}, {rho_u})): "
                     "the projected-GD drift inequality does not apply")
    t_comparator = time.perf_counter() - t0

    def sqdist(wa, Ua) -> float:
        return float(xp.sum((wa - wbar) ** 2) + xp.sum((Ua - Ubar) ** 2))

    def bcast(a_np):
        return xp.asarray(a_np, dtype=w0.dtype, device=array_api_compat.device(w0))

    keys = ("loss", "psi", "grad_sq", "E", "lhs", "rhs", "slack", "fp", "ratio", "ball_w",
            "ball_u")
    rec = {k: np.full(tau, np.nan) for k in keys}
    checked = np.zeros(tau, dtype=bool)
    reason: list[str | None] = [None] * tau
    grad_points: list[dict] = []
    radius_w = np.full(tau + 1, np.nan)
    radius_u = np.full(tau + 1, np.nan)
    beta_dev_case = bcast(beta_case) if beta_case is not None else None

    w, U = w0, U0
    radius_w[0], radius_u[0] = 0.0, 0.0
    psi = sqdist(w, U)
    psi0 = psi
    t_grad = t_check = 0.0
    ws = rnn.Workspace()  # the tape's memory, reused by every step
    for k in range(tau):
        tg = time.perf_counter()
        res = rnn._evaluate(w, U, risk, grad=True, workspace=ws)
        t_grad += time.perf_counter() - tg
        tc = time.perf_counter()
        R, r, gw, gU = res["R"], res["r"], res["gw"], res["gU"]
        G = float(xp.sum(gw * gw) + xp.sum(gU * gU))
        # the step
        w1, U1 = w - eta * gw, U - eta * gU
        if algorithm == "pgd":
            w1, U1 = projection.project(w1, U1, w0, U0, rho_w, rho_u)
        rw1, ru1 = projection.radius(w1, U1, w0, U0)
        radius_w[k + 1], radius_u[k + 1] = rw1, ru1
        psi1 = sqdist(w1, U1)
        # which constants apply at this step
        beta_k = beta_dev = None
        if algorithm == "pgd":
            if bar_in_case and beta_case is not None:
                beta_k, beta_dev = beta_case, beta_dev_case
                bw, bu = rho_w, rho_u
        else:
            bw = max(radius_w[k], rw1, rad_bar[0])
            bu = max(radius_u[k], ru1, rad_bar[1])
            if beta_for_radius is not None:
                beta_k = _call_constants(beta_for_radius, bw, bu, T)
            elif (beta_case is not None and bw <= rho_w * (1 + BALL_RTOL)
                  and bu <= rho_u * (1 + BALL_RTOL)):
                beta_k, beta_dev = beta_case, beta_dev_case
                bw, bu = rho_w, rho_u
            if beta_k is not None and beta_dev is None:
                beta_dev = bcast(beta_k)
        finite = all(math.isfinite(v) for v in (R, G, psi, psi1))
        rec["loss"][k], rec["psi"][k], rec["grad_sq"][k], rec["lhs"][k] = R, psi, G, psi1
        base = psi + psi1 + 2 * eta * abs(R) + 2 * eta * abs(R_bar) + eta * eta * G
        rec["fp"][k] = fp_scale * base if finite else np.nan
        scale = 2 * eta * (abs(R) + abs(R_bar))
        if not finite:
            reason[k] = "non_finite"
        elif beta_k is None:
            reason[k] = ("no_ball_constants" if algorithm == "gd" else
                         "comparator_outside" if not bar_in_case else "beta_not_finite")
        else:
            E, rhs = _drift_rhs(xp, r, omega, beta_dev, psi, R, R_bar, G, eta, sm)
            fp = fp_scale * (base + 2 * eta * E)
            if math.isfinite(E) and math.isfinite(rhs):
                rec["E"][k], rec["rhs"][k], rec["slack"][k] = E, rhs, rhs - psi1
                rec["fp"][k], rec["ball_w"][k], rec["ball_u"][k] = fp, bw, bu
                reason[k] = _resolution_reason(rhs - psi1, fp, scale)
            else:
                reason[k] = "non_finite_E"
        if finite:
            rec["ratio"][k] = rec["fp"][k] / scale if scale > 0 else math.inf
        checked[k] = reason[k] is None
        if k in (0, tau - 1):
            grad_points.append(_gradient_check(k, w, U, c, X, Y, gw, gU, G, activation, loss,
                                               threads))
        t_check += time.perf_counter() - tc
        w, U, psi = w1, U1, psi1
        if progress is not None:
            progress(k + 1, tau)

    final_loss = rnn.loss(w, U, c, X, Y, activation, loss, threads=threads)
    slack, fpv = rec["slack"], rec["fp"]
    violations = [int(k) for k in np.nonzero(checked & (slack < -fpv))[0]]
    not_checked = [int(k) for k in np.nonzero(~checked)[0]]
    if checked.any():
        idx = np.nonzero(checked)[0]
        j = int(idx[np.argmin(slack[idx])])
        min_slack, argmin = float(slack[j]), j
    else:
        min_slack, argmin = None, None
    outside = np.nonzero((radius_w > rho_w * (1 + BALL_RTOL))
                         | (radius_u > rho_u * (1 + BALL_RTOL)))[0]
    exit_time = int(outside[0]) if outside.size else None
    gcheck = _gradient_summary(grad_points)
    if gcheck["status"] == "mismatch":
        notes.append("the reverse-mode gradient disagrees with central differences of the loss")

    # a-priori bound
    avg_loss = float(np.mean(rec["loss"]))
    apriori = _apriori(rec, checked, tau, eta, psi0, R_bar, avg_loss, loss, T, algorithm,
                       L_case, L_for_radius, exit_time, radius_w, radius_u, rad_bar,
                       comparator_loss_bound)
    t_total = time.perf_counter() - t_start
    timing = {"total": t_total, "loss_and_grad": t_grad, "check_and_step": t_check,
              "comparator_loss": t_comparator, "per_iteration": (t_grad + t_check) / tau}
    result = RunResult(
        algorithm=algorithm, eta=eta, iterations=tau, loss_kind=loss, activation=str(activation),
        width=m, rho=(rho_w, rho_u), loss=rec["loss"], psi=rec["psi"], grad_sq=rec["grad_sq"],
        E=rec["E"], lhs=rec["lhs"], rhs=rec["rhs"], slack=slack, fp_allowance=fpv,
        fp_formula=FP_FORMULA.format(c=fp_c), checked=checked,
        ball_w=rec["ball_w"], ball_u=rec["ball_u"],
        radius_w=radius_w, radius_u=radius_u, min_slack=min_slack, argmin_slack=argmin,
        violations=violations, not_checked=not_checked, exit_time=exit_time, apriori=apriori,
        loss_comparator=R_bar, comparator_radius=rad_bar, final_loss=final_loss,
        avg_loss=avg_loss, w_final=rnn.to_numpy(w).copy(), U_final=rnn.to_numpy(U).copy(),
        backend=backend, device=_device_name(w), timing=timing, notes=notes,
        allowance_ratio=rec["ratio"], not_checked_reason=reason, gradient_check=gcheck,
        beta_case=beta_case)
    text = result.not_checked_text()
    if text:
        notes.append(text)
    return result


def _drift_rhs(xp, r, omega, beta_dev, psi, R, R_bar, G, eta, sm) -> tuple[float, float]:
    """``E_k`` and the RHS ``Ψ_k − 2η(R̂(Θ(k)) − R̂(Θ̄)) + 2η E_k + η² G_k`` (observed)."""
    wabs = xp.sum(xp.abs(r) * omega, axis=0)  # (T,): Σ_j ω_jt |r_jt|
    E = float(xp.sum(wabs * beta_dev)) * psi / (2.0 * sm)
    return E, psi - 2.0 * eta * (R - R_bar) + 2.0 * eta * E + eta * eta * G


def _resolution_reason(slack: float, fp: float, scale: float) -> str | None:
    """None (checked) or "allowance_not_small": the resolution rule of the module doc.
    A slack below −fp is a violation whatever the ratio, so it counts as checked."""
    if slack < -fp:
        return None
    return None if fp <= RESOLUTION * scale else "allowance_not_small"


def _gradient_check(k, w, U, c, X, Y, gw, gU, G, activation, loss, threads) -> dict:
    """Reverse-mode gradient vs a central difference of the loss along its direction.

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
        up = rnn.loss(w + step * vw, U + step * vU, c, X, Y, activation, loss, threads=threads)
        dn = rnn.loss(w - step * vw, U - step * vU, c, X, Y, activation, loss, threads=threads)
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


def _apriori(rec, checked, tau, eta, psi0, R_bar, observed, loss, T, algorithm, L_case,
             L_for_radius, exit_time, radius_w, radius_u, rad_bar, comparator_loss_bound):
    out = {"bound": None, "observed": observed, "applicable": False, "ratio": None,
           "eta_L2": None, "reason": ""}
    L = None
    if algorithm == "pgd" or exit_time is None:
        L = L_case
    if L_for_radius is not None and algorithm == "gd":
        bw = float(max(np.nanmax(radius_w), rad_bar[0]))
        bu = float(max(np.nanmax(radius_u), rad_bar[1]))
        L = _call_constants(L_for_radius, bw, bu, T)
    if L is None:
        out["reason"] = "no finite L_t for a ball holding every iterate"
        return out
    lam = float(np.mean(L ** 2)) if loss == "all-steps" else float(L[T - 1] ** 2)
    out["eta_L2"] = eta * lam
    if not checked.all():
        out["reason"] = "some steps not checked (E_k unknown)"
        return out
    if not eta * lam < 1:
        out["reason"] = "eta * mean_t L_t^2 >= 1"
        return out
    meanE = float(np.mean(rec["E"]))

    def bound(Rb):
        return (Rb + psi0 / (2 * eta * tau) + meanE) / (1 - eta * lam)

    b = bound(R_bar)
    out.update(bound=b, applicable=bool(math.isfinite(b)),
               ratio=(b / observed) if observed > 0 else None,
               holds=bool(observed <= b))
    if comparator_loss_bound is not None:
        b2 = bound(float(comparator_loss_bound))
        out.update(bound_certified_comparator=b2,
                   ratio_certified_comparator=(b2 / observed) if observed > 0 else None)
    return out
