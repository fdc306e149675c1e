"""The diagonal Elman RNN of THEORY §1, its empirical risk and exact derivatives.

Everything here is written against the array API standard
(``array_api_compat.array_namespace``): NumPy by default, torch or CuPy arrays
when given them, and it runs under ``array_api_strict``.  Numbers computed here
are *observed* (floating point), never certified.

No derivative is written by hand.  σ, σ', σ'' come from
``symbolic.activation_functions(act)`` (``d01_array`` → (σ, σ'),
``d012_array`` → (σ, σ', σ''), ``d0_array`` → σ) and every per-neuron
update from the sympy-derived templates of ``symbolic.cell_functions()``:

* reverse mode (BPTT, :func:`loss_and_grad`, :func:`vjp`) composes the local
  partials ``dh_dhprev(s1, w)``, ``dh_dw(hprev, s1)``, ``dh_ds(s1)`` of
  ``h_t = σ(w h_{t-1} + s_t)``, ``s_t = ⟨u, x_t⟩``, with the chain rule;
* forward mode (:func:`jvp`) runs the derived ``jvp`` template
  ``j_t = ⟨g_t, v⟩``;
* :func:`sensitivities` runs the derived ``g_w, g_u, H_ww, H_wu, H_uu``
  templates (THEORY §4).

Shapes: ``w`` (m,), ``U`` (m, d), ``c`` (m,), ``X`` (n, T, d), ``Y`` (n, T).
Outputs ``f_t(X_j) = m^{-1/2} Σ_i c_i h_t^i`` are returned as (n, T).

Performance (reverse mode): neurons are independent, so the work is split into
blocks of neurons sized to stay in cache; ``S = X Uᵀ`` is formed per block by
one batched matmul, the forward pass keeps ``h_t`` and ``σ'(z_t)`` per block
(memory ``2·m·n·T`` floats, never an ``m·n·T·d`` tensor), and the backward
pass accumulates ``∂R̂/∂U`` with one ``(block, n) @ (n, d)`` matmul per step.
With NumPy the blocks run on a thread pool (NumPy releases the GIL); the block
partition does not depend on the number of threads, so results are bitwise
identical for any ``threads``.  σ and σ' at the same ``z`` come from one
generated function that shares their transcendental calls, e.g. one ``exp``
per neuron·sample·step for tanh (see :func:`symbolic.activations.array_form`).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import array_api_compat
import numpy as np

import symbolic

__all__ = [
    "LOSSES",
    "forward",
    "loss",
    "loss_and_grad",
    "vjp",
    "jvp",
    "linearize",
    "Linearization",
    "sensitivities",
    "check_grads",
    "to_numpy",
    "Workspace",
]

LOSSES = ("all-steps", "final-step")

#: target number of (neuron, sample) elements per block: ~256 KiB per float64 array
_BLOCK_ELEMS = 1 << 15


# --------------------------------------------------------------------------
# namespaces, activations, validation


_NUMPY2 = int(np.__version__.split(".")[0]) >= 2


def _namespace(*arrays):
    xp = array_api_compat.array_namespace(*arrays)
    if _NUMPY2 and array_api_compat.is_numpy_namespace(xp):
        return np  # NumPy ≥ 2 is array-API compatible; its own functions are the fastest path
    return xp


def _is_np(xp) -> bool:
    """NumPy (the main namespace or array-api-compat's wrapper): the blocked, threaded path."""
    return xp is np or array_api_compat.is_numpy_namespace(xp)


@lru_cache(maxsize=64)
def _act_module(activation):
    return symbolic.activation_functions(activation)


def _activation(activation):
    if isinstance(activation, str):
        return _act_module(activation.strip())
    return _act_module(activation)


def _check_inputs(w, U, c, X, Y=None):
    if w.ndim != 1 or U.ndim != 2 or X.ndim != 3:
        raise ValueError(f"expected w (m,), U (m, d), X (n, T, d); got w{tuple(w.shape)}, "
                         f"U{tuple(U.shape)}, X{tuple(X.shape)}")
    m, d = U.shape
    n, T, dx = X.shape
    if w.shape[0] != m or dx != d:
        raise ValueError(f"shape mismatch: w{tuple(w.shape)}, U{tuple(U.shape)}, X{tuple(X.shape)}")
    if c is not None and tuple(c.shape) != (m,):
        raise ValueError(f"c must have shape ({m},), got {tuple(c.shape)}")
    if Y is not None and tuple(Y.shape) != (n, T):
        raise ValueError(f"Y must have shape ({n}, {T}), got {tuple(Y.shape)}")
    if T < 1 or n < 1 or m < 1:
        raise ValueError(f"empty problem: m={m}, n={n}, T={T}")
    return m, d, n, T


def _check_loss(loss):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    pool = _POOLS.get(threads)
    if pool is None:
        pool = _POOLS[threads] = ThreadPoolExecutor(max_workers=threads,
                                                    thread_name_prefix="rnn-block")
    return pool


def _blocks(xp, m: int, n: int):
    """Neuron blocks [(i0, i1), ...]: cache-sized with NumPy, one block elsewhere."""
    if not _is_np(xp):
        return [(0, m)]
    size = max(1, min(m, _BLOCK_ELEMS // max(n, 1)))
    return [(i, min(i + size, m)) for i in range(0, m, size)]


def _map(xp, fn, items, threads):
    if _is_np(xp) and len(items) > 1:
        t = _default_threads() if threads is None else int(threads)
        if t > 1:
            return list(_pool(min(t, len(items))).map(fn, items))
    return [fn(it) for it in items]


# --------------------------------------------------------------------------
# reusable tape memory


class Workspace:
    """Tape memory kept between calls of the same shape (NumPy only; opt-in).

    A loop that calls :func:`loss_and_grad` many times at one problem size (the
    executor) passes one ``Workspace`` so the ``2·m·n·T`` floats of the tape
    are allocated (and page-faulted) once instead of on every call.  Holds that
    memory until it is dropped or :meth:`clear` is called.  Not for concurrent
    calls.
    """

    def __init__(self):
        self._bufs: dict = {}

    def get(self, key, shape):
        buf = self._bufs.get(key)
        if buf is None or buf.shape != shape:
            buf = self._bufs[key] = np.empty(shape)
        return buf

    def clear(self):
        self._bufs.clear()

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._bufs.values())


# --------------------------------------------------------------------------
# per-block kernels (the only places the recurrence is run)


class _Ctx:
    """Per-call constants shared by the block kernels."""

    def __init__(self, xp, act, X):
        self.xp = xp
        self.act = act
        self.cell = symbolic.cell_functions()
        n, T, d = X.shape
        self.n, self.T, self.d = n, T, d
        # X as (T, d, n) for S = U Xᵀ per step and (T, n, d) for the gU matmuls
        if _is_np(xp):
            self.XT = np.ascontiguousarray(np.transpose(X, (1, 2, 0)))
            self.Xt = np.ascontiguousarray(np.transpose(X, (1, 0, 2)))
        else:
            self.XT = xp.permute_dims(X, (1, 2, 0))
            self.Xt = xp.permute_dims(X, (1, 0, 2))


def _forward_block(ctx: _Ctx, w, U, c, keep: bool, ws: Workspace | None = None, key=0):
    """Run one block of neurons forward.

    Returns ``(F, tape)`` with ``F`` (T, n) the block's part of ``Σ_i c_i h_t^i``
    (``c`` already carries the m^{-1/2}) and, when ``keep``, ``tape`` the lists
    ``[h_t]`` and ``[σ'(z_t)]`` (each (block, n)).
    """
    xp, act, cell = ctx.xp, ctx.act, ctx.cell
    wc = w[:, None]
    T = ctx.T
    if _is_np(xp):
        # NumPy: s_t = U x_tᵀ per step (a cache-hot (b, n) temporary); the tape
        # lives in two (T, b, n) blocks, which get transparent huge pages (far
        # fewer page faults than one fresh array per step)
        Hbuf = S1buf = None
        if keep:
            shape = (T, w.shape[0], ctx.n)
            if ws is None:
                Hbuf, S1buf = np.empty(shape), np.empty(shape)
            else:
                Hbuf, S1buf = ws.get(("h", key), shape), ws.get(("s1", key), shape)
        F = np.empty((T, ctx.n))
        h = None
        for t in range(T):
            s = U @ ctx.XT[t]
            z = s if h is None else cell.z(wc, h, s, ns=np)
            if keep:
                h, S1buf[t] = act.d01_array(z, ns=np)
                Hbuf[t] = h
            else:
                h = act.d0_array(z, ns=np)
            np.matmul(c, h, out=F[t])
        return F, ((list(Hbuf), list(S1buf)) if keep else ([], []))
    S = xp.matmul(U, ctx.XT)  # (T, b, n): s_t = ⟨u_i, x_t⟩
    hs, s1s, F = [], [], []
    h = None
    for t in range(T):
        z = S[t, ...] if h is None else cell.z(wc, h, S[t, ...], ns=xp)
        if keep:
            h, s1 = act.d01_array(z, ns=xp)
            hs.append(h)
            s1s.append(s1)
        else:
            h = act.d0_array(z, ns=xp)
        F.append(xp.matmul(c, h))
    return xp.stack(F, axis=0), (hs, s1s)


def _backward_block(ctx: _Ctx, w, c, tape, cot, t_first: int):
    """Reverse mode for one block: ``cot`` (T, n) is ∂R̂/∂f_t; returns (gw, gU).

    Adjoint ``a_t = ∂R̂/∂h_t`` (block, n):
    ``a_t = c ⊗ cot_t + a_{t+1} · dh_dhprev(s1_{t+1}, w)``; then
    ``∂R̂/∂w += Σ_j a_t · dh_dw(h_{t-1}, s1_t)`` and
    ``∂R̂/∂u += (a_t · dh_ds(s1_t)) @ x_t``.  Steps before ``t_first`` have no
    direct loss term (``final-step``).
    """
    xp, cell = ctx.xp, ctx.cell
    hs, s1s = tape
    wc = w[:, None]
    cc = c[:, None]
    b = w.shape[0]
    gw = xp.zeros((b,), dtype=w.dtype, device=array_api_compat.device(w))
    gU = xp.zeros((b, ctx.d), dtype=w.dtype, device=array_api_compat.device(w))
    carry = None
    for t in range(ctx.T - 1, -1, -1):
        s1 = s1s[t]
        if t >= t_first:
            a = cc * cot[t, ...][None, :]
            if carry is not None:
                a += carry
        else:
            a = carry
        ds = xp.matmul(a * cell.dh_ds(s1, ns=xp), ctx.Xt[t, ...])  # (b, d)
        gU += ds
        if t > 0:
            gw += xp.vecdot(a, cell.dh_dw(hs[t - 1], s1, ns=xp), axis=-1)
            carry = a * cell.dh_dhprev(s1, wc, ns=xp)
    return gw, gU


def _jvp_block(ctx: _Ctx, w, tape, vw, vU):
    """Forward mode for one block with the derived ``jvp`` template: list of j_t (block, n)."""
    xp, cell = ctx.xp, ctx.cell
    hs, s1s = tape
    VX = xp.matmul(vU, ctx.XT)  # (T, b, n): ⟨v_u, x_t⟩
    wc, vwc = w[:, None], vw[:, None]
    zero = xp.zeros_like(hs[0])
    js = []
    j = zero
    for t in range(ctx.T):
        hprev = hs[t - 1] if t > 0 else zero
        j = cell.jvp(s1s[t], wc, hprev, vwc, VX[t, ...], j, ns=xp)
        js.append(j)
    return js


# --------------------------------------------------------------------------
# public API


def forward(w, U, c, X, activation="tanh", *, threads=None):
    """Outputs ``f_t(X_j; Θ) = m^{-1/2} Σ_i c_i h_t^i`` as an (n, T) array (THEORY §1)."""
    xp = _namespace(w, U, c, X)
    m, d, n, T = _check_inputs(w, U, c, X)
    ctx = _Ctx(xp, _activation(activation), X)
    cs = c / math.sqrt(m)

    def run(blk):
        i0, i1 = blk
        return _forward_block(ctx, w[i0:i1], U[i0:i1, :], cs[i0:i1], keep=False)[0]

    parts = _map(xp, run, _blocks(xp, m, n), threads)
    F = parts[0]
    for p in parts[1:]:
        F = F + p
    return np.ascontiguousarray(F.T) if _is_np(xp) else xp.permute_dims(F, (1, 0))


def _weights(xp, r, loss):
    """Cotangent ∂R̂/∂f (T, n) from the residual r (T, n), and R̂."""
    T, n = r.shape
    if loss == "all-steps":
        R = float(xp.sum(r * r)) / (2.0 * n * T)
        return r / (n * T), 0, R
    rl = r[T - 1, ...]
    R = float(xp.sum(rl * rl)) / (2.0 * n)
    cot = xp.zeros_like(r)
    if _is_np(xp):
        cot[T - 1] = rl / n
    else:
        cot = xp.concat([cot[: T - 1, ...], (rl / n)[None, :]], axis=0)
    return cot, T - 1, R


def _evaluate(w, U, c, X, Y, activation="tanh", loss="all-steps", *, grad=True, threads=None,
              workspace=None):
    """R̂, residuals r (n, T) and (if ``grad``) the gradient; the executor's entry point."""
    _check_loss(loss)
    xp = _namespace(w, U, c, X, Y)
    m, d, n, T = _check_inputs(w, U, c, X, Y)
    ctx = _Ctx(xp, _activation(activation), X)
    cs = c / math.sqrt(m)
    blocks = _blocks(xp, m, n)

    ws = workspace if _is_np(xp) else None

    def fwd(k):
        i0, i1 = blocks[k]
        return _forward_block(ctx, w[i0:i1], U[i0:i1, :], cs[i0:i1], keep=grad, ws=ws, key=k)

    outs = _map(xp, fwd, list(range(len(blocks))), threads)
    F = outs[0][0]
    for o in outs[1:]:
        F = F + o[0]
    r = F - xp.permute_dims(Y, (1, 0))  # (T, n)
    cot, t_first, R = _weights(xp, r, loss)
    res = {"R": R, "r": xp.permute_dims(r, (1, 0)), "gw": None, "gU": None}
    if not grad:
        return res

    def bwd(k):
        i0, i1 = blocks[k]
        tape = outs[k][1]
        out = _backward_block(ctx, w[i0:i1], cs[i0:i1], tape, cot, t_first)
        tape[0].clear()  # free the block's tape as soon as it is used
        tape[1].clear()
        return out

    grads = _map(xp, bwd, list(range(len(blocks))), threads)
    if len(grads) == 1:
        res["gw"], res["gU"] = grads[0]
    else:
        res["gw"] = xp.concat([g[0] for g in grads], axis=0)
        res["gU"] = xp.concat([g[1] for g in grads], axis=0)
    return res


def loss(w, U, c, X, Y, activation="tanh", loss="all-steps", *, threads=None) -> float:
    """R̂(Θ) = (1/(nT)) Σ_{j,t} ½ r_{jt}² (``final-step``: t = T−1 only, mean over n)."""
    return _evaluate(w, U, c, X, Y, activation, loss, grad=False, threads=threads)["R"]


def loss_and_grad(w, U, c, X, Y, activation="tanh", loss="all-steps", *, threads=None,
                  workspace: Workspace | None = None):
    """``(R̂, ∂R̂/∂w (m,), ∂R̂/∂U (m, d))``: the exact gradient by reverse mode (BPTT).

    ``R̂`` is a Python float; the gradients are arrays of the inputs' namespace.
    Memory is ``O(m·n·T + m·d + n·T·d)``: the tape keeps ``h_t`` and ``σ'(z_t)``;
    no ``m·n·T·d`` tensor is formed.  ``threads`` (NumPy only) sets the
    thread-pool size (default: the CPUs this process may use); results do not
    depend on it.  ``workspace`` (a :class:`Workspace`, NumPy only) keeps the
    tape's memory between calls of the same shape.
    """
    res = _evaluate(w, U, c, X, Y, activation, loss, grad=True, threads=threads,
                    workspace=workspace)
    return res["R"], res["gw"], res["gU"]


def vjp(w, U, c, X, cot, activation="tanh", *, threads=None):
    """``(Jᵀ cot)`` for the output Jacobian: ``Σ_{j,t} cot_{jt} ∇_Θ f_t(X_j; Θ)`` as (gw, gU).

    ``cot`` has shape (n, T).  Same reverse mode as :func:`loss_and_grad`.
    """
    return linearize(w, U, c, X, activation, threads=threads).vjp(cot)


@dataclass(eq=False)
class Linearization:
    """The model's forward state at Θ, kept for repeated ``J v`` and ``Jᵀ r``.

    ``f0`` (n, T) are the outputs at Θ.  :meth:`jvp` gives ``J v`` (n, T) for a
    direction ``(vw, vU)`` (forward mode, derived ``jvp`` template);
    :meth:`vjp` gives ``Jᵀ r`` for a cotangent (n, T) (reverse mode).  Memory
    ``2·m·n·T`` floats.  Used by the comparator (Gauss–Newton power iteration
    and the linearized least-squares problem).
    """

    xp: object
    w: object
    c_scaled: object
    f0: object
    _ctx: _Ctx
    _blocks: list
    _tapes: list
    _threads: int | None

    def jvp_neurons(self, vw, vU):
        """Per-neuron directional derivatives ⟨g_t^i, v_i⟩ as (m, n, T)."""
        xp = self.xp

        def run(k):
            i0, i1 = self._blocks[k]
            return xp.stack(_jvp_block(self._ctx, self.w[i0:i1], self._tapes[k],
                                       vw[i0:i1], vU[i0:i1, :]), axis=-1)

        parts = _map(xp, run, list(range(len(self._blocks))), self._threads)
        return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)

    def jvp(self, vw, vU):
        """``J v`` = Σ_i (c_i/√m) ⟨g_t^i, v_i⟩ as (n, T)."""
        xp = self.xp

        def run(k):
            i0, i1 = self._blocks[k]
            js = _jvp_block(self._ctx, self.w[i0:i1], self._tapes[k], vw[i0:i1], vU[i0:i1, :])
            cb = self.c_scaled[i0:i1]
            return xp.stack([xp.matmul(cb, j) for j in js], axis=-1)  # (n, T)

        parts = _map(xp, run, list(range(len(self._blocks))), self._threads)
        out = parts[0]
        for p in parts[1:]:
            out = out + p
        return out

    def vjp(self, cot):
        """``Jᵀ cot`` as (gw (m,), gU (m, d)) for ``cot`` of shape (n, T)."""
        xp = self.xp
        cotT = xp.permute_dims(cot, (1, 0))

        def run(k):
            i0, i1 = self._blocks[k]
            return _backward_block(self._ctx, self.w[i0:i1], self.c_scaled[i0:i1],
                                   self._tapes[k], cotT, 0)

        grads = _map(xp, run, list(range(len(self._blocks))), self._threads)
        if len(grads) == 1:
            return grads[0]
        return (xp.concat([g[0] for g in grads], axis=0),
                xp.concat([g[1] for g in grads], axis=0))


def linearize(w, U, c, X, activation="tanh", *, threads=None) -> Linearization:
    """Run the model forward at Θ = (w, U) and keep the tape (see :class:`Linearization`)."""
    xp = _namespace(w, U, c, X)
    m, d, n, T = _check_inputs(w, U, c, X)
    ctx = _Ctx(xp, _activation(activation), X)
    cs = c / math.sqrt(m)
    blocks = _blocks(xp, m, n)

    def fwd(blk):
        i0, i1 = blk
        return _forward_block(ctx, w[i0:i1], U[i0:i1, :], cs[i0:i1], keep=True)

    outs = _map(xp, fwd, blocks, threads)
    F = outs[0][0]
    for o in outs[1:]:
        F = F + o[0]
    return Linearization(xp, w, cs, xp.permute_dims(F, (1, 0)), ctx, blocks,
                         [o[1] for o in outs], threads)


def jvp(w, U, X, vw, vU, activation="tanh", *, threads=None):
    """Per-neuron directional derivatives ``⟨g_t^i(X_j), v_i⟩`` as (m, n, T), forward mode.

    ``g_t^i = ∇_{θ_i} h_t^i`` and ``v_i = (vw_i, vU_i)``; runs the sympy-derived
    ``jvp`` template ``j_t = jvp(σ'(z_t), w, h_{t-1}, v_w, ⟨v_u, x_t⟩, j_{t-1})``.
    """
    xp = _namespace(w, U, X, vw, vU)
    c = xp.ones_like(w)
    return linearize(w, U, c, X, activation, threads=threads).jvp_neurons(vw, vU)


def sensitivities(w, U, X, activation="tanh"):
    """Per-neuron ``g_t = ∇_θ h_t`` and ``H_t = ∇²_θ h_t`` (THEORY §4), forward mode.

    Returns ``g`` (m, n, T, 1+d) and ``H`` (m, n, T, 1+d, 1+d); coordinate 0 is
    the ``w`` direction, 1..d the ``u`` directions.  Built from the derived
    templates ``g_w, g_u, H_ww, H_wu, H_uu``.

    Memory is ``O(m·n·T·d²)``: for small problems only (tests, lower bounds of
    the constants at sampled points), never for training.
    """
    xp = _namespace(w, U, X)
    m, d, n, T = _check_inputs(w, U, None, X)
    act = _activation(activation)
    cell = symbolic.cell_functions()
    S = xp.matmul(U, xp.permute_dims(X, (1, 2, 0)))  # (T, m, n)
    wc = w[:, None]  # (m, 1)
    w3, w4 = w[:, None, None], w[:, None, None, None]
    dev = array_api_compat.device(w)
    zeros = lambda *s: xp.zeros(s, dtype=w.dtype, device=dev)  # noqa: E731
    h = zeros(m, n)
    gw, gu = zeros(m, n), zeros(m, n, d)
    Hww, Hwu, Huu = zeros(m, n), zeros(m, n, d), zeros(m, n, d, d)
    gs, Hs = [], []
    for t in range(T):
        x = X[:, t, :]  # (n, d)
        z = cell.z(wc, h, S[t, ...], ns=xp)
        h_new, s1, s2 = act.d012_array(z, ns=xp)
        s1e, s2e = s1[..., None], s2[..., None]
        s1ee, s2ee = s1e[..., None], s2e[..., None]
        he, gwe = h[..., None], gw[..., None]
        xb = x[None, :, :]  # (1, n, d)
        gw_n = cell.g_w(s1, wc, h, gw, ns=xp)
        gu_n = cell.g_u(s1e, w3, xb, gu, ns=xp)
        Hww_n = cell.H_ww(s1, s2, wc, h, gw, Hww, ns=xp)
        Hwu_n = cell.H_wu(s1e, s2e, w3, he, xb, gwe, gu, Hwu, ns=xp)
        Huu_n = cell.H_uu(s1ee, s2ee, w4, xb[..., :, None], xb[..., None, :],
                          gu[..., :, None], gu[..., None, :], Huu, ns=xp)
        h, gw, gu, Hww, Hwu, Huu = h_new, gw_n, gu_n, Hww_n, Hwu_n, Huu_n
        gs.append(xp.concat([gw[..., None], gu], axis=-1))
        top = xp.concat([Hww[..., None, None], Hwu[..., None, :]], axis=-1)  # (m, n, 1, 1+d)
        bot = xp.concat([Hwu[..., :, None], Huu], axis=-1)  # (m, n, d, 1+d)
        Hs.append(xp.concat([top, bot], axis=-2))
    return xp.stack(gs, axis=2), xp.stack(Hs, axis=2)


# --------------------------------------------------------------------------
# shipped gradient checker


def to_numpy(a) -> np.ndarray:
    """A host NumPy copy (or view) of an array of any supported namespace."""
    if isinstance(a, np.ndarray):
        return a
    if array_api_compat.is_torch_array(a):
        return a.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(a):
        return a.get()
    try:
        return np.from_dlpack(a)
    except Exception:  # noqa: BLE001 - fall back to the buffer protocol / sequences
        return np.asarray(a)


def _summary(name, a) -> str:
    try:
        arr = to_numpy(a)
    except Exception:  # noqa: BLE001 - summarizing must never mask the real failure
        return f"{name}: {type(a).__name__} (unsummarizable)"
    if arr.size == 0:
        return f"{name}: shape {arr.shape} dtype {arr.dtype} (empty)"
    finite = bool(np.all(np.isfinite(arr)))
    return (f"{name}: shape {arr.shape} dtype {arr.dtype} min {np.min(arr):.6g} "
            f"max {np.max(arr):.6g} norm {np.linalg.norm(arr.ravel()):.6g} finite {finite}")


def check_grads(w, U, c, X, Y, activation="tanh", eps=1e-6, rtol=1e-6, *,
                loss="all-steps", directions=4, seed=0, forward_mode=True):
    """Check :func:`loss_and_grad` against central finite differences (like autograd's).

    Along ``directions`` random unit directions ``v`` (seeded), compares
    ``⟨∇R̂, v⟩`` with ``(R̂(Θ+εv) − R̂(Θ−εv)) / 2ε`` and, when
    ``forward_mode``, with the forward-mode value ``Σ_{jt} r_{jt}·(Jv)_{jt}``
    weighted as in R̂ (derived ``jvp`` template; agrees to rounding).
    Accepted when ``|fd − an| ≤ rtol·(|fd| + |an|) + atol`` with the rounding
    floor ``atol = 64·2⁻⁵³·(|R̂| + S)/ε`` of the difference quotient, where
    ``S`` is R̂'s formula applied to ``|f| + |y|`` (the size of the summands).

    Returns a dict of the compared values; raises AssertionError naming every
    input (shape, dtype, range, norm) and each failed direction otherwise.
    """
    _check_loss(loss)
    xp = _namespace(w, U, c, X, Y)
    m, d, n, T = _check_inputs(w, U, c, X, Y)
    R, gw, gU = loss_and_grad(w, U, c, X, Y, activation, loss)
    lin = linearize(w, U, c, X, activation) if forward_mode else None
    res = _evaluate(w, U, c, X, Y, activation, loss, grad=False)
    r = res["r"]
    # magnitude of the terms R̂ is summed from: the rounding floor of R̂ (hence of fd)
    fy = xp.abs(r + Y) + xp.abs(Y)
    if loss == "all-steps":
        r_scale = float(xp.sum(fy * fy)) / (2.0 * n * T)
    else:
        r_scale = float(xp.sum(fy[:, T - 1] ** 2)) / (2.0 * n)
    rng = np.random.default_rng(seed)
    dev = array_api_compat.device(w)
    rows, bad = [], []
    u = 2.0 ** -53
    for k in range(directions):
        vw_np = rng.standard_normal(m)
        vU_np = rng.standard_normal((m, d))
        nrm = math.sqrt(float(np.sum(vw_np ** 2) + np.sum(vU_np ** 2)))
        vw = xp.asarray(vw_np / nrm, dtype=w.dtype, device=dev)
        vU = xp.asarray(vU_np / nrm, dtype=U.dtype, device=dev)
        an = float(xp.sum(gw * vw) + xp.sum(gU * vU))
        Rp = _evaluate(w + eps * vw, U + eps * vU, c, X, Y, activation, loss, grad=False)["R"]
        Rm = _evaluate(w - eps * vw, U - eps * vU, c, X, Y, activation, loss, grad=False)["R"]
        fd = (Rp - Rm) / (2 * eps)
        atol = 64 * u * (abs(R) + r_scale) / eps
        ok = abs(fd - an) <= rtol * (abs(fd) + abs(an)) + atol
        row = {"direction": k, "analytic": an, "finite_difference": fd, "atol": atol}
        if lin is not None:
            Jv = lin.jvp(vw, vU)
            if loss == "all-steps":
                fm = float(xp.sum(r * Jv)) / (n * T)
            else:
                fm = float(xp.sum(r[:, T - 1] * Jv[:, T - 1])) / n
            row["forward_mode"] = fm
            scale = abs(an) + abs(fm) + float(xp.sum(xp.abs(r) * xp.abs(Jv))) / (n * T)
            ok = ok and abs(fm - an) <= max(rtol, 1e-10) * scale + 1e-300
        rows.append(row)
        if not ok:
            bad.append(row)
    if bad:
        lines = [f"check_grads failed in {len(bad)} of {directions} directions "
                 f"(activation={activation!r}, loss={loss!r}, eps={eps:g}, rtol={rtol:g}, "
                 f"R̂={R:.17g}, namespace={getattr(xp, '__name__', xp)})"]
        for name, a in (("w", w), ("U", U), ("c", c), ("X", X), ("Y", Y), ("grad w", gw),
                        ("grad U", gU)):
            lines.append("  " + _summary(name, a))
        for row in bad:
            lines.append("  failed: " + ", ".join(f"{k}={v:.17g}" if isinstance(v, float)
                                                  else f"{k}={v}" for k, v in row.items()))
        raise AssertionError("\n".join(lines))
    return {"R": R, "directions": rows}
