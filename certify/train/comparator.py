"""The comparator Θ̄ of the drift inequality (THEORY §6).

Two constructions, both returning a :class:`Comparator`:

* :func:`transport_comparator` — for realizable (transport) targets:
  ``θ̄_i = θ_i(0) + c_i v(θ_i(0))/√m`` from the transport map evaluated at the
  initial parameters, ``(vw, vU)`` of shapes (m,), (m, d); checks ``Θ̄ ∈ Ω_ρ``.
* :func:`linearized_comparator` — for targets outside the class: the best
  comparator of the *linearized* model in Ω_ρ,

      minimize  ℓ(Θ) = (1/(nT)) Σ_{j,t} ½ (f_t(Θ0) + ⟨∇f_t(Θ0), Θ − Θ0⟩ − y_{jt})²   over Θ ∈ Ω_ρ

  (``final-step``: t = T−1 with 1/n), a convex problem, solved by FISTA
  (accelerated projected gradient, adaptive restart) with step ``1/L`` where
  ``L`` starts at the top eigenvalue of the Gauss–Newton matrix ``Jᵀ diag(ω) J``
  (power iteration with forward-mode ``J v`` — the derived ``jvp`` template —
  and reverse-mode ``Jᵀ r``) and is doubled whenever the (exactly checkable,
  the objective is quadratic) sufficient-decrease test fails.  Reported:
  the final objective, the Frank–Wolfe duality gap
  ``gap = max_{S ∈ Ω_ρ} ⟨∇ℓ(Θ̄), Θ̄ − S⟩ ≥ ℓ(Θ̄) − min ℓ`` (closed form: Ω_ρ is
  a product of intervals and balls), and the projected-gradient norm.

Any Θ̄ ∈ Ω_ρ is a valid comparator for the drift inequality; optimality only
makes the resulting bound tighter.  All numbers here are observed floats.
The true empirical risk ``R̂(Θ̄)`` is evaluated at the end.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import array_api_compat

from . import projection, rnn

__all__ = ["Comparator", "ComparatorSettings", "transport_comparator", "linearized_comparator",
           "loss_weights"]

#: relative slack for "Θ̄ ∈ Ω_ρ" (rounding in θ0 + c v/√m and in the norms)
IN_BALL_RTOL = 1e-12


@dataclass(frozen=True, kw_only=True)
class ComparatorSettings:
    """What both constructions need besides the arrays: the radii ``rho_w``, ``rho_u``
    of Ω_ρ, the ``activation`` and ``loss`` ("all-steps" | "final-step") of R̂, and
    the NumPy thread-pool size ``threads`` (results do not depend on it)."""

    rho_w: float
    rho_u: float
    activation: object = "tanh"
    loss: str = "all-steps"
    threads: int | None = None


@dataclass(frozen=True, eq=False)
class Comparator:
    """A comparator Θ̄ = (w, U) and what is known about it (observed floats)."""

    w: object
    U: object
    kind: str  # "transport" | "linearized"
    in_ball: bool  # Θ̄ ∈ Ω_ρ (relative slack IN_BALL_RTOL)
    radius: tuple[float, float]  # smallest (ρ_w, ρ_u) holding Θ̄
    dist_sq: float  # ‖Θ̄ − Θ(0)‖²
    loss: float  # R̂(Θ̄) of the true model
    objective: float | None = None  # linearized objective ℓ(Θ̄)
    gap: float | None = None  # Frank–Wolfe gap ≥ ℓ(Θ̄) − min ℓ
    pg_norm: float | None = None  # ‖L (Θ̄ − Π(Θ̄ − ∇ℓ/L))‖
    L_lin: float | None = None  # step constant used (≥ Gauss–Newton top eigenvalue estimate)
    L_power: float | None = None  # power-iteration estimate of λ_max(Jᵀ diag(ω) J)
    iterations: int = 0
    converged: bool | None = None
    history: dict = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict:
        keys = ("kind", "in_ball", "radius", "dist_sq", "loss", "objective", "gap", "pg_norm",
                "L_lin", "L_power", "iterations", "converged", "seconds")
        return {k: getattr(self, k) for k in keys}


def _sq(xp, a) -> float:
    return float(xp.sum(a * a))


def transport_comparator(w0, U0, c, transport, X, Y, settings: ComparatorSettings, *,
                         nu_sq=None) -> Comparator:
    """``θ̄_i = θ_i(0) + c_i v(θ_i(0))/√m`` (THEORY §6) and ``R̂(Θ̄)``.

    ``transport = (vw, vU)``, of shapes (m,), (m, d), is the transport map at the
    initial parameters.  ``Θ̄ ∈ Ω_ρ`` iff ``max|v_w| ≤ ρ_w`` and ``max‖v_u‖ ≤ ρ_u``;
    ``nu_sq`` (if given, ν̄²) is checked against ``‖Θ̄ − Θ(0)‖²`` in ``history``.
    """
    t0 = time.perf_counter()
    vw, vU = transport
    xp = array_api_compat.array_namespace(w0, U0, c, vw, vU)
    m = w0.shape[0]
    s = math.sqrt(m)
    w = w0 + c * vw / s
    U = U0 + c[:, None] * vU / s
    rad = projection.radius(w, U, w0, U0)
    inside = projection.contains(w, U, w0, U0, settings.rho_w, settings.rho_u,
                                 rtol=IN_BALL_RTOL)
    dist = _sq(xp, w - w0) + _sq(xp, U - U0)
    hist = {}
    if nu_sq is not None:
        hist["nu_sq"] = float(nu_sq)
        hist["dist_within_nu"] = dist <= float(nu_sq) * (1 + IN_BALL_RTOL)
    R = _risk(c, X, Y, settings).value(w, U)
    return Comparator(w, U, "transport", inside, rad, dist, R, history=hist,
                      seconds=time.perf_counter() - t0)


def _risk(c, X, Y, settings: ComparatorSettings) -> rnn.Risk:
    return rnn.Risk(c, X, Y, settings.activation, settings.loss, settings.threads)


def loss_weights(xp, n: int, T: int, loss: str, like):
    """ω (n, T): the weights of R̂ = Σ ω ½ r² (1/(nT) everywhere, or 1/n at t = T−1)."""
    dev = array_api_compat.device(like)
    if loss == "all-steps":
        return xp.full((n, T), 1.0 / (n * T), dtype=like.dtype, device=dev)
    if loss == "final-step":
        z = xp.zeros((n, T - 1), dtype=like.dtype, device=dev)
        o = xp.full((n, 1), 1.0 / n, dtype=like.dtype, device=dev)
        return xp.concat([z, o], axis=1)
    raise ValueError(f"unknown loss {loss!r}")


def _fw_gap(xp, gw, gU, dw, dU, rw, ru) -> float:
    """max_{S∈Ω} ⟨g, Θ − S⟩ = ⟨g, Θ − Θ0⟩ + r_w Σ|g_w| + r_u Σ‖g_u‖ (per-neuron radii)."""
    inner = float(xp.sum(gw * dw) + xp.sum(gU * dU))
    return inner + rw * float(xp.sum(xp.abs(gw))) + ru * float(xp.sum(projection.row_norms(gU)))


def linearized_comparator(w0, U0, c, X, Y, rho_w, rho_u, activation="tanh", loss="all-steps",
                          *, max_iter: int = 2000, tol: float = 1e-9, power_iters: int = 50,
                          seed: int = 0, threads=None) -> Comparator:
    """The best comparator of the linearized model in Ω_ρ (convex; FISTA). See module doc.

    Stops when the Frank–Wolfe gap is ``≤ tol·max(ℓ(Θ̄), tiny)`` or after
    ``max_iter`` iterations (``converged`` says which).
    """
    t_start = time.perf_counter()
    rnn._check_loss(loss)
    xp = array_api_compat.array_namespace(w0, U0, c, X, Y)
    m, d = U0.shape
    n, T = Y.shape
    s = math.sqrt(m)
    rw, ru = float(rho_w) / s, float(rho_u) / s
    lin = rnn.linearize(w0, U0, c, X, activation, threads=threads)
    omega = loss_weights(xp, n, T, loss, w0)
    b = lin.f0 - Y  # residual of the linear model at Δ = 0

    def grad(Jd):  # ∇ℓ at Δ with J Δ = Jd
        return lin.vjp(omega * (b + Jd))

    def obj(Jd) -> float:
        r = b + Jd
        return 0.5 * float(xp.sum(omega * r * r))

    # power iteration for λ_max(Jᵀ diag(ω) J)
    import numpy as _np

    rng = _np.random.default_rng(seed)
    dev = array_api_compat.device(w0)
    vw = xp.asarray(rng.standard_normal(m), dtype=w0.dtype, device=dev)
    vU = xp.asarray(rng.standard_normal((m, d)), dtype=U0.dtype, device=dev)
    lam = 0.0
    for _ in range(max(1, power_iters)):
        nv = math.sqrt(_sq(xp, vw) + _sq(xp, vU))
        if nv == 0.0 or not math.isfinite(nv):
            break
        vw, vU = vw / nv, vU / nv
        Jv = lin.jvp(vw, vU)
        lam = float(xp.sum(omega * Jv * Jv))  # Rayleigh quotient (a lower bound of λ_max)
        vw, vU = lin.vjp(omega * Jv)
    L_power = lam
    L = max(lam, 1e-300) * 1.01

    def proj(dw, dU):  # projection of Δ onto the centered Ω (via the same routine)
        return projection.project(dw, dU, xp.zeros_like(dw), xp.zeros_like(dU), rho_w, rho_u)

    # FISTA on Δ = Θ − Θ0
    zw, zU = xp.zeros_like(w0), xp.zeros_like(U0)
    xw, xU, Jx = zw, zU, xp.zeros_like(b)
    yw, yU, Jy = xw, xU, Jx
    fx = obj(Jx)
    tk = 1.0
    hist_obj, hist_gap = [], []
    converged = False
    it = 0
    gap = pg = math.inf
    for it in range(1, max_iter + 1):
        gw, gU = grad(Jy)
        fy = obj(Jy)
        while True:  # sufficient decrease (exact for a quadratic); L doubles on failure
            nw, nU = proj(yw - gw / L, yU - gU / L)
            Jn = lin.jvp(nw, nU)
            dw_, dU_ = nw - yw, nU - yU
            dsq = _sq(xp, dw_) + _sq(xp, dU_)
            fn = obj(Jn)
            lin_model = fy + float(xp.sum(gw * dw_) + xp.sum(gU * dU_)) + 0.5 * L * dsq
            if fn <= lin_model + 1e-12 * abs(lin_model) or dsq == 0.0:
                break
            L *= 2.0
        if fn > fx:  # adaptive restart: drop momentum, restart from x
            tk = 1.0
            yw, yU, Jy = xw, xU, Jx
            continue
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * tk * tk)) / 2.0
        mom = (tk - 1.0) / t_next
        yw, yU = nw + mom * (nw - xw), nU + mom * (nU - xU)
        Jy = Jn + mom * (Jn - Jx)
        xw, xU, Jx, fx, tk = nw, nU, Jn, fn, t_next
        if it % 10 == 0 or it == max_iter:
            gxw, gxU = grad(Jx)
            gap = _fw_gap(xp, gxw, gxU, xw, xU, rw, ru)
            hist_obj.append(fx)
            hist_gap.append(gap)
            if gap <= tol * max(fx, 1e-300):
                converged = True
                break
    gxw, gxU = grad(Jx)
    gap = _fw_gap(xp, gxw, gxU, xw, xU, rw, ru)
    pw, pU = proj(xw - gxw / L, xU - gxU / L)
    pg = L * math.sqrt(_sq(xp, xw - pw) + _sq(xp, xU - pU))
    converged = converged or gap <= tol * max(fx, 1e-300)
    w, U = w0 + xw, U0 + xU
    # Θ̄ = Θ0 + Δ with Δ inside the centered ball: recheck after the addition
    if not projection.contains(w, U, w0, U0, rho_w, rho_u):
        w, U = projection.project(w, U, w0, U0, rho_w, rho_u)
    R = rnn.loss(w, U, c, X, Y, activation, loss, threads=threads)
    return Comparator(
        w, U, "linearized", projection.contains(w, U, w0, U0, rho_w, rho_u, rtol=IN_BALL_RTOL),
        projection.radius(w, U, w0, U0), _sq(xp, w - w0) + _sq(xp, U - U0), R,
        objective=fx, gap=gap, pg_norm=pg, L_lin=L, L_power=L_power, iterations=it,
        converged=converged, history={"objective": hist_obj, "gap": hist_gap},
        seconds=time.perf_counter() - t_start)
