"""Certified data-specific constants on Ω_ρ (THEORY §5, last paragraph).

For every step t this module certifies

    U^L_t ≥ sup_{Θ∈Ω_ρ} max_{i,j} ‖g_t(X_j; θ_i)‖₂,
    U^β_t ≥ sup_{Θ∈Ω_ρ} max_{i,j} ‖H_t(X_j; θ_i)‖₂,

and reports next to them a best lower bound (a point of Ω_ρ) and the closed
forms L_t, β_t; the certificate checks ``closed form ≥ certified ≥ lower``.

Structure used
--------------
* Neurons are independent and Ω_ρ is a product: the sup is a max over
  *distinct* neurons (bit-identical θ_i(0); the symmetric initialization
  makes only m/2 distinct) and samples of a sup over one neuron's set
  ``[w0 ± ρ_w/√m] × B(u0, ρ_u/√m)``.
* Each set is covered by boxes (start: the bounding box; a box is contracted
  to the bounding box of its intersection with the ball, and dropped when it
  misses the ball — every step rigorous), refined by bisection of the
  coordinate with the largest width × |∂H| (``split="smear"``, the default; the
  weights come from the box's own ∂H) or of the widest one (``"widest"``).

Pipeline
--------
1. **Lower bounds** (*observed* points, then confirmed): random points of Ω_ρ
   (boundary included) and projected gradient ascent (central differences) on
   ‖g_t‖ and ‖H_t‖₂ from the best ones.  The best point of each criterion is
   re-evaluated by the trusted engine, which certifies its membership in Ω_ρ
   and a lower bound of its value; these certified values are the pruning
   thresholds ``thr`` (and the reported lower bounds).
2. **Screening branch and bound** (:mod:`certify.trusted.screen`: NumPy intervals with
   outward rounding and an mpmath.iv-certified activation table; rigorous, so
   it may prune).  Every box gets full first-order AD (∂H over the box) by
   default; with ``anchor_levels`` = k > 1 only the nodes at depths 0, k, 2k, …
   (*anchors*) do, the others the cheap mean value form from their anchor's ∂H —
   exactly what the trusted stage will compute.  The cheap form costs less per
   box, but it is looser, so the refinement needs more boxes: at a given budget
   k = 1 was as fast or faster and as tight or tighter on every case measured
   (past the cutoff by far: tanh q ≈ 1.2, worst β certified/lower 2.06 → 1.09).
   Stage 1 bisects, where the bound is attained (boxes in the top half of
   their neuron's excess), the boxes whose bound exceeds the target
   ``min((1 + rel_tol)·thr, closed form)``; a neuron stops when two sweeps of
   p rounds improved its bound by less than ``rel_tol/2``, or when its
   ``box_budget`` (boxes per neuron set) is spent.  A box lies in each of its
   ancestors, so its bound for choosing, pruning and covering is the least of
   its own and theirs (``Ue``; ``inherit``): the cheap form of a small box far
   past the cutoff can be much looser than its parent's full form, and without
   this the refinement chased those boxes and stalled (``BoundsSettings.split``
   and ``selection`` name the other rules, for comparison).  Stage 2 bisects boxes that are
   still above ``thr`` although their centre value is below it, down to 1/8 of
   the root width, so that they get pruned.  A box whose screened bound is
   below ``thr`` for a criterion is pruned for it (and so are its children):
   sound, because the box holding the certified lower point is never pruned
   and the trusted bound of that box is ≥ thr.
3. **Cover**: per criterion, the cheapest full cover of the surviving boxes
   (a node whose bound meets the target, or the cover of its children), by
   dynamic programming on the tree.
4. **Trusted evaluation** (:mod:`certify.trusted.engine`: mpmath.iv by default, or
   Arb balls with ``engine="python-flint"``, :mod:`certify.trusted.engine_flint`) of the
   cover from the top: per criterion the 1, 2, 4, … boxes with the largest screened
   bounds, until every box left has a screened bound ≤ the trusted max found for
   that criterion — those are pruned by the screen, as in stage 2, and the
   certificate counts them (``boxes.cover_below_trusted_max``).  An evaluated box
   shares its anchor's work with the others of the round: an anchor with at
   least two evaluated boxes below it gets one full AD trajectory, the boxes
   below it the cheap form from its ∂H (re-done with their own ∂H if that bound
   misses the target); the others their own full AD trajectory.  The certified
   U_t is the max of these trusted bounds (which bounds the whole cover): every
   reported number comes from the trusted engine (exact dyadic upper bounds, held
   as mpmath ``mpf``).

Neuron sets are spread over ``jobs`` processes (screening per chunk of
neurons, trusted evaluation per anchor); results do not depend on ``jobs``
(except where a ``time_limit_s`` is reached: then they depend on the speed).

Memory: ``memory_cap_mb`` (all processes together) caps what the screening holds
at once.  Chunks are one per process while they fit (:func:`_chunks`); else more,
and a neuron set whose samples alone do not fit is split by samples (its box
budget in proportion).  Screening calls are cut into row batches of a quarter of
the cap, ∂H is kept only for anchors not pruned for every criterion and only
where a descendant's cheap form reads it (``anchor_levels`` > 1; the smear rule
keeps only its (T, p) weights), and a split whose new anchors would pass three
quarters of the cap is not made
(:meth:`_Tree.room_for`): the cover is then evaluated as it stands, which is
sound, and the certificate's ``tightness.stopped_by`` says so.  The random
lower-bound points per (neuron, sample) shrink past 2^17 points in all
(:meth:`.settings.BoundsSettings.samples_for`).

The settings (``rel_tol``, ``box_budget``, ``jobs``, ``engine``, ``seed``,
``lower_samples``) travel as one :class:`.settings.BoundsSettings`, Ω_ρ's width
and radii as one :class:`.settings.Ball`.  Code layout: one section per
stage, then the driver :func:`certify_data_constants` with one small function
per step; screening one chunk of neurons is a :class:`_Tree`, the trusted
evaluation of one task a :class:`_TaskEval`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from mpmath import iv, mpf

from ..trusted.intervals import float_down, float_up, hi, interval_strings, lo, upper_string
from .settings import DEFAULT_BOX_BUDGET, DEFAULT_REL_TOL, DEFAULT_SETTINGS, Ball, BoundsSettings

__all__ = ["Ball", "BoundsSettings", "DataConstants", "certify_data_constants",
           "DEFAULT_REL_TOL", "DEFAULT_BOX_BUDGET"]
#: a neuron set stalls when STALL_SWEEPS sweeps of p bisection rounds improved its bound
#: by less than rel_tol/2
STALL_SWEEPS = 2
#: an ancestor's ∂H is computed only when at least this many cover boxes share it
MIN_SHARED = 2
#: stage 2: a box whose centre value is below (1 − PRUNE_MARGIN·rel_tol)·thr is refined
PRUNE_MARGIN = 0.05
#: stage 2 refines down to this fraction of the root box width
PRUNE_WIDTH = 1 / 8
#: trusted stage: how often the maximising boxes bounded by the cheap form are re-done
#: with their own ∂H
REDO_ROUNDS = 4


# --------------------------------------------------------------------------
# result


@dataclass(frozen=True)
class DataConstants:
    """Certified data-specific constants for t = 0..steps−1.

    ``certified_L[t]``, ``certified_beta[t]``: mpmath.iv intervals ``[lo, hi]``
    enclosing the sup over Ω_ρ (lo: the certified value at the best lower
    point, hi: the certified upper bound).  ``lower_*``: floats (*observed*
    label; each is a certified lower bound at a point of Ω_ρ, rounded down).
    ``closed_*``: the closed forms L_t, β_t (iv intervals).  ``argmax_*[t]``:
    (neuron, sample) of the cover box attaining the certified bound;
    ``lower_points_*[t]``: (neuron, sample, θ) of the lower bound.
    """

    activation: str
    engine: str
    screen_engine: str
    norm_method: dict
    steps: int
    certified_L: tuple
    certified_beta: tuple
    lower_L: tuple
    lower_beta: tuple
    closed_L: tuple
    closed_beta: tuple
    argmax_L: tuple
    argmax_beta: tuple
    lower_points_L: tuple
    lower_points_beta: tuple
    screen_L: tuple
    screen_beta: tuple
    boxes: dict
    timings: dict
    settings: dict
    budget_exhausted: bool = False
    notes: tuple = field(default_factory=tuple)
    tightness: dict = field(default_factory=dict)

    @property
    def t(self) -> list[int]:
        return list(range(self.steps))

    def upper(self, kind: str) -> list[float]:
        """Certified upper bounds as floats rounded up (kind 'L' or 'beta')."""
        vals = self.certified_L if kind == "L" else self.certified_beta
        return [float(upper_string(v)) for v in vals]

    def ratios(self, kind: str) -> dict:
        """certified/lower and certified/closed-form per t (floats, observed)."""
        cert = self.upper(kind)
        low = self.lower_L if kind == "L" else self.lower_beta
        closed = self.closed_L if kind == "L" else self.closed_beta
        return {"certified/lower": [c / lw if lw > 0 else math.inf
                                    for c, lw in zip(cert, low, strict=True)],
                "certified/closed": [c / float(hi(cf))
                                     for c, cf in zip(cert, closed, strict=True)]}

    def checks(self) -> list[str]:
        """Failure reasons (empty when closed form ≥ certified ≥ lower for every t)."""
        out = []
        for kind, cert, closed, low, arg in (
                ("L", self.certified_L, self.closed_L, self.lower_L, self.argmax_L),
                ("beta", self.certified_beta, self.closed_beta, self.lower_beta,
                 self.argmax_beta)):
            for t in range(self.steps):
                c = cert[t]
                nrn, smp = arg[t]
                where = f"(neuron {nrn}, sample {smp})"
                if not _finite(hi(c)):
                    out.append(f"t={t}: certified {kind} is not finite {where}")
                    continue
                if hi(c) > hi(closed[t]):
                    out.append(f"t={t}: certified {kind} {upper_string(c, 8)} > closed form "
                               f"{upper_string(closed[t], 8)} {where}")
                if float(hi(c)) < low[t]:
                    out.append(f"t={t}: certified {kind} {upper_string(c, 8)} < lower bound "
                               f"{low[t]!r} {where}")
        return out

    def to_json(self) -> dict:
        """Plain-JSON view (intervals as outward decimal strings)."""
        def ivs(xs):
            return [interval_strings(x) for x in xs]

        def pts(xs):
            return [{"neuron": int(a), "sample": int(b), "theta": [float(v) for v in th]}
                    for a, b, th in xs]

        return {
            "engine": self.engine,
            "screen_engine": self.screen_engine,
            "norm_method": dict(self.norm_method),
            "t": self.t,
            "certified": {"L": ivs(self.certified_L), "beta": ivs(self.certified_beta)},
            "lower": {"L": [float(x) for x in self.lower_L],
                      "beta": [float(x) for x in self.lower_beta],
                      "label": "observed (each certified at a point of the ball)",
                      "points": {"L": pts(self.lower_points_L),
                                 "beta": pts(self.lower_points_beta)}},
            "closed_form": {"L": ivs(self.closed_L), "beta": ivs(self.closed_beta)},
            "argmax": {"L": [list(map(int, a)) for a in self.argmax_L],
                       "beta": [list(map(int, a)) for a in self.argmax_beta]},
            "ratios": {k: {name: [v if math.isfinite(v) else None for v in vals]
                           for name, vals in self.ratios(k).items()} for k in ("L", "beta")},
            "boxes": dict(self.boxes),
            "timings": dict(self.timings),
            "settings": dict(self.settings),
            "budget_exhausted": bool(self.budget_exhausted),
            "notes": list(self.notes),
            "tightness": dict(self.tightness),
            "checks": self.checks(),
        }


def _finite(x) -> bool:
    from mpmath import isinf, isnan

    return not (isnan(x) or isinf(x))


# --------------------------------------------------------------------------
# small exact helpers


def _to_iv(x):
    """Exact enclosure of a number (DecimalValue with .text, str, Fraction, int, float, iv)."""
    from ..trusted.activation_constants import to_interval

    text = getattr(x, "text", None)
    if text is not None:
        return iv.mpf(str(text))
    return to_interval(x)


_f_up = float_up  # certified upper bound as a float (see certify.trusted.intervals)
_f_dn = float_down  # certified lower bound as a float


def _mpf_pack(x: mpf):
    """Exact picklable form of an mpf."""
    return tuple(x._mpf_)


def _mpf_unpack(t):
    return mpf(tuple(t))


def _progress(progress, stage: str, done: int = 0, total: int = 0) -> None:
    if progress is None:
        return
    if callable(progress) and not hasattr(progress, "set_stage"):
        progress(stage, done, total)
        return
    if hasattr(progress, "set_stage") and done == 0:
        progress.set_stage(f"constants: {stage}")
    if hasattr(progress, "boxes") and total:
        progress.boxes(done, total)


# --------------------------------------------------------------------------
# shared context (set once per process; inherited by forked workers)

_CTX: dict = {}


def _set_ctx(ctx: dict) -> None:
    _CTX.clear()
    _CTX.update(ctx)


def _table():
    from ..trusted.screen import activation_table

    if "table" not in _CTX:
        _CTX["table"] = activation_table(_CTX["act"])
    return _CTX["table"]


def _engine():
    from ..trusted.engines import get_engine

    return get_engine(_CTX["engine"], _CTX["act"])


# --------------------------------------------------------------------------
# rigorous box geometry (numpy, outward rounding)


def _contract(blo, bhi, u0, ru_hi):
    """Contract the u-part of boxes to the bounding box of box ∩ ball(u0, ru).

    Returns (blo, bhi, ok); ``ok`` is False for boxes that certainly miss the
    ball.  Every rounding is directed so that box ∩ ball is never cut.
    """
    from ..trusted.screen import _dn, _up

    a = blo[:, 1:]
    b = bhi[:, 1:]
    dist = np.maximum(0.0, np.maximum(_dn(a - u0), _dn(u0 - b)))  # ≤ exact distance
    dist = np.maximum(dist, 0.0)
    sq = np.maximum(_dn(dist * dist), 0.0)
    d = a.shape[1]
    tot = np.zeros(len(a))
    for k in range(d):
        tot = np.maximum(_dn(tot + sq[:, k]), 0.0)
    r2 = _up(np.float64(ru_hi) * np.float64(ru_hi))
    ok = tot <= r2
    new_a = a.copy()
    new_b = b.copy()
    for k in range(d):
        others = np.zeros(len(a))
        for j in range(d):
            if j != k:
                others = np.maximum(_dn(others + sq[:, j]), 0.0)
        rem = np.maximum(_up(r2 - others), 0.0)
        R = _up(np.sqrt(rem))
        new_a[:, k] = np.maximum(a[:, k], _dn(u0[:, k] - R))
        new_b[:, k] = np.minimum(b[:, k], _up(u0[:, k] + R))
    ok &= np.all(new_a <= new_b, axis=1)
    blo = blo.copy()
    bhi = bhi.copy()
    blo[:, 1:] = new_a
    bhi[:, 1:] = new_b
    return blo, bhi, ok


def _root_boxes(W0, U0g, rw_hi, ru_hi):
    from ..trusted.screen import _dn, _up

    c = np.concatenate([W0[:, None], U0g], axis=1)
    blo = c.copy()
    bhi = c.copy()
    blo[:, 0] = _dn(W0 - rw_hi)
    bhi[:, 0] = _up(W0 + rw_hi)
    blo[:, 1:] = _dn(U0g - ru_hi)
    bhi[:, 1:] = _up(U0g + ru_hi)
    return blo, bhi


def _split(blo, bhi, weights=None):
    """Bisect each box at the midpoint of its widest coordinate, or of the coordinate
    with the largest width × ``weights`` (N, p) where given (exact union either way)."""
    wd = bhi - blo
    score = wd if weights is None else np.where(np.isfinite(weights), wd * weights, np.inf)
    k = np.argmax(score, axis=1)
    ar = np.arange(len(k))
    mid = 0.5 * blo[ar, k] + 0.5 * bhi[ar, k]
    mid = np.minimum(np.maximum(mid, blo[ar, k]), bhi[ar, k])
    l1, h1 = blo.copy(), bhi.copy()
    h1[ar, k] = mid
    l2, h2 = blo.copy(), bhi.copy()
    l2[ar, k] = mid
    return np.concatenate([l1, l2]), np.concatenate([h1, h2])


# --------------------------------------------------------------------------
# 1. lower bounds


def _inside(th, c, rw, ru, shrink=1 - 2.0**-30):
    """Project points onto the set (slightly inside: w clipped, u shrunk radially)."""
    w = np.clip(th[:, 0], c[:, 0] - rw * shrink, c[:, 0] + rw * shrink)
    du = th[:, 1:] - c[:, 1:]
    nr = np.sqrt(np.sum(du * du, axis=1, keepdims=True))
    lim = ru * shrink
    du = np.where(nr > lim, du * (lim / np.maximum(nr, 1e-300)), du)
    return np.concatenate([w[:, None], c[:, 1:] + du], axis=1)


def _lower_phase(am, X, C0, radii, K, rng, starts=4, iters=30):
    """Observed best points per criterion: random sampling then projected ascent.

    C0: (G, p) centres of the distinct neurons' sets; radii: (rw, ru) of the
    sets (floats); K random points per (neuron, sample), then ``iters`` ascent
    steps from the best ``starts`` per criterion.  Returns (val (2, T),
    pair index (2, T), theta (2, T, p), the random search's best (2, G·n, T)).
    """
    G, p = C0.shape
    n, T, _d = X.shape
    J = np.tile(np.arange(n), G)
    c = C0[np.repeat(np.arange(G), n)]
    best, arg = _random_search(am, X, J, c, radii, K, rng)
    out_v = np.full((2, T), -np.inf)
    out_i = np.zeros((2, T), dtype=np.int64)
    out_th = np.zeros((2, T, p))
    for q in range(2):
        S_i, S_t, th = _ascent_starts(best[q], arg[q], starts)
        f = _objective(am, X, J[S_i], q, S_t)
        th, fv = _ascend(f, th, c[S_i], radii, iters)
        out_v[q], out_i[q], out_th[q] = _winners(best[q], arg[q], S_i, S_t, th, fv)
    return out_v, out_i, out_th, best


def _random_search(am, X, J, c, radii, K, rng):
    """Best value per (pair, criterion) over K points and the point: (2, N, T), (2, N, T, p)."""
    from ..trusted.screen import point_values

    N, p = c.shape
    T = X.shape[1]
    best = np.full((2, N, T), -np.inf)
    arg = np.zeros((2, N, T, p))
    for k in range(K):
        th = _random_points(k, c, radii, rng)
        vals = point_values(am, X, J, th)
        for q in range(2):
            v = np.nan_to_num(vals[q], nan=-np.inf)
            upd = v > best[q]
            best[q] = np.where(upd, v, best[q])
            arg[q] = np.where(upd[..., None], th[:, None, :], arg[q])
    return best, arg


def _random_points(k, c, radii, rng):
    """The k-th random point of each set (k = 0: the centre; odd k: on the sphere,
    k ≡ 1 mod 4 also at w's ends; even k: uniform in the ball)."""
    if k == 0:
        return c.copy()
    rw, ru = radii
    N, p = c.shape
    d = p - 1
    dw = rng.uniform(-rw, rw, N)
    if k % 4 == 1:
        dw = np.sign(dw) * rw
    du = rng.standard_normal((N, d))
    du /= np.maximum(np.linalg.norm(du, axis=1, keepdims=True), 1e-300)
    rad = ru * (np.ones((N, 1)) if k % 2 == 1 else rng.uniform(0, 1, (N, 1)) ** (1 / d))
    return _inside(c + np.concatenate([dw[:, None], du * rad], axis=1), c, rw, ru)


def _ascent_starts(best_q, arg_q, starts):
    """The best ``starts`` pairs per t: pair indices, their t and points."""
    S_i, S_t, S_th = [], [], []
    for t in range(best_q.shape[1]):
        idx = np.argsort(-best_q[:, t])[:starts]
        for i in idx:
            S_i.append(i)
            S_t.append(t)
            S_th.append(arg_q[i, t])
    return np.array(S_i), np.array(S_t), np.array(S_th)


def _objective(am, X, js, q, S_t):
    """θ ↦ criterion q at step S_t[k] for sample js[k] (NaN: −inf), one row per start."""
    from ..trusted.screen import point_values

    ar = np.arange(len(js))

    def f(th):
        return np.nan_to_num(point_values(am, X, js, th)[q][ar, S_t], nan=-np.inf)

    return f


def _ascend(f, th, cc, radii, iters):
    """Projected gradient ascent on f (central differences; adaptive steps) in the sets."""
    rw, ru = radii
    p = th.shape[1]
    fv = f(th)
    step = np.full(len(th), max(rw, ru) / 4)
    eps = 1e-6 * max(rw, ru, 1e-3)
    for _ in range(iters):
        grad = np.zeros_like(th)
        for a in range(p):
            e = np.zeros(p)
            e[a] = eps
            grad[:, a] = (f(th + e) - f(th - e)) / (2 * eps)
        gn = np.linalg.norm(grad, axis=1, keepdims=True)
        gn = np.where(np.isfinite(gn) & (gn > 0), gn, 1.0)
        new = _inside(th + step[:, None] * grad / gn, cc, rw, ru)
        fn = f(new)
        ok = fn > fv
        th = np.where(ok[:, None], new, th)
        fv = np.where(ok, fn, fv)
        step = np.where(ok, step * 1.5, step * 0.5)
    return th, fv


def _winners(best_q, arg_q, S_i, S_t, th, fv):
    """Per t: the random search's winner, or the ascent's where it is better."""
    T = best_q.shape[1]
    out_v = np.full(T, -np.inf)
    out_i = np.zeros(T, dtype=np.int64)
    out_th = np.zeros((T, arg_q.shape[2]))
    for t in range(T):
        i = int(np.argmax(best_q[:, t]))
        out_v[t], out_i[t], out_th[t] = best_q[i, t], i, arg_q[i, t]
        m = S_t == t
        if m.any():
            j = int(np.argmax(np.where(m, fv, -np.inf)))
            if fv[j] > out_v[t]:
                out_v[t], out_i[t], out_th[t] = fv[j], S_i[j], th[j]
    return out_v, out_i, out_th


def _confirm_points(points, X, W0, U0g, rw_iv, ru_iv, T):
    """Trusted lower bounds at the candidate points (membership certified).

    points: list of (pair index, theta).  Returns list of (lL[t], lB[t]) lists
    of mpf (−inf where the point could not be certified inside the set).
    """
    from ..trusted.screen import point_values

    eng = _engine()
    am = _CTX["am"]
    n = X.shape[0]
    out = []
    for pair, th in points:
        g, j = divmod(int(pair), n)
        th = np.asarray(th, dtype=np.float64)
        c = np.concatenate([[W0[g]], U0g[g]])
        ok = False
        for _ in range(8):
            if eng.membership(th.tolist(), W0[g], U0g[g].tolist(), rw_iv, ru_iv):
                ok = True
                break
            th = c + (th - c) * (1 - 2.0**-20)
        if not ok:
            out.append(None)
            continue
        _, _, _, HH = point_values(am, X, [j], th[None], with_derivatives=True)
        vecs = []
        for t in range(T):
            Hm = HH[0, t]
            if np.all(np.isfinite(Hm)):
                ev, V = np.linalg.eigh(Hm)
                vecs.append(V[:, int(np.argmax(np.abs(ev)))])
            else:
                vecs.append(None)
        vals = eng.point_lower(th.tolist(), X[j].tolist(), T, vecs)
        out.append((th, vals))
    return out


# --------------------------------------------------------------------------
# 2./3. screening branch and bound, cover


def _bucket_steps(steps, T):
    """Round step counts up to the next power of two (at most T)."""
    steps = np.asarray(steps, dtype=np.int64)
    up = np.left_shift(1, np.ceil(np.log2(np.maximum(steps, 1))).astype(np.int64))
    return np.minimum(up, T)


def _screen_chunk(chunk):
    """Branch and bound for one chunk (neuron groups, samples or None: all); returns
    the cover tasks, the max screened bound and the chunk's statistics."""
    t0 = time.perf_counter()
    tree = _Tree(*chunk)
    tree.add_roots()
    rounds = tree.refine_to_target()
    n_stage1 = tree.count
    tree.refine_to_prune()
    tree.drop_pruned()
    nodes = tree.nodes()
    chosen, ok_thr = _cover(tree, nodes)
    tasks, anc = tree.tasks(nodes, chosen, ok_thr)
    Nn = len(nodes["par"])
    screen_max = (np.where(chosen, nodes["U"], -np.inf).max(axis=0) if Nn
                  else np.full(2 * tree.T, -np.inf))
    used, budget, ng = tree.used, tree.budget, tree.ng
    stats = {"screened": int(Nn), "rounds": rounds, "stage1": int(n_stage1),
             "cover_nodes": int(sum(len(v) for v in anc.values())),
             "cover_per_criterion": chosen.sum(axis=0).tolist(),
             "ancestors": len(anc), "budget_exhausted": int((used >= budget).sum()),
             "max_boxes_per_neuron": int(used.max()) if ng else 0,
             "used": dict(zip(tree.groups.tolist(), used.tolist(), strict=True)),
             "stalled": tree.groups[tree.stalled].tolist(),
             "memory_stopped": tree.memory_stopped, "time_stopped": tree.time_stopped,
             "seconds": time.perf_counter() - t0}
    return tasks, screen_max, stats


def _live_steps(alive_in, T):
    """Last live step per box (−1: none), rounded up to its bucket (1, 2, 3–4, 5–8, …)."""
    N = len(alive_in)
    if not N:
        return np.zeros(0, np.int64)
    tmax = np.array([max([t for t in range(T) if a[t] or a[T + t]], default=-1)
                     for a in alive_in], dtype=np.int64)
    return np.where(tmax >= 0, _bucket_steps(tmax + 1, T) - 1, -1)


def _nbytes(kept) -> int:
    """Bytes of a kept ∂H pair or weights array."""
    return kept.nbytes if isinstance(kept, np.ndarray) else kept[0].nbytes + kept[1].nbytes


class _Tree:
    """The screening tree of one chunk of neurons: its nodes (``store``, appended per
    batch), the current leaves, the anchors' ∂H and the boxes used per neuron."""

    def __init__(self, groups, samples=None):
        ctx = _CTX
        self.X = ctx["X"]
        self.n, self.T, d = self.X.shape
        self.p = d + 1
        self.W0, self.U0g = ctx["W0"], ctx["U0g"]
        self.thr, self.tg = ctx["thr"], ctx["tg"]
        self.rw_hi, self.ru_hi = ctx["rw_hi"], ctx["ru_hi"]
        self.rel_tol = ctx["rel_tol"]
        self.split_rule = ctx.get("split", "smear")
        self.selection = ctx.get("selection", "combined")
        self.inherit = ctx.get("inherit", True)
        # anchors (depth a multiple of levels) get their own AD; ∂H is kept only where
        # a descendant's cheap form reads it, else the smear rule keeps its (T, p) weights
        self.levels = ctx.get("anchor_levels", 1)
        self.keep_dH = self.levels > 1
        self.keep_w = self.split_rule == "smear" and not self.keep_dH
        self.table = _table()
        self.groups = groups = np.asarray(groups, dtype=np.int64)
        self.samples = np.arange(self.n) if samples is None else np.asarray(samples)
        # a neuron split by samples spends its budget in proportion
        ns = len(self.samples)
        self.budget = -(-np.asarray(ctx["budgets"])[groups] * ns // self.n)
        self.mem_cap = ctx["mem_cap"]
        self.memory_stopped = False
        secs = ctx.get("chunk_seconds")
        self.deadline = None if secs is None else time.monotonic() + secs
        self.time_stopped = False
        self.stalled = np.zeros(len(groups), dtype=bool)
        self.ng = ng = len(groups)
        self.gi = np.full(int(groups.max()) + 1 if ng else 1, -1, dtype=np.int64)
        self.gi[groups] = np.arange(ng)
        self.store = {k: [] for k in ("lo", "hi", "grp", "smp", "par", "dep", "U", "Ue", "C",
                                      "alive", "anc")}
        self.count = 0
        # node id -> (∂H lo, ∂H hi) over that node, for its descendants (keep_dH), or
        # the smear weights of that node, (T, p) (keep_w)
        self.anchors = {}
        self.anchor_bytes = 0

    def evaluate(self, blo, bhi, grp, smp, alive_in, anc_ids, is_anchor):
        """Screened bounds; criteria pruned at the parent get +inf thresholds.

        Anchor nodes get full first-order AD (and keep ∂H); the others the
        cheap form from their anchor's ∂H (what the trusted stage computes)."""
        T, thr = self.T, self.thr
        N = len(grp)
        U = np.full((N, 2 * T), -np.inf)
        C = np.zeros((N, 2 * T))
        new_dH = {}
        # one screening call per bucket of step counts (1, 2, 3–4, 5–8, …): steps
        # are causal, so running a box past its last live step changes none of its
        # live bounds; larger batches amortize NumPy's per-call overhead
        tmax = _live_steps(alive_in, T)
        rows = self.batch_rows()
        for tm in np.unique(tmax):
            if tm < 0:
                continue
            for anchor_mode in (True, False):
                sel_all = np.nonzero((tmax == tm) & (is_anchor == anchor_mode))[0]
                for k in range(0, len(sel_all), rows):  # batches: temporaries under the cap
                    sel = sel_all[k:k + rows]
                    out = self._screen(sel, tm, (blo, bhi, grp, smp, alive_in, anc_ids),
                                       anchor_mode)
                    if anchor_mode and self.keep_dH:
                        dlo, dhi = out[4]
                        for q, i in enumerate(sel):
                            new_dH[int(i)] = (dlo[q], dhi[q])
                    elif anchor_mode and self.keep_w:
                        for q, i in enumerate(sel):
                            new_dH[int(i)] = out[4][q].copy()
                    U[sel, :tm + 1], U[sel, T:T + tm + 1] = out[0], out[1]
                    C[sel, :tm + 1], C[sel, T:T + tm + 1] = out[2], out[3]
        alive = alive_in & (U >= thr)
        return U, C, alive, new_dH

    def _screen(self, sel, tm, batch, anchor_mode):
        """screen_bounds of the rows ``sel`` of ``batch`` (box corners, groups, samples,
        alive criteria, anchors) up to step tm: full AD (anchors, with their ∂H) or the
        cheap form from their anchor's ∂H."""
        from ..trusted.screen import screen_bounds

        blo, bhi, grp, smp, alive_in, anc_ids = batch
        T, anchors = self.T, self.anchors
        th = np.where(alive_in[sel], self.thr, np.inf)
        kw = dict(thresholds_L=th[:, :tm + 1], thresholds_B=th[:, T:T + tm + 1], centre=True)
        args = (self.table, self.X[:, :tm + 1], smp[sel], blo[sel], bhi[sel],
                self.U0g[grp[sel]], self.ru_hi)
        if anchor_mode:  # ∂H comes back only where a descendant reads it
            return screen_bounds(*args, return_dH=self.keep_dH, dH_weights=self.keep_w, **kw)
        dlo = np.stack([anchors[int(anc_ids[i])][0][:tm + 1] for i in sel])
        dhi = np.stack([anchors[int(anc_ids[i])][1][:tm + 1] for i in sel])
        return screen_bounds(*args, dH_sup=(dlo, dhi), **kw)

    def batch_rows(self) -> int:
        """Rows per screening call in a quarter of the memory cap: about 32 arrays of p³
        floats per row (the AD's temporaries of one step), and the returned ∂H, 2T of
        them, where it is kept."""
        per_row = 32 + (2 * self.T if self.keep_dH else 0)
        return max(16, int(self.mem_cap // 4 // (per_row * 8 * self.p**3)))

    def room_for(self, n_anchors: int) -> bool:
        """Whether ``n_anchors`` more stored ∂H (or smear weights) fit under the cap
        (else: stop, noted)."""
        each = 2 * 8 * self.T * self.p**3 if self.keep_dH else 8 * self.T * self.p
        need = self.anchor_bytes + n_anchors * each
        if need > self.mem_cap * 3 // 4 and n_anchors:
            self.memory_stopped = True
            return False
        return True

    def room_for_split(self, sel) -> bool:
        """Whether the children of the leaves ``sel`` fit under the cap with their ∂H,
        and the chunk's share of the time limit is not spent (else: stop, noted)."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.time_stopped = True
            return False
        if not (self.keep_dH or self.keep_w):
            return self.room_for(0)
        new_anchor = (self.leaf["dep"][sel] + 1) % self.levels == 0
        return self.room_for(2 * int(new_anchor.sum()))

    def add(self, blo, bhi, grp, smp, par, dep, inherited):
        """Screen a batch of new nodes and store them; their ids, own bounds U, bounds
        Ue (the least of U over the node and its ancestors: a node lies in each of
        them, so each bound holds on it too), anchors.  A criterion whose Ue is below
        the threshold is pruned (Ue ≥ the sup, as U is).  ``inherited``: (alive
        criteria, anchor ids, Ue) of the parents (Ue None for roots)."""
        alive_in, par_anchor, Ue_par = inherited
        is_anchor = (dep % self.levels) == 0
        U, C, alive, new_dH = self.evaluate(blo, bhi, grp, smp, alive_in, par_anchor,
                                            is_anchor)
        Ue = U if Ue_par is None or not self.inherit else np.minimum(U, Ue_par)
        alive = alive & (Ue >= self.thr)
        ids = np.arange(self.count, self.count + len(grp))
        self.count += len(grp)
        for q, dh in new_dH.items():
            if not alive[q].any():
                continue  # pruned for every criterion: never split, ∂H not needed
            self.anchors[int(ids[q])] = dh
            self.anchor_bytes += _nbytes(dh)
        anc = np.where(is_anchor, ids, par_anchor)
        for k, v in (("lo", blo), ("hi", bhi), ("grp", grp), ("smp", smp), ("par", par),
                     ("dep", dep), ("U", U), ("Ue", Ue), ("C", C), ("alive", alive),
                     ("anc", anc)):
            self.store[k].append(v)
        return ids, Ue, C, alive, anc

    def add_roots(self):
        """One root box per (group, sample): the contracted bounding box of its set."""
        groups, n, ng = self.groups, len(self.samples), self.ng
        rlo, rhi = _root_boxes(self.W0[groups], self.U0g[groups], self.rw_hi, self.ru_hi)
        rlo, rhi, _ = _contract(rlo, rhi, self.U0g[groups], self.ru_hi)
        grp = np.repeat(groups, n)
        smp = np.tile(self.samples, ng)
        blo = np.repeat(rlo, n, axis=0)
        bhi = np.repeat(rhi, n, axis=0)
        self.root_w = np.max(rhi - rlo, axis=1) if ng else np.zeros(0)  # per neuron
        N = len(grp)
        ids, Ue, C, alive, anc = self.add(blo, bhi, grp, smp, np.full(N, -1),
                                          np.zeros(N, np.int64),
                                          (np.ones((N, 2 * self.T), bool), np.full(N, -1),
                                           None))
        self.used = np.full(ng, n, dtype=np.int64)
        # leaves carry Ue as "U": what selection, stall rule and cover read of a leaf
        self.leaf = dict(ids=ids, lo=blo, hi=bhi, grp=grp, smp=smp, U=Ue, C=C, alive=alive,
                         dep=np.zeros(N, np.int64), anc=anc)

    def split_leaves(self, sel):
        """Bisect the selected leaves; their contracted children become leaves."""
        leaf = self.leaf
        twoT = 2 * self.T
        lo_, hi_ = _split(leaf["lo"][sel], leaf["hi"][sel], self.split_weights(sel))
        cols = {k: np.concatenate([leaf[k][sel]] * 2) for k in ("grp", "smp", "ids", "dep",
                                                               "alive", "anc", "U")}
        lo_, hi_, ok = _contract(lo_, hi_, self.U0g[cols["grp"]], self.ru_hi)
        lo_, hi_ = lo_[ok], hi_[ok]
        cols = {k: v[ok] for k, v in cols.items()}
        if len(lo_):
            nid, nU, nC, nA, nanc = self.add(lo_, hi_, cols["grp"], cols["smp"], cols["ids"],
                                             cols["dep"] + 1,
                                             (cols["alive"], cols["anc"], cols["U"]))
            np.add.at(self.used, self.gi[cols["grp"]], 1)
        else:
            nid = nanc = np.zeros(0, np.int64)
            nU = nC = np.zeros((0, twoT))
            nA = np.zeros((0, twoT), bool)
        keep = ~sel
        self.leaf = dict(ids=np.concatenate([leaf["ids"][keep], nid]),
                         lo=np.concatenate([leaf["lo"][keep], lo_]),
                         hi=np.concatenate([leaf["hi"][keep], hi_]),
                         grp=np.concatenate([leaf["grp"][keep], cols["grp"]]),
                         smp=np.concatenate([leaf["smp"][keep], cols["smp"]]),
                         U=np.concatenate([leaf["U"][keep], nU]),
                         C=np.concatenate([leaf["C"][keep], nC]),
                         alive=np.concatenate([leaf["alive"][keep], nA]),
                         dep=np.concatenate([leaf["dep"][keep], cols["dep"] + 1]),
                         anc=np.concatenate([leaf["anc"][keep], nanc]))
        self.free_anchors()

    def split_weights(self, sel):
        """(k, p) weights of the "smear" rule for the leaves ``sel`` (None: widest):
        per coordinate, the Frobenius norm of |∂H[..., k]| from the leaf's anchor at the
        step of its worst live criterion (largest bound over target)."""
        if self.split_rule != "smear":
            return None
        leaf, T = self.leaf, self.T
        idx = np.nonzero(sel)[0]
        exc = np.where(leaf["alive"][idx], leaf["U"][idx] / self.tg, -np.inf)
        t_of = np.argmax(exc, axis=1) % T
        out = np.ones((len(idx), self.p))
        for q, (a, t) in enumerate(zip(leaf["anc"][idx].tolist(), t_of.tolist(),
                                       strict=True)):
            dh = self.anchors.get(int(a))
            if dh is None:
                continue  # no ∂H kept: equal weights, i.e. the widest coordinate
            if self.keep_w:
                out[q] = dh[t]  # the screen's weights of the anchor (here: the leaf itself)
                continue
            mag = np.maximum(np.abs(dh[0][t]), np.abs(dh[1][t]))  # (p, p, p)
            out[q] = np.sqrt(np.sum(mag * mag, axis=(0, 1)))
        return out

    def free_anchors(self):
        """Drop the ∂H of anchors that no leaf descends from any more."""
        live = set(self.leaf["anc"].tolist())
        anchors = self.anchors
        for a in [a for a in anchors if a not in live]:
            dh = anchors.pop(a)
            self.anchor_bytes -= _nbytes(dh)

    def drop_pruned(self):
        """Leaves pruned for every criterion stop being leaves (they stay in the tree)."""
        keep = self.leaf["alive"].any(axis=1)
        self.leaf = {k: v[keep] for k, v in self.leaf.items()}
        self.free_anchors()

    def refine_to_target(self):
        """Stage 1: bisect where the bound is attained until (1 + rel_tol)·thr; rounds."""
        if self.selection == "combined":
            return self._refine_combined()
        return self._refine_per_criterion()

    def _refine_combined(self):
        """The leaves in the top half of their set's excess, the excess of a leaf being
        its largest over all criteria; a set stalls as a whole."""
        ng, p, rel_tol, gi = self.ng, self.p, self.rel_tol, self.gi
        hist = [[] for _ in range(ng)]
        stalled = self.stalled
        rounds = 0
        while True:
            rounds += 1
            self.drop_pruned()
            leaf = self.leaf
            if not len(leaf["ids"]):
                break
            exc = np.where(leaf["alive"], leaf["U"] / self.tg, 0.0).max(axis=1)
            li = gi[leaf["grp"]]
            gmax = np.zeros(ng)
            np.maximum.at(gmax, li, exc)
            for k in np.nonzero(~stalled & (gmax > 1))[0]:
                hk = hist[k]
                hk.append(gmax[k])
                back = STALL_SWEEPS * p
                if len(hk) > back and hk[-1 - back] - hk[-1] < 0.5 * rel_tol * hk[-1]:
                    stalled[k] = True  # STALL_SWEEPS sweeps improved it by < rel_tol/2
            sel = ((exc > 1) & (exc >= 1 + (gmax[li] - 1) * 0.5)
                   & (self.used[li] < self.budget[li]) & ~stalled[li])
            if not sel.any() or not self.room_for_split(sel):
                break
            self.split_leaves(sel)
        return rounds

    def _refine_per_criterion(self):
        """Per criterion (‖g_t‖ or ‖H_t‖ for one t): the leaves in the top half of their
        set's excess for it, so that a large excess of one criterion does not keep the
        worst boxes of another from being split; a (set, criterion) stalls on its own
        (STALL_SWEEPS sweeps improved it by < rel_tol/2), a set is reported stalled when
        one of its criteria stalled above target."""
        ng, p, rel_tol, gi = self.ng, self.p, self.rel_tol, self.gi
        twoT = 2 * self.T
        hist = [[] for _ in range(ng)]
        stc = np.zeros((ng, twoT), dtype=bool)  # stalled (set, criterion)
        back = STALL_SWEEPS * p
        rounds = 0
        while True:
            rounds += 1
            self.drop_pruned()
            leaf = self.leaf
            if not len(leaf["ids"]):
                break
            E = np.where(leaf["alive"], leaf["U"] / self.tg, 0.0)  # (leaves, 2T)
            li = gi[leaf["grp"]]
            gmax = np.zeros((ng, twoT))
            np.maximum.at(gmax, li, E)
            for k in np.nonzero((gmax > 1).any(axis=1))[0]:
                hk = hist[k]
                hk.append(gmax[k])
                if len(hk) > back:
                    stc[k] |= (gmax[k] > 1) & (hk[-1 - back] - hk[-1] < 0.5 * rel_tol * hk[-1])
            open_c = (E > 1) & (E >= 1 + (gmax[li] - 1) * 0.5) & ~stc[li]
            sel = open_c.any(axis=1) & (self.used[li] < self.budget[li])
            self.stalled[:] = (stc & (gmax > 1)).any(axis=1)
            if not sel.any() or not self.room_for_split(sel):
                break
            self.split_leaves(sel)
        return rounds

    def refine_to_prune(self):
        """Stage 2: refine surviving boxes whose centre is below the threshold, down to
        1/8 of the root width, so that they get pruned (smaller cover)."""
        w_stop = self.root_w * PRUNE_WIDTH * (1 + 1e-9)  # per neuron: chunking-independent
        thr_low = self.thr * (1 - PRUNE_MARGIN * self.rel_tol)
        while True:
            self.drop_pruned()
            leaf = self.leaf
            if not len(leaf["ids"]):
                break
            a = leaf["alive"]
            low = leaf["C"] < thr_low
            li = self.gi[leaf["grp"]]
            wide = np.max(leaf["hi"] - leaf["lo"], axis=1) > w_stop[li]
            sel = (a & low).any(axis=1) & wide & (self.used[li] < 2 * self.budget[li])
            if not sel.any() or not self.room_for_split(sel):
                break
            self.split_leaves(sel)

    def nodes(self):
        """The whole tree as arrays (node id = row; children after their parent)."""
        return {k: np.concatenate(self.store[k])
                for k in ("par", "U", "Ue", "alive", "lo", "hi", "grp", "smp", "anc")}

    def tasks(self, nodes, chosen, ok_thr):
        """Cover tasks per anchor (the trusted stage uses the same anchors and their ∂H)."""
        lo_all, hi_all, grp_all = nodes["lo"], nodes["hi"], nodes["grp"]
        Uall, anc_all = nodes["U"], nodes["anc"]
        items = np.nonzero(chosen.any(axis=1))[0]
        anc = {}
        for i in items:
            anc.setdefault(int(anc_all[i]), []).append(int(i))
        tasks = []
        for a, its in anc.items():
            tasks.append({
                "anc": (lo_all[a].tolist(), hi_all[a].tolist()),
                "group": int(grp_all[a]), "sample": int(nodes["smp"][a]),
                "items": [(lo_all[i].tolist(), hi_all[i].tolist(), chosen[i].tolist(),
                           bool(i == a), Uall[i].tolist()) for i in its],
                "ok": ok_thr[self.gi[grp_all[a]]].tolist(),
            })
        return tasks, anc


def _cover(tree: _Tree, nodes):
    """Per criterion, the cheapest full cover of the surviving boxes (the chosen
    nodes, (N, 2T)) and the per-neuron bound a cover node may have, (ng, 2T)."""
    par, Uall, alive_all = nodes["par"], nodes["U"], nodes["alive"]
    Nn = len(par)
    is_leaf = np.ones(Nn, dtype=bool)
    is_leaf[par[par >= 0]] = False
    # a node may stand for its subtree when its bound meets the target, or when
    # it is no worse than the worst surviving leaf (which the certified value
    # includes anyway): coarser covers at no cost in the certified bound
    # (per neuron, so that the result does not depend on how neurons are chunked)
    leaf_alive = alive_all & is_leaf[:, None]
    li = tree.gi[nodes["grp"]]
    worst = np.full((tree.ng, 2 * tree.T), -np.inf)
    # a leaf's Ue: the bound of the ancestor on its path that has the least, which the
    # cover may take in its place
    np.maximum.at(worst, li, np.where(leaf_alive, nodes["Ue"], -np.inf))
    ok_thr = np.maximum(tree.tg, worst)  # (ng, 2T)
    ok_here = (Uall <= ok_thr[li]) & alive_all
    return _cheapest_cover(par, is_leaf, alive_all, ok_here), ok_thr


def _cheapest_cover(par, is_leaf, alive_all, ok_here):
    """Dynamic programming on the tree: ``sub`` = size of the cheapest cover of a
    node's children; a node is chosen where it may stand for its subtree and no
    ancestor was (leaves: where alive).  Pruned nodes need no cover."""
    Nn, twoT = alive_all.shape
    pruned = ~alive_all
    BIG = 1 << 40
    sub = np.zeros((Nn, twoT), dtype=np.int64)
    for i in range(Nn - 1, -1, -1):  # children have larger ids than their parent
        if is_leaf[i]:
            ci = alive_all[i].astype(np.int64)
        else:
            ci = np.where(pruned[i], 0, np.minimum(np.where(ok_here[i], 1, BIG), sub[i]))
        if par[i] >= 0:
            sub[par[i]] += ci
    chosen = np.zeros((Nn, twoT), dtype=bool)
    decided = np.zeros((Nn, twoT), dtype=bool)
    for i in range(Nn):
        dec = decided[par[i]] if par[i] >= 0 else np.zeros(twoT, dtype=bool)
        here = ~dec & alive_all[i] & (is_leaf[i] | (ok_here[i] & (sub[i] >= 1)))
        chosen[i] = here
        decided[i] = dec | here | pruned[i]
    return chosen


# --------------------------------------------------------------------------
# 4. trusted evaluation


def _iv_task(task):
    """Trusted bounds of the cover boxes of one ancestor; exact results."""
    t0 = time.perf_counter()
    ev = _TaskEval(task)
    T = ev.T
    need_t = [max([t for t in range(T) if it[2][t] or it[2][T + t]], default=-1)
              for it in task["items"]]
    ev.anchor_states(task, max(need_t) + 1)
    out = [None if tm < 0 else ev.item(it, tm)
           for it, tm in zip(task["items"], need_t, strict=True)]
    return {"group": task["group"], "sample": task["sample"], "results": out,
            "own": ev.n_own, "cheap": ev.n_cheap, "seconds": time.perf_counter() - t0}


class _TaskEval:
    """The trusted engine on one (neuron, sample) of a task, with the task's ancestor
    trajectory and the counts of full (``n_own``) and cheap (``n_cheap``) AD runs."""

    def __init__(self, task):
        self.eng = _engine()
        self.norm_bounds = self.eng.norm_bounds  # the engine's own (values: its number type)
        X = _CTX["X"]
        self.T = X.shape[1]
        self.xs = X[task["sample"]].tolist()
        self.u0 = _CTX["U0g"][task["group"]].tolist()
        self.ru = _CTX["ru_iv"]
        self.tg = np.maximum(_CTX["tg"], np.asarray(task.get("ok", _CTX["tg"])))
        self.own = task.get("own", False)
        self.sts_anc = None
        self.n_own = self.n_cheap = 0

    def anchor_states(self, task, steps):
        """The ancestor's full AD trajectory (``steps`` steps), where boxes share it."""
        n_sub = sum(1 for it in task["items"] if not it[3])
        if not self.own and n_sub < MIN_SHARED:
            self.own = True  # too few boxes share the ancestor: own third derivatives for each
        if not self.own and n_sub:
            self.sts_anc = self.box(task["anc"][0], task["anc"][1], steps)

    def box(self, lo_, hi_, steps):
        """Full first-order AD trajectory of a box (own ∂H)."""
        self.n_own += 1
        return self.eng.box(lo_, hi_, self.xs, self.u0, self.ru, steps)

    def bounds(self, sts, mask):
        """Norm bounds of the criteria in ``mask`` (c = t: ‖g_t‖, c = T + t: ‖H_t‖)."""
        T = self.T
        res = {}
        for t in range(T):
            nl, nb = mask[t], mask[T + t]
            if not (nl or nb):
                continue
            uL, uB = self.norm_bounds(sts[t], nl, nb)
            if nl:
                res[t] = uL
            if nb:
                res[T + t] = uB
        return res

    def item(self, it, tm):
        """Packed trusted bounds of one cover box (live up to step tm) and how they came."""
        lo_, hi_, mask, is_anc, _U = it
        sts_anc = self.sts_anc
        if self.own or is_anc:
            sts = sts_anc if is_anc and sts_anc is not None else self.box(lo_, hi_, tm + 1)
            res = self.bounds(sts, mask)
            how = "own"
        else:
            sts = self.eng.box_from(lo_, hi_, self.xs, [s.dH for s in sts_anc[:tm + 1]],
                                    tm + 1, self.u0, self.ru)
            self.n_cheap += 1
            res = self.bounds(sts, mask)
            how = "ancestor"
            tg = self.tg
            if any(float(v) > tg[c] for c, v in res.items()):
                # the ancestor's ∂H was too coarse here: own third derivatives
                res2 = self.bounds(self.box(lo_, hi_, tm + 1), mask)
                res = {c: min(v, res2[c]) for c, v in res.items()}
                how = "own"
        return {c: _mpf_pack(v) for c, v in res.items()}, how


# --------------------------------------------------------------------------
# driver


def _groups_of(w0, U0):
    """Distinct neurons (bit-identical θ_i(0)): representatives and member lists."""
    rows = np.concatenate([w0[:, None], U0], axis=1)
    keyed = {}
    order = []
    for i, r in enumerate(rows):
        k = r.tobytes()
        if k not in keyed:
            keyed[k] = []
            order.append(k)
        keyed[k].append(i)
    reps = [keyed[k][0] for k in order]
    members = [keyed[k] for k in order]
    return np.array(reps, dtype=np.int64), members


def _pool(jobs):
    import multiprocessing as mp

    try:
        ctx = mp.get_context("fork")
    except ValueError:  # pragma: no cover - non-POSIX
        ctx = mp.get_context()
    return ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_set_ctx,
                               initargs=(dict(_CTX),))


def _map(fn, args, jobs, progress=None, label=""):
    if _CLIENT and len(args) > 1:
        return _map_dask(_CLIENT[0], fn, args, progress, label)
    if jobs <= 1 or len(args) <= 1:
        out = []
        for k, a in enumerate(args):
            out.append(fn(a))
            _progress(progress, label, k + 1, len(args))
        return out
    ex = _pool(jobs)
    try:
        futs = [ex.submit(fn, a) for a in args]
        out = []
        for k, f in enumerate(futs):
            out.append(f.result())
            _progress(progress, label, k + 1, len(args))
    except BaseException:
        # Ctrl-C (or a worker's error): stop at once, do not wait for queued tasks
        _terminate(ex)
        raise
    ex.shutdown()
    return out


#: the dask.distributed client of ``BoundsSettings.scheduler`` while a call runs
_CLIENT: list = []
#: what a worker cannot be sent (a module) or rebuilds from its own disk cache
_LOCAL_ONLY = ("am", "table")


def _map_dask(client, fn, args, progress, label):
    """``fn`` over ``args`` as tasks of the cluster, results in order.  Each task gets
    the context (scattered once per call, with a fresh token) and sets it in its
    worker process when it differs from the one there: the tasks are the same as
    with local processes, so are their results."""
    import uuid

    ctx = {k: _iv_pack(v) for k, v in _CTX.items() if k not in _LOCAL_ONLY}
    ctx["token"] = uuid.uuid4().hex
    ctx_f = client.scatter([ctx], broadcast=True, hash=False)[0]  # one object, not per key
    futs = [client.submit(_remote, fn.__name__, a, ctx_f, pure=False) for a in args]
    out = []
    try:
        for k, f in enumerate(futs):
            out.append(f.result())
            _progress(progress, label, k + 1, len(args))
    except BaseException:
        client.cancel(futs)
        raise
    return out


def _remote(name, arg, ctx):
    """A cluster task: this module's function ``name`` on ``arg`` under context ``ctx``."""
    if _CTX.get("token") != ctx["token"]:
        _set_ctx({k: _iv_unpack(v) for k, v in ctx.items()})
    return globals()[name](arg)


def _iv_pack(v):
    """mpmath.iv intervals do not unpickle: their exact endpoints (raw mpf tuples) do."""
    return ("iv", tuple(v._mpi_)) if isinstance(v, type(iv.mpf(0))) else v


def _iv_unpack(v):
    if isinstance(v, tuple) and len(v) == 2 and v[0] == "iv":
        return iv.make_mpf(v[1])
    return v


def connect_scheduler(scheduler):
    """A dask.distributed client of ``scheduler`` (None: none); ValueError naming the
    address when it cannot connect or distributed is not installed."""
    if not scheduler:
        return None
    try:
        import distributed
    except ImportError:
        raise ValueError("--scheduler needs dask.distributed: pip install "
                         "'rnn-certify[dask]'") from None
    try:
        import dask

        return distributed.Client(
            scheduler, timeout=dask.config.get("distributed.comm.timeouts.connect"))
    except (OSError, TimeoutError, ValueError) as exc:
        raise ValueError(f"cannot connect to scheduler {scheduler}: "
                         f"{type(exc).__name__}: {exc}") from None


def _terminate(ex) -> None:
    """Cancel what is queued and kill the pool's worker processes."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    ex.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=1)


def certify_data_constants(act, X, init, ball: Ball, alpha_m, T,
                           settings: BoundsSettings = DEFAULT_SETTINGS,
                           progress=None) -> DataConstants:
    """Certified sup‖g_t‖₂ and sup‖H_t‖₂ over Ω_ρ for t = 0..T−1 (see module docstring
    and :func:`_certify_data_constants`); on a dask cluster with ``settings.scheduler``."""
    client = connect_scheduler(settings.scheduler)
    if client is None:
        return _certify_data_constants(act, X, init, ball, alpha_m, T, settings, progress)
    _CLIENT.append(client)
    try:  # as many chunks as the cluster has worker threads (the result does not change)
        workers = sum(client.nthreads().values())
        settings = dataclasses.replace(settings, jobs=max(settings.jobs, workers))
        return _certify_data_constants(act, X, init, ball, alpha_m, T, settings, progress)
    finally:
        _CLIENT.clear()
        client.close()


def _certify_data_constants(act, X, init, ball: Ball, alpha_m, T,
                            settings: BoundsSettings = DEFAULT_SETTINGS,
                            progress=None) -> DataConstants:
    """Certified sup‖g_t‖₂ and sup‖H_t‖₂ over Ω_ρ for t = 0..T−1 (see module docstring).

    act: activation name or :class:`symbolic.Activation`; X: (n, ≥T, d) data;
    init: an object with ``w0``, ``U0`` (and ``c``) or a tuple (w0, U0, c);
    ball: the width m and the radii ρ_w, ρ_u of Ω_ρ (:class:`.settings.Ball`);
    alpha_m: the α_m of the closed forms (None: max|w_i(0)| + ρ_w/√m, certified);
    settings: tolerance, box budget, processes, trusted engine, seed and random
    points (:class:`.settings.BoundsSettings`); progress: a
    callable(stage, done, total) or a :class:`certify.progress.Progress`.
    """
    from ..trusted.engine import NORM_METHOD
    from ..trusted.screen import SCREEN_ENGINE

    t_start = time.perf_counter()
    act_obj, X, w0, U0 = _inputs(act, X, init, ball.m, T)
    eng, ac, am, table = _tools(act_obj, settings.engine)
    timings = {"setup": time.perf_counter() - t_start}
    pb = _problem(X, w0, U0, ball)
    T = pb.T
    closed, alpha_iv, notes = _closed_forms(act_obj, w0, pb.rw_iv, alpha_m, T)
    _share(pb, settings, act_obj, am, table)
    t0 = time.perf_counter()
    _progress(progress, "lower bounds")  # 1.
    thr_mpf, lower_pts = _lower_bounds(pb, am, settings)
    _set_thresholds(thr_mpf, closed, settings, pb)
    timings["lower"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _progress(progress, "screening")  # 2./3.
    left = (None if settings.time_limit_s is None
            else settings.time_limit_s - (time.perf_counter() - t_start))
    tasks, screen_max, st = _screen_all(pb, settings.jobs, left)
    timings["screen"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _progress(progress, "trusted evaluation")  # 4.
    best, n_own, n_cheap, n_eval = _trusted_cover(tasks, T, settings, progress)
    timings["trusted"] = time.perf_counter() - t0
    cert, argmax, lowers = _certified(best, thr_mpf, pb.reps)
    boxes = _boxes_record(st, (n_own, n_cheap, n_eval), pb)
    tight = _tightness(cert, lowers, settings, st, pb)
    timings["total"] = time.perf_counter() - t_start
    _add_rates(boxes, st["screened"], n_own + n_cheap, timings)
    return DataConstants(
        activation=ac.activation.name, engine=eng.name, screen_engine=SCREEN_ENGINE,
        norm_method=dict(NORM_METHOD), steps=T,
        certified_L=tuple(cert[:T]), certified_beta=tuple(cert[T:]),
        lower_L=tuple(lowers[:T]), lower_beta=tuple(lowers[T:]),
        closed_L=tuple(closed["L"]), closed_beta=tuple(closed["beta"]),
        argmax_L=tuple(argmax[:T]), argmax_beta=tuple(argmax[T:]),
        lower_points_L=tuple(lower_pts[:T]), lower_points_beta=tuple(lower_pts[T:]),
        screen_L=tuple(float(x) for x in screen_max[:T]),
        screen_beta=tuple(float(x) for x in screen_max[T:]),
        boxes=boxes, timings=timings,
        settings=_settings_record(settings, ball, pb, alpha_iv),
        budget_exhausted=st["budget_exhausted"] > 0, notes=tuple(notes), tightness=tight)


# setup


@dataclass(frozen=True)
class _Problem:
    """The data (n, T, d), Ω_ρ's radii and the distinct neurons (``reps``: one of each)."""

    X: np.ndarray
    rw_iv: object  # ρ_w/√m, ρ_u/√m: exact enclosures (iv), and their float upper bounds
    ru_iv: object
    rw_hi: float
    ru_hi: float
    reps: np.ndarray
    W0: np.ndarray  # w0, U0 of the representatives
    U0g: np.ndarray

    @property
    def T(self) -> int:
        return self.X.shape[1]

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def G(self) -> int:
        return len(self.reps)


def _inputs(act, X, init, m, T):
    """The activation object, X[:, :T] (contiguous float64) and w0, U0, checked."""
    from symbolic.activations import Activation, resolve

    act_obj = act if isinstance(act, Activation) else resolve(str(act))
    if isinstance(init, tuple | list):
        w0, U0 = np.asarray(init[0], dtype=np.float64), np.asarray(init[1], dtype=np.float64)
    else:
        w0, U0 = np.asarray(init.w0, dtype=np.float64), np.asarray(init.U0, dtype=np.float64)
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64)[:, :T, :])
    d = X.shape[2]
    if w0.shape != (m,) or U0.shape != (m, d):
        raise ValueError(f"init shapes {w0.shape}, {U0.shape} do not match m={m}, d={d}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(w0)) and np.all(np.isfinite(U0))):
        raise ValueError("data and initialization must be finite")
    return act_obj, X, w0, U0


def _tools(act_obj, engine):
    """The trusted engine, certified activation, float functions and screening table."""
    from symbolic import activation_functions

    from ..trusted.activation_constants import certify_activation
    from ..trusted.engines import get_engine
    from ..trusted.screen import activation_table

    eng = get_engine(engine, act_obj)
    return (eng, certify_activation(act_obj), activation_functions(act_obj),
            activation_table(act_obj))


def _share(pb: _Problem, settings: BoundsSettings, act_obj, am, table) -> None:
    """Set the context that every stage (and every forked worker) reads."""
    _set_ctx({"act": act_obj, "engine": settings.engine, "X": pb.X, "W0": pb.W0,
              "U0g": pb.U0g, "rw_hi": pb.rw_hi, "ru_hi": pb.ru_hi, "rw_iv": pb.rw_iv,
              "ru_iv": pb.ru_iv, "am": am, "table": table, "box_budget": settings.box_budget,
              "rel_tol": settings.rel_tol, "split": settings.split,
              "selection": settings.selection, "inherit": settings.inherit,
              "anchor_levels": settings.anchor_levels,
              "mem_cap": settings.memory_cap_mb * 2**20 // settings.jobs})


def _problem(X, w0, U0, ball: Ball) -> _Problem:
    """Exact radii ρ/√m (checked ≥ 0) and the distinct neurons."""
    sq = iv.sqrt(iv.mpf(int(ball.m)))
    rw_iv = _to_iv(ball.rho_w) / sq
    ru_iv = _to_iv(ball.rho_u) / sq
    if lo(rw_iv) < 0 or lo(ru_iv) < 0:
        raise ValueError("radii must be >= 0")
    reps, _members = _groups_of(w0, U0)
    return _Problem(X=X, rw_iv=rw_iv, ru_iv=ru_iv, rw_hi=_f_up(rw_iv), ru_hi=_f_up(ru_iv),
                    reps=reps, W0=w0[reps], U0g=U0[reps])


def _closed_forms(act_obj, w0, rw_iv, alpha_m, T):
    """The closed forms L_t, β_t at α_m (None: max|w| on the ball), α_m and notes."""
    from ..trusted.activation_constants import closed_form_constants

    notes = []
    w_max = iv.mpf(float(np.max(np.abs(w0)))) + rw_iv
    if alpha_m is None:
        alpha_iv = w_max
    else:
        alpha_iv = _to_iv(alpha_m)
        if hi(alpha_iv) < hi(w_max):
            notes.append(f"alpha_m = {interval_strings(alpha_iv)[1]} is below max|w| on the "
                         f"ball ({interval_strings(w_max)[1]}): the closed forms do not apply")
    return closed_form_constants(act_obj, iv.mpf(hi(alpha_iv)), T), alpha_iv, notes


# 1. lower bounds and the thresholds


def _lower_bounds(pb: _Problem, am, settings: BoundsSettings):
    """Certified lower bounds per criterion c = q·T + t and their points (stage 1)."""
    rng = np.random.default_rng(settings.seed)
    C0 = np.concatenate([pb.W0[:, None], pb.U0g], axis=1)
    radii = (pb.rw_hi * (1 - 2.0**-20), pb.ru_hi * (1 - 2.0**-20))
    K = settings.samples_for(pb.G * pb.n)
    _vals, pairs, thetas, _pair_best = _lower_phase(am, pb.X, C0, radii, K, rng)
    keys = _candidates(pairs, thetas, pb.T)
    conf = _confirm_points([(k[0], np.array(k[1])) for k in keys], pb.X, pb.W0, pb.U0g,
                           pb.rw_iv, pb.ru_iv, pb.T)
    return _best_confirmed(keys, conf, pb)


def _candidates(pairs, thetas, T):
    """Distinct (pair index, θ) of the observed best points, in criterion order."""
    cand = {}
    for q in range(2):
        for t in range(T):
            cand.setdefault((int(pairs[q, t]), tuple(thetas[q, t].tolist())), None)
    return list(cand)


def _best_confirmed(keys, conf, pb: _Problem):
    """Per criterion: the best certified lower value (mpf) and its (neuron, sample, θ)."""
    T, n = pb.T, pb.n
    thr_mpf = [mpf("-inf")] * (2 * T)
    lower_pts = [None] * (2 * T)
    for key, cv in zip(keys, conf, strict=True):
        if cv is None:
            continue
        th, lv = cv
        for t in range(T):
            for q in range(2):
                v = lv[t][q]
                if v > thr_mpf[q * T + t]:
                    thr_mpf[q * T + t] = v
                    g, j = divmod(key[0], n)
                    lower_pts[q * T + t] = (int(pb.reps[g]), int(j), th.tolist())
    for c in range(2 * T):
        if lower_pts[c] is None:  # pragma: no cover - the centre is always inside
            raise RuntimeError("no certified point of the ball for the lower bounds")
    return thr_mpf, lower_pts


def _set_thresholds(thr_mpf, closed, settings: BoundsSettings, pb: _Problem) -> None:
    """Pruning thresholds ``thr``, bisection targets ``tg`` and box budgets, into _CTX."""
    thr = np.array([_f_dn(iv.mpf(v)) for v in thr_mpf])
    thr = np.maximum(thr, 0.0)
    # target of the bisection: (1 + rel_tol)·lower, and never above the closed form
    cap = np.array([float(lo(x)) for x in list(closed["L"]) + list(closed["beta"])])
    tg = np.maximum(np.minimum(thr * (1 + settings.rel_tol), cap * (1 - 1e-9)), thr)
    _CTX["thr"] = thr
    _CTX["tg"] = tg
    # the box budget applies to each distinct neuron's set (deterministic, so the
    # result does not depend on jobs); a neuron only spends what it needs
    _CTX["budgets"] = np.full(pb.G, max(settings.box_budget, pb.n), dtype=np.int64)


# 2./3. screening and cover


def _screen_all(pb: _Problem, jobs, seconds_left=None):
    """Screen every distinct neuron; the cover tasks, max screened bound, merged stats.
    ``seconds_left``: of the time limit (None: none), shared by the chunks, ``jobs``
    at a time."""
    T = pb.T
    chunks = _chunks(pb, jobs)
    _CTX["chunk_seconds"] = (None if seconds_left is None else
                             max(0.0, seconds_left) * min(jobs, len(chunks)) / len(chunks))
    res = _map(_screen_chunk, chunks, jobs)
    tasks = []
    screen_max = np.full(2 * T, -np.inf)
    st = {"screened": 0, "cover_nodes": 0, "ancestors": 0, "budget_exhausted": 0,
          "max_boxes_per_neuron": 0, "cover_per_criterion": np.zeros(2 * T, dtype=np.int64),
          "memory_stopped": 0, "time_stopped": 0}
    used, stalled = {}, set()
    for tk, sm, s in res:
        tasks.extend(tk)
        screen_max = np.maximum(screen_max, sm)
        for k in ("screened", "cover_nodes", "ancestors", "budget_exhausted"):
            st[k] += s[k]
        st["max_boxes_per_neuron"] = max(st["max_boxes_per_neuron"], s["max_boxes_per_neuron"])
        st["cover_per_criterion"] += np.asarray(s["cover_per_criterion"])
        for g, u in s["used"].items():
            used[g] = used.get(g, 0) + u
        stalled |= set(s["stalled"])
        st["memory_stopped"] += int(s["memory_stopped"])
        st["time_stopped"] += int(s["time_stopped"])
    st["chunks"] = len(res)
    st["stalled"] = len(stalled)
    st["used"] = used
    return tasks, screen_max, st


def _group_bytes(n, T, p) -> int:
    """What screening one neuron's n root boxes holds: ∂H lo and hi, (n, T, p, p, p) each,
    and as much again for refinement and the temporaries of a batch."""
    return 2 * (2 * 8 * n * T * p**3)


def _chunks(pb: _Problem, jobs):
    """(groups, samples) chunks: one per process while they fit in the memory cap
    (a chunk's neurons are screened in shared batches, and NumPy's per-call overhead
    makes small batches dear: reference case, jobs=2: 4 chunks per process 27 s of
    screening, one chunk per process 17 s); else as many as the cap needs, a neuron
    whose samples alone do not fit split by samples.  Neurons are dealt out in turn,
    which spreads the costly ones."""
    n, T, d = pb.X.shape
    G, cap = pb.G, _CTX["mem_cap"]
    per_group = _group_bytes(n, T, d + 1)
    per_part = n if per_group <= cap else max(1, int(cap * n // per_group))  # samples
    parts = math.ceil(n / per_part)  # sample parts of one neuron
    per_chunk = max(1, cap // per_group) if parts == 1 else 1
    nchunks = max(min(G, jobs), math.ceil(G / per_chunk))
    order = np.arange(G)
    groups = [order[k::nchunks] for k in range(nchunks)]
    if parts == 1:
        return [(g, None) for g in groups]
    samples = [np.arange(k, min(n, k + per_part)) for k in range(0, n, per_part)]
    return [(g, smp) for g in groups for smp in samples]


# 4. trusted evaluation of the cover


def _trusted_cover(tasks, T, settings: BoundsSettings, progress):
    """Trusted bounds of the cover boxes that may hold a maximum: the best per criterion,
    the AD counts and how many cover boxes the trusted engine evaluated.

    Rounds from the top: per criterion, the 1, 2, 4, … cover boxes with the largest
    screened bounds above the trusted max found for it so far, until none is left.  A
    box whose screened bound for a criterion is at most that trusted max is pruned for
    it: the screen is sound (it prunes against the certified lower bounds in the same
    way), so the trusted max bounds the whole cover.  A maximising box bounded with its
    ancestor's ∂H is re-evaluated with its own (up to REDO_ROUNDS times), where that may
    be tighter; the rounds then go on.  ``settings.trusted_all``: every cover box in
    one round (the rule before).
    """
    jobs = settings.jobs
    tasks.sort(key=lambda tk: -len(tk["items"]))
    keys = [(k, ii) for k, tk in enumerate(tasks) for ii in range(len(tk["items"]))]
    twoT = 2 * T
    chosen = np.array([tasks[k]["items"][ii][2] for k, ii in keys], bool).reshape(-1, twoT)
    Uc = np.array([tasks[k]["items"][ii][4] for k, ii in keys], float).reshape(-1, twoT)
    Uc = np.where(chosen, Uc, -np.inf)
    out = [{"group": tk["group"], "sample": tk["sample"],
            "results": [None] * len(tk["items"])} for tk in tasks]
    todo = chosen.copy()  # (cover box, criterion) neither evaluated nor pruned
    order = np.argsort(-Uc, axis=0, kind="stable")  # per criterion, largest first
    top_dn = np.full(twoT, -np.inf)
    n_own = n_cheap = redo_rounds = rounds = 0
    done: set = set()
    best = [None] * twoT
    while True:
        k = len(keys) if settings.trusted_all else 2**rounds
        pend = _top_pending(todo & ~(Uc <= top_dn), order, k)  # NaN: open
        rounds += 1
        if pend.any():
            sub, where = _pending_tasks(tasks, keys, pend)
            res = _map(_iv_task, sub, jobs, progress, "trusted evaluation")
            n_own += sum(r["own"] for r in res)
            n_cheap += sum(r["cheap"] for r in res)
            _merge_round(out, where, res)
            todo &= ~pend
        elif redo_rounds < REDO_ROUNDS and (redo := _redo_tasks(best, tasks, done, out)):
            redo_rounds += 1
            n_own += _merge_redone(out, redo, _map(_iv_task, [r[1] for r in redo], jobs))
        else:
            break
        best = _best_of(out, T)
        top_dn = np.array([-np.inf if b is None else _f_dn(iv.mpf(b[0])) for b in best])
    evaluated = sum(r is not None for o in out for r in o["results"])
    return best, n_own, n_cheap, evaluated


def _top_pending(open_, order, k):
    """Per criterion, the ``k`` open (box, criterion) pairs with the largest screened
    bounds (``order``: box indices by screened bound, per criterion)."""
    pend = np.zeros_like(open_)
    for c in range(open_.shape[1]):
        rows = order[:, c][open_[order[:, c], c]][:k]
        pend[rows, c] = True
    return pend


def _pending_tasks(tasks, keys, pend):
    """Per task, its cover boxes with pending criteria (masks restricted to them), and
    where each result goes: (task index, item indices)."""
    rows: dict = {}
    for r in np.nonzero(pend.any(axis=1))[0]:
        k, ii = keys[r]
        rows.setdefault(k, []).append((ii, pend[r].tolist()))
    sub, where = [], []
    for k, its in rows.items():
        tk = tasks[k]
        items = [tuple(tk["items"][ii][:2]) + (mask,) + tuple(tk["items"][ii][3:])
                 for ii, mask in its]
        sub.append(dict(tk, items=items))
        where.append((k, [ii for ii, _ in its]))
    return sub, where


def _merge_round(out, where, res):
    """Add a round's trusted bounds to ``out`` (criteria of a box add up; a box counts
    as bounded by the cheap form if any of its criteria was)."""
    for (k, iis), r in zip(where, res, strict=True):
        for ii, item in zip(iis, r["results"], strict=True):
            if item is None:
                continue
            old = out[k]["results"][ii]
            if old is None:
                out[k]["results"][ii] = item
            else:
                how = "ancestor" if "ancestor" in (old[1], item[1]) else "own"
                out[k]["results"][ii] = ({**old[0], **item[0]}, how)


def _best_of(out, T):
    """Per criterion: (mpf, group, sample, task index, item index, how) of the max."""
    best = [None] * (2 * T)
    for k, r in enumerate(out):
        for ii, item in enumerate(r["results"]):
            if item is None:
                continue
            res_, how = item
            for c, packed in res_.items():
                v = _mpf_unpack(packed)
                if best[c] is None or v > best[c][0]:
                    best[c] = (v, r["group"], r["sample"], k, ii, how)
    return best


def _redo_tasks(best, tasks, done, out):
    """One-item own-∂H tasks for the maximisers bounded by the cheap form (not yet
    redone), for the criteria the box was evaluated for."""
    redo = []
    for b in best:
        if b is None or b[5] != "ancestor" or (b[3], b[4]) in done:
            continue
        done.add((b[3], b[4]))
        tk = tasks[b[3]]
        it = tk["items"][b[4]]
        have = out[b[3]]["results"][b[4]][0]
        it = it[:2] + ([c in have for c in range(len(it[2]))],) + tuple(it[3:])
        redo.append(((b[3], b[4]), {"anc": (it[0], it[1]), "group": tk["group"],
                                    "sample": tk["sample"], "own": True, "items": [it]}))
    return redo


def _merge_redone(out, redo, res2):
    """Replace the cheap values of the redone items by the own ones where smaller.

    Both are valid bounds; the smaller is kept.  Returns the number of own AD runs.
    """
    n_own = 0
    for (key, _tk), r in zip(redo, res2, strict=True):
        n_own += r["own"]
        new_vals = r["results"][0][0] if r["results"][0] is not None else {}
        old = out[key[0]]["results"][key[1]]
        merged = dict(old[0])
        for c, packed in new_vals.items():
            if c not in merged or _mpf_unpack(packed) < _mpf_unpack(merged[c]):
                merged[c] = packed
        out[key[0]]["results"][key[1]] = (merged, "own")
    return n_own


# assembly


def _certified(best, thr_mpf, reps):
    """Certified intervals [lower, upper], their argmax (neuron, sample), float lowers."""
    cert = []
    argmax = []
    for c in range(len(best)):
        if best[c] is None:
            raise RuntimeError(f"internal error: empty cover for criterion {c}")
        v, g, j = best[c][0], best[c][1], best[c][2]
        lo_v = thr_mpf[c]
        cert.append(iv.mpf([min(lo_v, v), v]))
        argmax.append((int(reps[g]), int(j)))
    lowers = [_f_dn(iv.mpf(v)) for v in thr_mpf]
    return cert, argmax, lowers


#: the bisection rule, as certificates name it (BoundsSettings.split)
SPLIT_TEXT = {"widest": "bisection of the widest coordinate",
              "smear": "bisection of the coordinate with the largest width × |∂H| in it"}


SELECTION_TEXT = {"combined": "of the boxes in the top half of their set's largest excess",
                  "per-criterion": "of the boxes in the top half of their set's excess for "
                                   "some ‖g_t‖ or ‖H_t‖"}


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def method(settings: BoundsSettings = DEFAULT_SETTINGS) -> str:
    """The method, as certificates name it."""
    inherit = ("; a box's bound capped by its ancestors'" if settings.inherit else "")
    return ("best lower point (random + projected ascent, confirmed by the trusted engine); "
            f"screening branch and bound per neuron set ({SPLIT_TEXT[settings.split]} "
            f"{SELECTION_TEXT[settings.selection]}{inherit}; first-order interval AD for ∂H "
            + ("of every box" if settings.anchor_levels == 1 else
               f"at every {_ordinal(settings.anchor_levels)} level")
            + ", mean value and vertex forms); trusted evaluation of the "
            + ("cheapest cover, every box" if settings.trusted_all else
               "cheapest cover from the largest screened bounds down, boxes screened at "
               "most the trusted max pruned"))


def _tightness(cert, lowers, settings: BoundsSettings, st, pb: _Problem) -> dict:
    """Whether each bound reached its target (1 + rel_tol)·lower, the ratio reached
    per t (certified/lower, observed floats), what stopped the refinement short and
    where the boxes went (the neurons that used most)."""
    T = pb.T
    ratio = [float(hi(c)) / lw if lw > 0 else math.inf for c, lw in zip(cert, lowers,
                                                                       strict=True)]
    target = 1 + settings.rel_tol
    short = [r > target for r in ratio]
    stopped = []
    if st["budget_exhausted"]:
        stopped.append(f"box budget: {st['budget_exhausted']} of {pb.G} neuron sets spent "
                       f"box_budget = {settings.box_budget}")
    if st["stalled"]:
        stopped.append(f"stalled: {st['stalled']} neuron sets improved by less than "
                       f"rel_tol/2 over two sweeps of bisection")
    if st["memory_stopped"]:
        stopped.append(f"memory cap: refinement stopped in {st['memory_stopped']} of "
                       f"{st['chunks']} chunks at memory_cap_mb = {settings.memory_cap_mb}")
    if st["time_stopped"]:
        stopped.append(f"time limit: refinement stopped in {st['time_stopped']} of "
                       f"{st['chunks']} chunks at time_limit_s = {settings.time_limit_s:g}")
    top = sorted(st["used"].items(), key=lambda kv: -kv[1])[:5]

    def part(xs):
        return {"L": xs[:T], "beta": xs[T:]}

    def finite(xs):
        return [x if math.isfinite(x) else None for x in xs]

    return {"method": method(settings), "target": target,
            "reached": not any(short),
            "ratio": part(finite(ratio)),
            "worst": {"L": _worst(ratio[:T]), "beta": _worst(ratio[T:])},
            "short_of_target": part(short),
            "stopped_by": stopped,
            "boxes_by_neuron": [{"neuron": int(pb.reps[g]), "boxes": int(u)} for g, u in top],
            "memory_cap_mb": settings.memory_cap_mb, "chunks": st["chunks"],
            "label": "ratios observed (float quotients of a certified upper bound and a "
                     "certified lower value)"}


def _worst(ratios):
    """(t, ratio) of the largest certified/lower ratio (None where not finite)."""
    t = int(np.argmax(ratios))
    return {"t": t, "ratio": ratios[t] if math.isfinite(ratios[t]) else None}


def _boxes_record(st, trusted, pb: _Problem) -> dict:
    """The certificate's box counts; ``trusted``: full and cheap AD runs of the trusted
    engine and the cover boxes it evaluated (the others: pruned by the trusted max)."""
    T = pb.T
    n_own, n_cheap, n_eval = trusted
    return {"screened": st["screened"], "cover": st["cover_nodes"],
            "cover_trusted": n_eval, "cover_below_trusted_max": st["cover_nodes"] - n_eval,
            "cover_per_criterion": {"L": st["cover_per_criterion"][:T].tolist(),
                                    "beta": st["cover_per_criterion"][T:].tolist()},
            "ancestors": st["ancestors"], "trusted_full": n_own, "trusted_cheap": n_cheap,
            "distinct_neurons": pb.G, "pairs": pb.G * pb.n,
            "max_boxes_per_neuron": st["max_boxes_per_neuron"],
            "neurons_budget_exhausted": st["budget_exhausted"]}


def _add_rates(boxes, screened, trusted, timings) -> None:
    """Boxes per second of screening and of the trusted stage (observed)."""
    if timings["screen"] > 0:
        boxes["screen_boxes_per_second"] = screened / timings["screen"]
    if timings["trusted"] > 0:
        boxes["trusted_boxes_per_second"] = trusted / timings["trusted"]


def _settings_record(settings: BoundsSettings, ball: Ball, pb: _Problem, alpha_iv) -> dict:
    """The certificate's record of the settings and the problem's size."""
    n, T, d = pb.X.shape
    return {"rel_tol": settings.rel_tol, "box_budget": settings.box_budget,
            "split": settings.split, "selection": settings.selection,
            "inherit": settings.inherit, "trusted_all": settings.trusted_all,
            "time_limit_s": settings.time_limit_s,
            "jobs": settings.jobs, "seed": settings.seed,
            "lower_samples": settings.samples_for(pb.G * pb.n),
            "m": int(ball.m), "n": int(n), "d": int(d), "steps": int(T),
            "rho_w": str(getattr(ball.rho_w, "text", ball.rho_w)),
            "rho_u": str(getattr(ball.rho_u, "text", ball.rho_u)),
            "alpha_m": interval_strings(alpha_iv), "memory_cap_mb": settings.memory_cap_mb,
            "ancestor_levels": settings.anchor_levels, "cpu_count": os.cpu_count()}
