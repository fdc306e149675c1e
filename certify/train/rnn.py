"""The diagonal Elman RNN of THEORY §1, its empirical risk and exact derivatives.

Everything here is written against the array API standard
(``array_api_compat.array_namespace``): NumPy by default, torch or CuPy arrays
when given them, and it runs under ``array_api_strict``.  Numbers computed here
are *observed* (floating point), never certified.

No derivative is written by hand.  σ, σ', σ'' come from
``symbolic.activation_functions(act)`` (``d01_array`` → (σ, σ'),
``d012_array`` → (σ, σ', σ''), ``d0_array`` → σ) and every per-neuron
update from the sympy-derived templates of ``symbolic.cell_functions()``:

* reverse mode (BPTT, :func:`loss_and_grad`, :func:`vjp`) runs the derived
  ``adj_z`` step ``p_t = σ'(z_t)·(cot_t + w·p_{t+1})`` (the adjoint of the
  pre-activation z_t = w h_{t-1} + s_t, s_t = ⟨u, x_t⟩, obtained by sympy
  differentiation) and accumulates it against the derived partials
  ``dz_dw = h_{t-1}``, ``dz_ds = 1``; σ'(z_t) comes from σ(z_t) by the
  derived polynomial ``d1_of_d0`` (tanh: 1 − σ², logistic: σ − σ²) or, where
  there is none, from the tape;
* forward mode (:func:`jvp`) runs the derived ``jvp`` template
  ``j_t = ⟨g_t, v⟩``;
* :func:`sensitivities` runs the derived ``g_w, g_u, H_ww, H_wu, H_uu``
  templates (THEORY §4).

Shapes: ``w`` (m,), ``U`` (m, d), ``c`` (m,), ``X`` (n, T, d), ``Y`` (n, T).
Outputs ``f_t(X_j) = m^{-1/2} Σ_i c_i h_t^i`` are returned as (n, T).

Performance (reverse mode): every (neuron, sample) pair runs its own
recurrence, so the work is split into tiles of neurons × samples sized to
stay in cache; ``s_t = U x_tᵀ`` is formed per tile and step by one matmul, the
forward pass keeps ``h_t`` per tile (memory ``m·n·T`` floats, ``2·m·n·T`` when
σ' must be kept too; never an ``m·n·T·d`` tensor), and the backward pass
accumulates ``∂R̂/∂U`` with one ``(d, tile samples) @ (tile samples, tile
neurons)`` matmul per step.  With NumPy the tiles run on a thread pool (NumPy
releases the GIL) and every elementwise pass is one ufunc call into a
preallocated buffer: the generated ``*_into`` twins of the templates and of σ
(:func:`symbolic.codegen.emit_into`), which write h_t straight into the tape;
σ is one ``exp`` per neuron·sample·step for tanh: where σ(z) = F(k·z) with one
exp (:func:`symbolic.activations.scaled_form`; tanh: k = 2, F(y) = 1 −
2/(1 + exp(y)), three passes besides the exp) the forward pass forms y = k·z
directly from k·w and k·u (exact, k = ±2^j), else it uses
:func:`symbolic.activations.array_form`; no matmul is large enough to wake
OpenBLAS's own threads.  The tile partition does not depend on the number of
threads and partial sums are added in a fixed order, so results are bitwise
identical for any ``threads``.
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

#: target number of (neuron, sample) elements per tile: 512 KiB per float64 array
_BLOCK_ELEMS = 1 << 16
#: widest tile in samples (see :func:`_blocks`)
_TILE_SAMPLES = 128


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
    """Tiles ``[(i0, i1, j0, j1), ...]`` of neurons × samples.

    NumPy: tiles of at most ``_BLOCK_ELEMS`` (neuron, sample) pairs, at most
    ``_TILE_SAMPLES`` samples wide, the neurons split into blocks of equal size
    (±1), so that the tiles are alike and a power-of-two number of threads
    finishes together; one tile elsewhere.  Measured on the benchmark problem
    (2 cores): (512, 128) tiles beat (64, 512) and (128, 256) ones by 5-10%
    (faster small matmuls, fewer calls per element), and splitting the last
    tiles in quarters to even out the threads' finish cost 7% (the quarter
    tiles pay the per-call overhead four times).  The partition depends on
    (m, n) only, never on the number of threads.
    """
    if not _is_np(xp):
        return [(0, m, 0, n)]
    chunks = max(1, -(-n // _TILE_SAMPLES))
    nc = -(-n // chunks)
    nb = -(-m // max(1, min(m, _BLOCK_ELEMS // nc)))  # neuron blocks
    cuts = [m * k // nb for k in range(nb + 1)]
    return [(cuts[k], cuts[k + 1], j, min(j + nc, n))
            for j in range(0, n, nc) for k in range(nb)]


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
    executor) passes one ``Workspace`` so the ``m·n·T`` floats of the tape
    (``2·m·n·T`` where σ' is kept too) are allocated (and page-faulted) once
    instead of on every call.  Holds that
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
        self.cell = cell = symbolic.cell_functions()
        n, T, d = X.shape
        self.n, self.T, self.d = n, T, d
        # the tape keeps σ(z_t); σ'(z_t) too only where it is not a polynomial in σ
        self.keep_s1 = not getattr(act, "D1_OF_D0", False)
        # σ(z) = F(k·z) (symbolic.activations.scaled_form): where the tape needs
        # σ only, the NumPy forward pass forms y = k·z from k·w and k·u (exact:
        # k is ± a power of two) and evaluates F, two elementwise passes fewer
        zs = getattr(act, "Z_SCALE", None)
        self.z_scale = zs if zs is not None and not self.keep_s1 else None
        self.dz_ds = cell.dz_ds(ns=xp)  # ∂z/∂s: the constant 1 (derived)
        # X as (T, d, n) for S = U Xᵀ per step (NumPy: also for the gU matmuls),
        # and as (T, n, d) for the gU matmuls elsewhere
        if _is_np(xp):
            self.XT = np.ascontiguousarray(np.transpose(X, (1, 2, 0)))
            self._XTc: dict = {}
            fns = [cell.z_into, cell.adj_z_into, act.d0_into_noclamp, act.d01_into_noclamp]
            if self.z_scale is not None:
                fns.append(act.d0_into_scaled)
            if not self.keep_s1:
                fns.append(act.d1_of_d0_into)
            self.ntmp = max(f.ntmp for f in fns)
        else:
            self.XT = xp.permute_dims(X, (1, 2, 0))
            self.Xt = xp.permute_dims(X, (1, 0, 2))

    def XT_chunk(self, j0: int, j1: int):
        """(T, d, j1 − j0) contiguous: the samples j0..j1 of ``XT`` (NumPy)."""
        if j0 == 0 and j1 == self.n:
            return self.XT
        key = (j0, j1)
        a = self._XTc.get(key)
        if a is None:
            a = self._XTc.setdefault(key, np.ascontiguousarray(self.XT[:, :, j0:j1]))
        return a


def _sigma1(ctx: _Ctx, tape, t: int):
    """σ'(z_t) for the block: from the tape, or from σ(z_t) by the derived polynomial."""
    hs, s1s = tape
    if s1s is not None:
        return s1s[t]
    return ctx.act.d1_of_d0_array(hs[t], ns=ctx.xp)


