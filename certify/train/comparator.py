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

__all__ = ["Comparator", "ComparatorSettings", "SolverSettings", "transport_comparator",
           "linearized_comparator", "loss_weights"]

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


@dataclass(frozen=True, kw_only=True)
class SolverSettings:
    """FISTA for :func:`linearized_comparator`: at most ``max_iter`` iterations, stop at a
    Frank–Wolfe gap ``≤ tol·max(ℓ(Θ̄), tiny)``; ``power_iters`` steps of power iteration
    (random start drawn with ``seed``) for the first step constant."""

    max_iter: int = 2000
    tol: float = 1e-9
    power_iters: int = 50
    seed: int = 0


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


def linearized_comparator(w0, U0, c, X, Y, settings: ComparatorSettings,
                          solver: SolverSettings | None = None) -> Comparator:
    """The best comparator of the linearized model in Ω_ρ (convex; FISTA). See module doc.

    Stops when the Frank–Wolfe gap is ``≤ tol·max(ℓ(Θ̄), tiny)`` or after
    ``max_iter`` iterations (``converged`` says which; ``solver``, None:
    :class:`SolverSettings` ()).
    """
    t_start = time.perf_counter()
    solver = SolverSettings() if solver is None else solver
    rnn._check_loss(settings.loss)
    q = _LeastSquares.at(w0, U0, c, X, Y, settings)
    L_power = _top_eigenvalue(q, solver.power_iters, solver.seed)
    st = _fista(q, max(L_power, 1e-300) * 1.01, solver)
    gap, pg = _optimality(q, st)
    converged = st.converged or gap <= solver.tol * max(st.fx, 1e-300)
    w, U = w0 + st.xw, U0 + st.xU
    rho_w, rho_u = settings.rho_w, settings.rho_u
    # Θ̄ = Θ0 + Δ with Δ inside the centered ball: recheck after the addition
    if not projection.contains(w, U, w0, U0, rho_w, rho_u):
        w, U = projection.project(w, U, w0, U0, rho_w, rho_u)
    R = _risk(c, X, Y, settings).value(w, U)
    xp = q.xp
    return Comparator(
        w, U, "linearized", projection.contains(w, U, w0, U0, rho_w, rho_u, rtol=IN_BALL_RTOL),
        projection.radius(w, U, w0, U0), _sq(xp, w - w0) + _sq(xp, U - U0), R,
        objective=st.fx, gap=gap, pg_norm=pg, L_lin=st.L, L_power=L_power,
        iterations=st.it, converged=converged,
        history={"objective": st.hist_obj, "gap": st.hist_gap},
        seconds=time.perf_counter() - t_start)


@dataclass(frozen=True, eq=False)
class _LeastSquares:
    """The linearized problem in Δ = Θ − Θ0: ``ℓ = ½ Σ ω (b + J Δ)²`` with ``b`` the
    residual of the linear model at Δ = 0, over the centered Ω_ρ (per-neuron radii
    ``rw``, ``ru`` = ρ/√m).  Functions of Δ take ``Jd`` = J Δ."""

    xp: object
    lin: rnn.Linearization
    omega: object
    b: object
    w0: object
    U0: object
    rho_w: float
    rho_u: float
    rw: float
    ru: float

    @classmethod
    def at(cls, w0, U0, c, X, Y, settings: ComparatorSettings) -> _LeastSquares:
        """The problem linearized at Θ0 = (w0, U0)."""
        xp = array_api_compat.array_namespace(w0, U0, c, X, Y)
        m = U0.shape[0]
        n, T = Y.shape
        s = math.sqrt(m)
        lin = rnn.linearize(w0, U0, c, X, settings.activation, threads=settings.threads)
        omega = loss_weights(xp, n, T, settings.loss, w0)
        return cls(xp, lin, omega, lin.f0 - Y, w0, U0, settings.rho_w, settings.rho_u,
                   float(settings.rho_w) / s, float(settings.rho_u) / s)

    def grad(self, Jd):
        """∇ℓ at Δ with J Δ = Jd."""
        return self.lin.vjp(self.omega * (self.b + Jd))

    def obj(self, Jd) -> float:
        r = self.b + Jd
        return 0.5 * float(self.xp.sum(self.omega * r * r))

    def proj(self, dw, dU):
        """Projection of Δ onto the centered Ω (via the same routine)."""
        xp = self.xp
        return projection.project(dw, dU, xp.zeros_like(dw), xp.zeros_like(dU), self.rho_w,
                                  self.rho_u)

    def gap(self, gw, gU, dw, dU) -> float:
        """The Frank–Wolfe gap at Δ = (dw, dU) with gradient (gw, gU)."""
        return _fw_gap(self.xp, gw, gU, dw, dU, self.rw, self.ru)

    def prox_step(self, yw, yU, gw, gU, fy, L):
        """The projected step from y with gradient (gw, gU) and ℓ(y) = fy: L doubles until
        the sufficient decrease holds (exact for a quadratic).  Returns the new point,
        its J Δ, its objective and the L used."""
        xp = self.xp
        while True:
            nw, nU = self.proj(yw - gw / L, yU - gU / L)
            Jn = self.lin.jvp(nw, nU)
            dw_, dU_ = nw - yw, nU - yU
            dsq = _sq(xp, dw_) + _sq(xp, dU_)
            fn = self.obj(Jn)
            lin_model = fy + float(xp.sum(gw * dw_) + xp.sum(gU * dU_)) + 0.5 * L * dsq
            if fn <= lin_model + 1e-12 * abs(lin_model) or dsq == 0.0:
                return nw, nU, Jn, fn, L
            L *= 2.0