def _np_tapes(ctx: _Ctx, blocks, ws: Workspace | None):
    """Per-tile tape views ``(H, S1)``, each (T, b, nc), carved from one buffer per kind.

    One allocation (or one :class:`Workspace` buffer) of ``m·n·T`` floats gets
    huge pages and far fewer page faults than one array per tile or step.
    ``S1`` is None where σ' is recomputed from σ (tanh, logistic).
    """
    T = ctx.T
    sizes = [T * (i1 - i0) * (j1 - j0) for i0, i1, j0, j1 in blocks]
    total = sum(sizes)
    kinds = ("h", "s1") if ctx.keep_s1 else ("h",)
    bufs = [np.empty(total) if ws is None else ws.get(k, (total,)) for k in kinds]
    views, off = [], 0
    for (i0, i1, j0, j1), size in zip(blocks, sizes, strict=True):
        v = [b[off:off + size].reshape(T, i1 - i0, j1 - j0) for b in bufs]
        views.append((v[0], v[1] if ctx.keep_s1 else None))
        off += size
    return views


def _scratch(b: int, nc: int, k: int):
    return [np.empty((b, nc)) for _ in range(k)]


def _forward_block_np(ctx: _Ctx, w, U, c, j0: int, j1: int, tape=None):
    """NumPy forward pass of one tile (samples j0..j1), in place: returns ``F`` (T, nc).

    Every elementwise pass is one ufunc call into a preallocated buffer (the
    generated ``*_into`` functions: ``z = w h + s``, then σ (and σ' where the
    tape keeps it), written straight into the tape ``(H, S1)`` when given).
    """
    act, cell = ctx.act, ctx.cell
    b, nc, T = w.shape[0], j1 - j0, ctx.T
    XT = ctx.XT_chunk(j0, j1)
    k = ctx.z_scale  # set only where the tape keeps no σ'
    if k is not None and _scalable(k, w, U):
        # y_t = k·z_t bit for bit: the derived z = w h + s is linear in (w, s)
        # (tested), and scaling by k = ±2^j, j ≥ 0, commutes with every rounding
        w, U = w * k, U * k
    else:
        k = None
    W = np.empty((b, nc))
    W[...] = w[:, None]  # w broadcast once: contiguous products afterwards
    S, Z = _scratch(b, nc, 2)
    tmp = _scratch(b, nc, ctx.ntmp)
    F = np.empty((T, nc))
    if tape is None:
        H, S1 = _scratch(b, nc, 2), None  # two states, alternating
    else:
        H, S1 = tape
    # σ without the clamp of tanh's argument: the same numbers bit for bit, one
    # pass fewer; its only floating-point events, underflow of exp(−2|z|) for
    # |z| > 354 and overflow of −2|z| for |z| > 2¹⁰²³, change nothing
    sig0, sig01 = act.d0_into_noclamp, act.d01_into_noclamp
    h = None
    for t in range(T):
        _matmul_rows(U, XT[t], S)  # s_t = ⟨u_i, x_t⟩
        if h is None:
            z = S  # h_{-1} = 0
        else:
            cell.z_into(W, h, S, out=(Z,), tmp=tmp, ns=np)
            z = Z
        dst = H[t % 2] if tape is None else H[t]
        with np.errstate(under="ignore", over="ignore"):
            if k is not None:  # σ(z) = F(y), y = k·z; exp(y) may overflow to inf
                act.d0_into_scaled(z, out=(dst,), tmp=tmp, ns=np)
            elif S1 is None:
                sig0(z, out=(dst,), tmp=tmp, ns=np)
            else:
                sig01(z, out=(dst, S1[t]), tmp=tmp, ns=np)
        np.matmul(c, dst, out=F[t])
        h = dst
    return F


    k = ctx.z_scale  # set only where the tape keeps no σ'
    if k is not None and _scalable(k, w, U):
        # y_t = k·z_t bit for bit: the derived z = w h + s is linear in (w, s)
        # (tested), and scaling by k = ±2^j, j ≥ 0, commutes with every rounding
        w, U = w * k, U * k
    else:
        k = None