def _top_eigenvalue(q: _LeastSquares, power_iters: int, seed: int) -> float:
    """Power iteration for λ_max(Jᵀ diag(ω) J): the last Rayleigh quotient (a lower
    bound of λ_max), from a random start drawn with ``seed``."""
    import numpy as _np

    xp, lin, omega, w0, U0 = q.xp, q.lin, q.omega, q.w0, q.U0
    m, d = U0.shape
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
    return lam


@dataclass(frozen=True, eq=False)
class _FistaState:
    """Where FISTA stopped: Δ = (xw, xU), J Δ, ℓ(Δ), the step constant L, the last
    iteration, whether the gap test passed, and the gap/objective every 10 iterations."""

    xw: object
    xU: object
    Jx: object
    fx: float
    L: float
    it: int
    converged: bool
    hist_obj: list
    hist_gap: list


def _fista(q: _LeastSquares, L: float, solver: SolverSettings) -> _FistaState:
    """FISTA on Δ = Θ − Θ0 from Δ = 0 with step 1/L (L doubles on failed sufficient
    decrease) and adaptive restart; the gap is tested every 10 iterations."""
    xp = q.xp
    xw, xU, Jx = xp.zeros_like(q.w0), xp.zeros_like(q.U0), xp.zeros_like(q.b)
    yw, yU, Jy = xw, xU, Jx
    fx = q.obj(Jx)
    tk = 1.0
    hist_obj, hist_gap = [], []
    converged = False
    it = 0
    for it in range(1, solver.max_iter + 1):
        gw, gU = q.grad(Jy)
        nw, nU, Jn, fn, L = q.prox_step(yw, yU, gw, gU, q.obj(Jy), L)
        if fn > fx:  # adaptive restart: drop momentum, restart from x
            tk = 1.0
            yw, yU, Jy = xw, xU, Jx
            continue
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * tk * tk)) / 2.0
        mom = (tk - 1.0) / t_next
        yw, yU = nw + mom * (nw - xw), nU + mom * (nU - xU)
        Jy = Jn + mom * (Jn - Jx)
        xw, xU, Jx, fx, tk = nw, nU, Jn, fn, t_next
        if it % 10 == 0 or it == solver.max_iter:
            gap = q.gap(*q.grad(Jx), xw, xU)
            hist_obj.append(fx)
            hist_gap.append(gap)
            if gap <= solver.tol * max(fx, 1e-300):
                converged = True
                break
    return _FistaState(xw, xU, Jx, fx, L, it, converged, hist_obj, hist_gap)


def _optimality(q: _LeastSquares, st: _FistaState) -> tuple[float, float]:
    """The Frank–Wolfe gap and the projected-gradient norm ``‖L (Δ − Π(Δ − ∇ℓ/L))‖``
    where FISTA stopped."""
    xp = q.xp
    gxw, gxU = q.grad(st.Jx)
    gap = q.gap(gxw, gxU, st.xw, st.xU)
    pw, pU = q.proj(st.xw - gxw / st.L, st.xU - gxU / st.L)
    return gap, st.L * math.sqrt(_sq(xp, st.xw - pw) + _sq(xp, st.xU - pU))