def _scalable(k: float, w, U) -> bool:
    """k·w and k·U stay finite (and s = k·U x short of overflow) with a wide margin."""
    lim = 2.0**1000 / abs(k)
    return bool(np.all(np.abs(w) < lim)) and bool(np.all(np.abs(U) < lim))


def _backward_block_np(ctx: _Ctx, w, j0: int, j1: int, tape, cot, t_first: int):
    """NumPy reverse mode of one tile, in place; same steps as :func:`_backward_block`.

    Returns the tile's sums ``(Σ p·dz_dw, Σ (p·dz_ds) @ x)``, not yet times c.
    """
    act, cell = ctx.act, ctx.cell
    H, S1 = tape
    b, nc, T, d = w.shape[0], j1 - j0, ctx.T, ctx.d
    W = np.empty((b, nc))
    W[...] = w[:, None]
    P = _scratch(b, nc, 2)  # p_t and p_{t+1}, alternating
    s1buf = _scratch(b, nc, 1)[0] if S1 is None else None
    tmp = _scratch(b, nc, ctx.ntmp)
    XT = ctx.XT_chunk(j0, j1)  # (T, d, nc)
    GW, GUT = np.zeros((T, b, 1, 1)), np.empty((T, d, b))  # per-step terms, summed once
    Pr = [q[:, None, :] for q in P]  # (b, 1, nc) views for the row dot products
    H4 = H[:, :, :, None]  # (T, b, nc, 1)
    cotc = cot[:, j0:j1]
    ds_one = _is_one(ctx.dz_ds)
    pnext = 0.0
    for t in range(T - 1, -1, -1):
        if S1 is None:
            act.d1_of_d0_into(H[t], out=(s1buf,), tmp=tmp, ns=np)
            s1 = s1buf
        else:
            s1 = S1[t]
        p = P[t % 2]
        cell.adj_z_into(s1, W, pnext, cotc[t:t + 1] if t >= t_first else 0.0, out=(p,),
                        tmp=tmp, ns=np)
        # (Σ_j p·dz_ds ⊗ x_t)ᵀ = x_tᵀ-rows @ pᵀ: BLAS is faster with the d-row output
        _matmul_rows(XT[t], (p if ds_one else p * ctx.dz_ds).T, GUT[t])
        if t > 0:  # Σ_j p_t · dz_dw(h_{t-1}), one row dot product per neuron
            np.matmul(Pr[t % 2], cell.dz_dw(H4[t - 1], ns=np), out=GW[t])
        pnext = p
    return GW.sum(axis=0)[:, 0, 0], GUT.sum(axis=0).T


#: largest m·n·k of one matmul call inside the thread pool: OpenBLAS runs
#: products below 2·2^18 on the calling thread; above, it wakes its own
#: threads, which then spin against the pool's (measured: a 10x slowdown)
_MATMUL_MNK = 1 << 18


def _matmul_rows(A, B, out):
    """``out = A @ B`` in chunks (rows of A, else columns of B) small enough to
    stay on the calling thread."""
    r, k, c = A.shape[0], A.shape[1], B.shape[1]
    if r * k * c <= _MATMUL_MNK:
        np.matmul(A, B, out=out)
    elif r >= c:
        rows = max(1, _MATMUL_MNK // max(1, k * c))
        for i in range(0, r, rows):
            np.matmul(A[i:i + rows], B, out=out[i:i + rows])
    else:
        cols = max(1, _MATMUL_MNK // max(1, k * r))
        for i in range(0, c, cols):
            np.matmul(A, B[:, i:i + cols], out=out[:, i:i + cols])


def _is_one(v) -> bool:
    return isinstance(v, (int, float)) and v == 1


def _forward_block(ctx: _Ctx, w, U, c, keep: bool):
    """Run one block of neurons forward (any array-API namespace).

    Returns ``(F, tape)`` with ``F`` (T, n) the block's part of ``Σ_i c_i h_t^i``
    (``c`` already carries the m^{-1/2}) and, when ``keep``, ``tape`` =
    ``([h_t], [σ'(z_t)] or None)`` (each (block, n); σ' only where it is not
    a polynomial in σ, see :func:`_sigma1`).
    """
    xp, act, cell = ctx.xp, ctx.act, ctx.cell
    wc = w[:, None]
    S = xp.matmul(U, ctx.XT)  # (T, b, n): s_t = ⟨u_i, x_t⟩
    hs, F = [], []
    s1s = [] if keep and ctx.keep_s1 else None
    h = None
    for t in range(ctx.T):
        z = S[t, ...] if h is None else cell.z(wc, h, S[t, ...], ns=xp)
        if s1s is not None:
            h, s1 = act.d01_array(z, ns=xp)
            s1s.append(s1)
        else:
            h = act.d0_array(z, ns=xp)
        if keep:
            hs.append(h)
        F.append(xp.matmul(c, h))
    return xp.stack(F, axis=0), (hs, s1s)


def _backward_block(ctx: _Ctx, w, tape, cot, t_first: int):
    """Reverse mode for one block: ``cot`` (T, n) is ∂R̂/∂f_t; returns the sums
    (gw, gU) before the factor c (see below).

    Through the pre-activation, with the derived templates: the adjoint
    ``p_t = ∂R̂/∂z_t`` (divided by c_i, see below) is
    ``p_t = adj_z(σ'(z_t), w, p_{t+1}, cot_t)`` = σ'(z_t)·(cot_t + w·p_{t+1});
    then ``∂R̂/∂w += Σ_j p_t · dz_dw(h_{t-1})`` and
    ``∂R̂/∂u += (p_t · dz_ds) @ x_t``.  Steps before ``t_first`` have no direct
    loss term (``final-step``).  The seed of neuron i is ``c_i·cot`` and the
    recursion is linear in it, so it runs on ``cot`` alone and the caller
    multiplies the sums returned here by ``c_i`` once (one product per neuron
    instead of one per neuron·sample·step).
    """
    xp, cell = ctx.xp, ctx.cell
    hs, _ = tape
    wc = w[:, None]
    b = w.shape[0]
    gw = xp.zeros((b,), dtype=w.dtype, device=array_api_compat.device(w))
    gU = xp.zeros((b, ctx.d), dtype=w.dtype, device=array_api_compat.device(w))
    p = None
    for t in range(ctx.T - 1, -1, -1):
        s1 = _sigma1(ctx, tape, t)
        cot_t = cot[t, ...][None, :] if t >= t_first else 0.0
        p = cell.adj_z(s1, wc, 0.0 if p is None else p, cot_t, ns=xp)
        q = p if _is_one(ctx.dz_ds) else p * ctx.dz_ds
        gU += xp.matmul(q, ctx.Xt[t, ...])  # (b, d)
        if t > 0:
            gw += xp.vecdot(p, cell.dz_dw(hs[t - 1], ns=xp), axis=-1)
    return gw, gU


def _backward_all(ctx: _Ctx, w, cs, blocks, tapes, cot, t_first: int, threads):
    """Reverse mode over all tiles: ``(∂/∂w (m,), ∂/∂U (m, d))`` for the cotangent (T, n)."""
    xp = ctx.xp
    if not _is_np(xp):
        assert len(blocks) == 1
        gw, gU = _backward_block(ctx, w, tapes[0], cot, t_first)
        return gw * cs, gU * cs[:, None]

    def bwd(k):
        i0, i1, j0, j1 = blocks[k]
        return _backward_block_np(ctx, w[i0:i1], j0, j1, tapes[k], cot, t_first)

    parts = _map(xp, bwd, list(range(len(blocks))), threads)
    m = w.shape[0]
    gw, gU = np.zeros(m), np.zeros((m, ctx.d))
    for (i0, i1, _, _), (pw, pU) in zip(blocks, parts, strict=True):  # fixed order
        gw[i0:i1] += pw
        gU[i0:i1] += pU
    gw *= cs
    gU *= cs[:, None]
    return gw, gU


def _jvp_block(ctx: _Ctx, w, tape, vw, vU, j0: int, j1: int):
    """Forward mode for one tile with the derived ``jvp`` template: list of j_t (block, nc)."""
    xp, cell = ctx.xp, ctx.cell
    hs, _ = tape
    XT = ctx.XT_chunk(j0, j1) if _is_np(xp) else ctx.XT
    VX = xp.matmul(vU, XT)  # (T, b, nc): ⟨v_u, x_t⟩
    wc, vwc = w[:, None], vw[:, None]
    zero = xp.zeros_like(hs[0])
    js = []
    j = zero
    for t in range(ctx.T):
        hprev = hs[t - 1] if t > 0 else zero
        j = cell.jvp(_sigma1(ctx, tape, t), wc, hprev, vwc, VX[t, ...], j, ns=xp)
        js.append(j)
    return js


# --------------------------------------------------------------------------
# public API


def _forward_all(ctx: _Ctx, w, U, cs, blocks, keep: bool, threads, ws=None):
    """All tiles forward: ``(F (T, n), [tape per tile] or None)``."""
    xp = ctx.xp
    if not _is_np(xp):
        assert len(blocks) == 1
        F, tape = _forward_block(ctx, w, U, cs, keep)
        return F, ([tape] if keep else None)
    tapes = _np_tapes(ctx, blocks, ws) if keep else None

    def fwd(k):
        i0, i1, j0, j1 = blocks[k]
        return _forward_block_np(ctx, w[i0:i1], U[i0:i1, :], cs[i0:i1], j0, j1,
                                 tapes[k] if keep else None)

    parts = _map(xp, fwd, list(range(len(blocks))), threads)
    F = np.zeros((ctx.T, ctx.n))
    for (_, _, j0, j1), p in zip(blocks, parts, strict=True):  # fixed order
        F[:, j0:j1] += p
    return F, tapes


def forward(w, U, c, X, activation="tanh", *, threads=None):
    """Outputs ``f_t(X_j; Θ) = m^{-1/2} Σ_i c_i h_t^i`` as an (n, T) array (THEORY §1)."""
    xp = _namespace(w, U, c, X)
    m, d, n, T = _check_inputs(w, U, c, X)
    ctx = _Ctx(xp, _activation(activation), X)
    cs = c / math.sqrt(m)
    F, _ = _forward_all(ctx, w, U, cs, _blocks(xp, m, n), False, threads)
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


@dataclass(frozen=True, eq=False)
class Risk:
    """What R̂(Θ) depends on besides Θ = (w, U): the outer weights ``c`` (m,), the
    data ``X`` (n, T, d) and ``Y`` (n, T), the activation, the loss kind and (NumPy
    only; results do not depend on it) the thread-pool size ``threads``.

    The executor and the comparators hold one and hand it to :func:`_evaluate`.
    """

    c: object
    X: object
    Y: object
    activation: object = "tanh"
    loss: str = "all-steps"
    threads: int | None = None

    def value(self, w, U) -> float:
        """R̂(Θ) at Θ = (w, U) (the same as :func:`loss`)."""
        return _evaluate(w, U, self, grad=False)["R"]


def _evaluate(w, U, risk: Risk, *, grad=True, workspace=None):
    """R̂, residuals r (n, T) and (if ``grad``) the gradient; the executor's entry point."""
    c, X, Y, loss = risk.c, risk.X, risk.Y, risk.loss
    _check_loss(loss)
    xp = _namespace(w, U, c, X, Y)
    m, d, n, T = _check_inputs(w, U, c, X, Y)
    ctx = _Ctx(xp, _activation(risk.activation), X)
    cs = c / math.sqrt(m)
    blocks = _blocks(xp, m, n)

    ws = workspace if _is_np(xp) else None
    F, tapes = _forward_all(ctx, w, U, cs, blocks, grad, risk.threads, ws)
    r = F - xp.permute_dims(Y, (1, 0))  # (T, n)
    cot, t_first, R = _weights(xp, r, loss)
    res = {"R": R, "r": xp.permute_dims(r, (1, 0)), "gw": None, "gU": None}
    if not grad:
        return res

    res["gw"], res["gU"] = _backward_all(ctx, w, cs, blocks, tapes, cot, t_first, risk.threads)
    return res


def loss(w, U, c, X, Y, activation="tanh", loss="all-steps", *, threads=None) -> float:
    """R̂(Θ) = (1/(nT)) Σ_{j,t} ½ r_{jt}² (``final-step``: t = T−1 only, mean over n)."""
    return _evaluate(w, U, Risk(c, X, Y, activation, loss, threads), grad=False)["R"]


def loss_and_grad(w, U, c, X, Y, activation="tanh", loss="all-steps", *, threads=None,
                  workspace: Workspace | None = None):
    """``(R̂, ∂R̂/∂w (m,), ∂R̂/∂U (m, d))``: the exact gradient by reverse mode (BPTT).

    ``R̂`` is a Python float; the gradients are arrays of the inputs' namespace.
    Memory is ``O(m·n·T + m·d + n·T·d)``: the tape keeps ``h_t`` (and
    ``σ'(z_t)`` where σ' is not a polynomial in σ); no ``m·n·T·d`` tensor is
    formed.  ``threads`` (NumPy only) sets the
    thread-pool size (default: the CPUs this process may use); results do not
    depend on it.  ``workspace`` (a :class:`Workspace`, NumPy only) keeps the
    tape's memory between calls of the same shape.
    """
    res = _evaluate(w, U, Risk(c, X, Y, activation, loss, threads), grad=True,
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
    ``m·n·T`` floats (``2·m·n·T`` where σ' is not a polynomial in σ).  Used by
    the comparator (Gauss–Newton power iteration and the linearized
    least-squares problem).
    """

    xp: object
    w: object
    c_scaled: object
    f0: object
    _ctx: _Ctx
    _blocks: list
    _tapes: list
    _threads: int | None

    def _jvps(self, vw, vU):
        """Per tile: the list of j_t (b, nc), in tile order."""

        def run(k):
            i0, i1, j0, j1 = self._blocks[k]
            return _jvp_block(self._ctx, self.w[i0:i1], self._tapes[k], vw[i0:i1],
                              vU[i0:i1, :], j0, j1)

        return _map(self.xp, run, list(range(len(self._blocks))), self._threads)

    def jvp_neurons(self, vw, vU):
        """Per-neuron directional derivatives ⟨g_t^i, v_i⟩ as (m, n, T)."""
        xp = self.xp
        parts = self._jvps(vw, vU)
        if len(parts) == 1:
            return xp.stack(parts[0], axis=-1)
        out = np.empty((self.w.shape[0], self._ctx.n, self._ctx.T))
        for (i0, i1, j0, j1), js in zip(self._blocks, parts, strict=True):
            out[i0:i1, j0:j1, :] = np.stack(js, axis=-1)
        return out

    def jvp(self, vw, vU):
        """``J v`` = Σ_i (c_i/√m) ⟨g_t^i, v_i⟩ as (n, T)."""
        xp = self.xp
        parts = self._jvps(vw, vU)
        if len(parts) == 1:
            return xp.stack([xp.matmul(self.c_scaled, j) for j in parts[0]], axis=-1)
        out = np.zeros((self._ctx.n, self._ctx.T))
        for (i0, i1, j0, j1), js in zip(self._blocks, parts, strict=True):  # fixed order
            cb = self.c_scaled[i0:i1]
            out[j0:j1, :] += np.stack([cb @ j for j in js], axis=-1)
        return out

    def vjp(self, cot):
        """``Jᵀ cot`` as (gw (m,), gU (m, d)) for ``cot`` of shape (n, T)."""
        cotT = self.xp.permute_dims(cot, (1, 0))
        return _backward_all(self._ctx, self.w, self.c_scaled, self._blocks, self._tapes, cotT,
                             0, self._threads)


def linearize(w, U, c, X, activation="tanh", *, threads=None) -> Linearization:
    """Run the model forward at Θ = (w, U) and keep the tape (see :class:`Linearization`)."""
    xp = _namespace(w, U, c, X)
    m, d, n, T = _check_inputs(w, U, c, X)
    ctx = _Ctx(xp, _activation(activation), X)
    cs = c / math.sqrt(m)
    blocks = _blocks(xp, m, n)
    F, tapes = _forward_all(ctx, w, U, cs, blocks, True, threads)
    return Linearization(xp, w, cs, xp.permute_dims(F, (1, 0)), ctx, blocks, tapes, threads)


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
    risk = Risk(c, X, Y, activation, loss)
    r = _evaluate(w, U, risk, grad=False)["r"]
    # magnitude of the terms R̂ is summed from: the rounding floor of R̂ (hence of fd)
    atol = 64 * 2.0 ** -53 * (abs(R) + _summand_scale(xp, r, Y, loss)) / eps
    probe = _GradProbe(xp, w, U, gw, gU, risk, r, lin, eps, rtol, atol)
    rng = np.random.default_rng(seed)
    rows, bad = [], []
    for k in range(directions):
        row, ok = probe.compare(k, *_unit_direction(xp, rng, w, U))
        rows.append(row)
        if not ok:
            bad.append(row)
    if bad:
        head = (f"check_grads failed in {len(bad)} of {directions} directions "
                f"(activation={activation!r}, loss={loss!r}, eps={eps:g}, rtol={rtol:g}, "
                f"R̂={R:.17g}, namespace={getattr(xp, '__name__', xp)})")
        arrays = {"w": w, "U": U, "c": c, "X": X, "Y": Y, "grad w": gw, "grad U": gU}
        raise AssertionError(_failure_text(head, arrays, bad))
    return {"R": R, "directions": rows}


def _summand_scale(xp, r, Y, loss) -> float:
    """R̂'s formula applied to ``|f| + |y|`` (f = r + Y): the size of R̂'s summands."""
    n, T = Y.shape
    fy = xp.abs(r + Y) + xp.abs(Y)
    if loss == "all-steps":
        return float(xp.sum(fy * fy)) / (2.0 * n * T)
    return float(xp.sum(fy[:, T - 1] ** 2)) / (2.0 * n)


def _unit_direction(xp, rng, w, U):
    """A random unit direction ``(vw, vU)`` (drawn on the host, NumPy ``rng``)."""
    m, d = U.shape
    vw_np = rng.standard_normal(m)
    vU_np = rng.standard_normal((m, d))
    nrm = math.sqrt(float(np.sum(vw_np ** 2) + np.sum(vU_np ** 2)))
    dev = array_api_compat.device(w)
    return (xp.asarray(vw_np / nrm, dtype=w.dtype, device=dev),
            xp.asarray(vU_np / nrm, dtype=U.dtype, device=dev))


@dataclass(frozen=True, eq=False)
class _GradProbe:
    """:func:`check_grads`' fixed inputs: Θ, the reverse-mode gradient, the residuals
    ``r`` (n, T) at Θ, the linearization (None: no forward-mode check), tolerances."""

    xp: object
    w: object
    U: object
    gw: object
    gU: object
    risk: Risk
    r: object
    lin: Linearization | None
    eps: float
    rtol: float
    atol: float

    def compare(self, k, vw, vU) -> tuple[dict, bool]:
        """The row of direction ``k`` and whether it is accepted (see :func:`check_grads`)."""
        xp, eps, rtol = self.xp, self.eps, self.rtol
        an = float(xp.sum(self.gw * vw) + xp.sum(self.gU * vU))
        Rp = _evaluate(self.w + eps * vw, self.U + eps * vU, self.risk, grad=False)["R"]
        Rm = _evaluate(self.w - eps * vw, self.U - eps * vU, self.risk, grad=False)["R"]
        fd = (Rp - Rm) / (2 * eps)
        ok = abs(fd - an) <= rtol * (abs(fd) + abs(an)) + self.atol
        row = {"direction": k, "analytic": an, "finite_difference": fd, "atol": self.atol}
        if self.lin is not None:
            row["forward_mode"], fm_ok = self._forward_mode(vw, vU, an)
            ok = ok and fm_ok
        return row, ok

    def _forward_mode(self, vw, vU, an) -> tuple[float, bool]:
        """``Σ_{jt} r_{jt}·(Jv)_{jt}`` weighted as in R̂, and whether it agrees with ``an``."""
        xp, r = self.xp, self.r
        n, T = r.shape
        Jv = self.lin.jvp(vw, vU)
        if self.risk.loss == "all-steps":
            fm = float(xp.sum(r * Jv)) / (n * T)
        else:
            fm = float(xp.sum(r[:, T - 1] * Jv[:, T - 1])) / n
        scale = abs(an) + abs(fm) + float(xp.sum(xp.abs(r) * xp.abs(Jv))) / (n * T)
        return fm, abs(fm - an) <= max(self.rtol, 1e-10) * scale + 1e-300


def _failure_text(head: str, arrays: dict, bad: list[dict]) -> str:
    """check_grads' error: ``head``, a summary of every input, each failed direction."""
    lines = [head] + ["  " + _summary(name, a) for name, a in arrays.items()]
    for row in bad:
        lines.append("  failed: " + ", ".join(f"{k}={v:.17g}" if isinstance(v, float)
                                              else f"{k}={v}" for k, v in row.items()))
    return "\n".join(lines)
