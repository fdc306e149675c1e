"""The pipeline: case → constants → executor → certificate (DESIGN.md).

:func:`run` certifies one loaded :class:`~certify.cases.case.Case` and returns a
:class:`~certify.output.certificate.Certificate`; :func:`certify_case_file` loads a
file, runs it and writes ``NAME.json`` (atomically) and ``NAME.md``;
:func:`run_many` does that for many files, in parallel processes with
``jobs > 1``.

Verdict rules
-------------
``fail`` if any check fails: a data-specific certified constant above the
closed form or below its observed lower bound, a lower bound not reproduced at
its point by the executor's derivatives, an observed |σ^(k)| above the
certified σ_k, a drift violation beyond the floating-point allowance, the
a-priori bound below the observed average loss (when applicable), the
comparator outside Ω_ρ or an iterate outside Ω_ρ for projected GD, the
executor's gradient disagreeing with central differences, or an executor record that is
not the case's run or not consistent with its own definitions.  ``unknown`` if
a needed bound is not finite or could not be established (a data-specific bound
that is not finite, a box budget spent before a finite bound) or if *any*
iterate was not checked (no finite constant for its ball, non-finite values,
or an allowance not small against the loss terms: the resolution rule of
:mod:`certify.train.executor`; the reasons then count the unchecked iterates per
reason), or if the gradient check was inconclusive or skipped at a point (the
executor's gradient not confirmed).  ``pass`` otherwise: never on a bound that was not established.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpmath import iv

from .errors import UserError
from .output.certificate import (
    RIGOR,
    SCHEMA_VERSION,
    Certificate,
    environment,
    finite_or_none,
    float_list,
)
from .trusted.activation_constants import certify_activation, closed_form_constants
from .trusted.engines import canonical_engine
from .trusted.intervals import ENGINE, float_up, hi, interval_strings, is_finite, lo, upper_string


def interval_engine_label(engine: str) -> str:
    """The certificate's ``environment.interval_engine``: "mpmath.iv", or the data-specific
    engine with its version next to mpmath.iv (activation and closed-form constants are
    always mpmath.iv)."""
    if engine == ENGINE:
        return ENGINE
    if engine == "python-flint":
        from importlib import metadata

        try:
            version = metadata.version("python-flint")
        except metadata.PackageNotFoundError:  # pragma: no cover - checked when loading
            version = "?"
        return f"{ENGINE} + python-flint {version} (Arb; data-specific bounds)"
    return f"{ENGINE} + {engine}"  # pragma: no cover - no other engine is registered


def alpha_m_interval(alpha0_text: str, rho_w_text: str, m: int):
    """Enclosure of α_m = α₀ + ρ_w/√m from the case's decimal strings (exact inputs)."""
    return iv.mpf(alpha0_text) + iv.mpf(rho_w_text) / iv.sqrt(iv.mpf(m))


def _regime(q) -> str:
    if hi(q) < 1:
        return "short memory (q < 1)"
    if lo(q) > 1:
        return "long memory (q > 1)"
    return "at the cutoff (q ∋ 1)"


class _BetaForRadius:
    """Closed-form β_t, L_t of the ball with w-radius ρ_w (certified, rounded up).

    Radii are rounded *up* to a grid of 1/64 of the case's ρ_w (a larger ball
    gives larger, still valid constants) so that plain GD does not recompute
    constants at every step.
    """

    def __init__(self, act, alpha0_text: str, m: int, T: int, rho_grid: float):
        self.act, self.alpha0, self.m, self.T = act, alpha0_text, m, T
        self.grid = rho_grid
        self.cache: dict[int, tuple] = {}

    def key(self, rho_w: float) -> int:
        return max(0, math.ceil(rho_w / self.grid - 1e-12))

    def constants(self, rho_w: float):
        k = self.key(rho_w)
        if k not in self.cache:
            rho = iv.mpf(k) * iv.mpf(self.grid)
            a = iv.mpf(self.alpha0) + rho / iv.sqrt(iv.mpf(self.m))
            res = closed_form_constants(self.act, a, self.T)
            L = [float_up(x) if is_finite(x) else math.inf for x in res["L"]]
            B = [float_up(x) if is_finite(x) else math.inf for x in res["beta"]]
            self.cache[k] = (np.array(L), np.array(B))
        return self.cache[k]

    def __call__(self, rho_w: float, rho_u: float = 0.0):
        return self.constants(rho_w)[1]

    def L_for_radius(self, rho_w: float, rho_u: float = 0.0):
        return self.constants(rho_w)[0]


def _hoeffding_term(B_t, n, T, delta, m):
    """B_t √(4 log(2nT/δ)/m) (THEORY §6), as floats rounded up is not needed: observed."""
    return B_t * math.sqrt(4 * math.log(2 * n * T / delta) / m)


#: relative tolerance of the activation grid check (observed |σ^(k)| vs certified σ_k)
GRID_RTOL = 1e-12
#: relative tolerances of the lower-point check: ‖g_t‖ (exact derivative) and ‖H_t‖
#: (central differences of it, plus ten times their Richardson error estimate)
POINT_RTOL_L, POINT_RTOL_BETA = 1e-9, 1e-6


def _split_data_checks(messages: list[str]) -> tuple[list[str], list[str]]:
    """The data-specific checks split into failures and non-finite bounds (``unknown``:
    a bound that is not finite was not established, it did not fail)."""
    failed, not_finite = [], []
    for msg in messages:
        (not_finite if " is not finite" in msg.split("(")[0] else failed).append(msg)
    return failed, not_finite


def _activation_grid_check(ac) -> list[str]:
    """Failure reasons when an observed |σ^(k)(z)| (float, generated array code, on a grid
    of [−16, 16]) exceeds the certified upper end of σ_k: a certified sup below an observed
    value is wrong.  Catches a σ_k too small by more than about 10⁻⁵ of its value."""
    from symbolic import activation_functions

    z = np.linspace(-16.0, 16.0, 16385)
    with np.errstate(all="ignore"):
        values = activation_functions(ac.activation).d012_array(z, ns=np)
    out = []
    for k, (v, sig) in enumerate(zip(values, (ac.sigma0, ac.sigma1, ac.sigma2), strict=True)):
        a = np.abs(np.asarray(v, dtype=float))
        a = np.where(np.isfinite(a), a, 0.0)
        i = int(np.argmax(a))
        if a[i] > float_up(sig) * (1 + GRID_RTOL):
            out.append(f"sigma{k}: certified {upper_string(sig)} below the observed "
                       f"|σ^({k})({z[i]:.6g})| = {a[i]:.17g}")
    return out


def _point_sensitivities(theta, X, activation, shift=None):
    """g_t of each point (neuron θ_i) at every sample and step, (P, n, T, p), by the
    executor's forward mode (the derived ``jvp`` template, one direction per coordinate;
    not the ``g_w``/``g_u`` templates of the certifier).  Observed."""
    from .train import rnn

    th = theta if shift is None else theta + shift
    P, p = th.shape
    out = np.empty((P, X.shape[0], X.shape[1], p))
    for a in range(p):
        v = np.zeros((P, p))
        v[:, a] = 1.0
        out[..., a] = rnn.jvp(th[:, 0], th[:, 1:], X, v[:, 0], v[:, 1:], activation)
    return out


def _point_hessians(theta, X, activation, h):
    """(H(h), H(h/2)): central differences of g_t in θ, symmetrized, (P, n, T, p, p)."""
    P, p = theta.shape
    res = []
    for step in (h, h / 2):
        H = np.empty((P, X.shape[0], X.shape[1], p, p))
        for b in range(p):
            e = np.zeros((P, p))
            e[:, b] = step
            H[..., b] = (_point_sensitivities(theta, X, activation, e)
                         - _point_sensitivities(theta, X, activation, -e)) / (2 * step)
        res.append((H + np.swapaxes(H, -1, -2)) / 2)
    return res


def _lower_points_check(lower, X, activation) -> list[str]:
    """Failure reasons when a data-specific lower bound is not reproduced at its point by
    the executor's own derivative code (forward mode of :mod:`certify.train.rnn`; ‖H_t‖₂ by
    central differences of it): the certifier's generated g_t/H_t code and the
    executor's derivatives disagree (a wrong template, a sign)."""
    pts = [(kind, t, pt) for kind in ("L", "beta")
           for t, pt in enumerate(lower["points"][kind])
           if math.isfinite(lower[kind][t]) and lower[kind][t] > 0]
    if not pts:
        return []
    theta = np.array([pt["theta"] for _, _, pt in pts], dtype=float)
    samples = sorted({int(pt["sample"]) for _, _, pt in pts})  # only the points' samples
    Xs = np.asarray(X)[samples]
    h = 2.0 ** -17 * max(1.0, float(np.max(np.abs(theta))))
    g = _point_sensitivities(theta, Xs, activation)
    H1, H2 = _point_hessians(theta, Xs, activation, h)
    out = []
    for i, (kind, t, pt) in enumerate(pts):
        j, reported = samples.index(int(pt["sample"])), float(lower[kind][t])
        if kind == "L":
            value, tol = float(np.linalg.norm(g[i, j, t])), POINT_RTOL_L
        else:
            n1, n2 = (float(np.max(np.abs(np.linalg.eigvalsh(H[i, j, t])))) for H in (H1, H2))
            value = (4 * n2 - n1) / 3
            tol = POINT_RTOL_BETA + 10 * abs(n1 - n2) / max(abs(n2), 1e-300)
        if not abs(value - reported) <= tol * max(abs(reported), abs(value)):
            out.append(f"t={t}: data-specific lower {kind} {reported:.10g} at (neuron "
                       f"{pt['neuron']}, sample {pt['sample']}) is {value:.10g} by the executor's "
                       "derivatives (the certifier's g_t/H_t code disagrees)")
    return out


def _rigor() -> dict:
    """The certificate's ``rigor`` section: :data:`RIGOR` plus the checks of this module
    and the executor's resolution rule (a new dict; RIGOR is not changed)."""
    from .train.executor import ALLOWANCE_RULE

    out = {k: list(v) for k, v in RIGOR.items()}
    out["checked"] = out.get("checked", []) + [
        f"executor.drift: an iterate counts as checked only if {ALLOWANCE_RULE}; "
        "pass needs every iterate checked (executor.drift.not_checked_by_reason)",
        "executor.gradient_check: reverse-mode gradient vs central differences at the first "
        "and last iterate",
        "activation: no observed |σ^(k)| on a grid of [−16, 16] above the certified σ_k",
        "constants.lower: each lower bound reproduced at its point by the executor's "
        "derivatives (forward mode; ‖H_t‖ by central differences)",
    ]
    return out


def _executor_checks(res, case, beta_drift) -> tuple[list[str], list[str]]:
    """(failures, not established) of the executor's run: the run is the case's, its record
    is consistent, no drift violation, projected GD stayed in Ω_ρ, the gradient agrees
    with central differences; every iterate checked and the gradient confirmed (else
    ``unknown``, with the counts per reason)."""
    failed = _audit_record(res, case)
    if res.beta_case is not None and not np.array_equal(res.beta_case, beta_drift):
        failed.append("executor used β_t of Ω_ρ other than the certified drift β_t "
                      "(constants.drift_beta)")
    if res.violations:
        failed.append(f"drift inequality violated at {len(res.violations)} iterate(s), first "
                      f"k={res.violations[0]} (min slack {res.min_slack:.3e} at "
                      f"k={res.argmin_slack})")
    if case.train.algorithm == "pgd" and res.exit_time is not None:
        k = res.exit_time
        failed.append(f"projected GD iterate k={k} outside Ω_ρ (radius ({res.radius_w[k]:.6g}, "
                      f"{res.radius_u[k]:.6g}), ρ = ({res.rho[0]:g}, {res.rho[1]:g}))")
    if res.gradient_check.get("status") == "mismatch":
        bad = [p for p in res.gradient_check["points"] if p["status"] == "mismatch"]
        failed.append("executor gradient disagrees with central differences of the loss at "
                      + ", ".join(f"k={p['k']} (relative error {p['rel_err']:.3g})"
                                  for p in bad))
    unsure = _gradient_not_confirmed(res.gradient_check)
    text = res.not_checked_text()
    return failed, ([text] if text else []) + unsure


def _gradient_not_confirmed(check: dict) -> list[str]:
    """``unknown`` when the executor's gradient was not confirmed at some point: without
    that, the iterates checked may not be gradient descent at all (a pass needs it)."""
    unsure = [p for p in check.get("points", []) if p["status"] in ("inconclusive", "skipped")]
    if not unsure:
        return []
    why = {"inconclusive": "the two central-difference estimates disagree by more than 1%",
           "skipped": "zero or non-finite gradient"}
    return ["executor gradient not confirmed by central differences at "
            + ", ".join(f"k={p['k']} ({p['status']}: {why[p['status']]})" for p in unsure)]


def _audit_record(res, case) -> list[str]:
    """Failure reasons when the executor's record is not the case's run or is not
    consistent with its own definitions (every iterate recorded, LHS = next Ψ, RHS and
    slack recomputed, a checked iterate fully finite, the violations recomputed)."""
    tr, tau = case.train, int(case.train.iterations)
    out = []
    ran = (res.eta, res.iterations, res.algorithm, res.loss_kind)
    asked = (float(tr.eta), tau, tr.algorithm, tr.loss)
    if ran != asked:
        out.append(f"executor ran (eta, iterations, algorithm, loss) = {ran}, the case "
                   f"asks for {asked}")
    arrays = (res.loss, res.psi, res.lhs, res.rhs, res.slack, res.fp_allowance, res.checked)
    if any(len(a) != tau for a in arrays) or len(res.radius_w) != tau + 1:
        return out + [f"executor recorded {len(res.loss)} of {tau} iterates"]
    chk = np.asarray(res.checked, dtype=bool)
    psi, lhs, slack, fp = res.psi, res.lhs, res.slack, res.fp_allowance
    eta, Rb = np.float64(res.eta), np.float64(res.loss_comparator)
    with np.errstate(all="ignore"):  # huge steps overflow to inf: then not finite
        rhs = psi - 2 * eta * (res.loss - Rb) + 2 * eta * res.E + eta * eta * res.grad_sq
        mag = psi + 2 * eta * (np.abs(res.loss) + abs(Rb) + res.E) + eta * eta * res.grad_sq
        bad = chk & ~(np.isfinite(lhs) & np.isfinite(res.rhs) & np.isfinite(slack)
                      & np.isfinite(fp) & (np.abs(rhs - res.rhs) <= 1e-12 * mag)
                      & (slack == res.rhs - lhs))
    bad[:-1] |= chk[:-1] & (lhs[:-1] != psi[1:])
    if bad.any():
        out.append(f"executor record inconsistent at {int(bad.sum())} checked iterate(s), "
                   f"first k={int(np.nonzero(bad)[0][0])} (non-finite, or LHS/RHS/slack not "
                   "as defined)")
    viol = [int(k) for k in np.nonzero(chk & (slack < -fp))[0]]
    if viol != list(res.violations):
        out.append(f"executor reports violations {list(res.violations)[:5]}, its record shows "
                   f"{viol[:5]}")
    return out


@dataclass
class _Findings:
    """What the checks found so far: ``failed`` makes the verdict ``fail``; ``unknown``
    (a bound not established, an iterate not checked) makes it ``unknown``."""

    failed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def verdict(self) -> str:
        return "fail" if self.failed else ("unknown" if self.unknown else "pass")

    def reasons(self) -> list[str]:
        return self.failed + (self.unknown if self.verdict() == "unknown" else [])


class _Clock:
    """Names the stage on the progress display and records its wall time."""

    def __init__(self, progress):
        self.progress, self.timings = progress, {}

    @contextmanager
    def __call__(self, stage: str, key: str):
        if self.progress is not None:
            self.progress.set_stage(stage)
        t0 = time.perf_counter()
        yield
        self.timings[key] = time.perf_counter() - t0


@dataclass(frozen=True)
class _ClosedForm:
    """The closed-form constants of the case's ball: enclosures, and floats rounded up."""

    a_m: object  # interval α_m
    cf: dict  # closed_form_constants(...): "q", "L", "beta" as intervals
    L: list[float]
    beta: list[float]

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for v in self.L + self.beta)


@dataclass(frozen=True)
class _DataSpecific:
    """The data-specific constants as the certificate shows them, and the drift constants
    they tighten (the smaller of closed form and certified, where finite)."""

    dc: object  # bounds.data_constants.DataConstants
    certified: dict
    lower: object
    L_drift: list[float]
    beta_drift: list[float]


def _closed_form(case, act) -> _ClosedForm:
    a_m = alpha_m_interval(case.init_spec.alpha0.text, case.ball.rho_w.text, case.width)
    cf = closed_form_constants(act, a_m, case.data.X.shape[1])
    return _ClosedForm(a_m, cf, [float_up(x) for x in cf["L"]],
                       [float_up(x) for x in cf["beta"]])


def _certify_data_specific(case, act, a_m, *, jobs, engine, progress, scheduler=None):
    from .bounds.data_constants import Ball, BoundsSettings, certify_data_constants

    c = case.certify
    return certify_data_constants(
        act, case.data.X, case.init, Ball(case.width, case.ball.rho_w.text, case.ball.rho_u.text),
        alpha_m=a_m, T=case.data.X.shape[1],
        settings=BoundsSettings(rel_tol=c.rel_tol, box_budget=c.box_budget, jobs=jobs,
                                engine=engine, seed=case.init_spec.seed,
                                lower_samples=c.lower_samples,
                                memory_cap_mb=c.memory_cap_mb, scheduler=scheduler,
                                time_limit_s=c.time_limit_s),
        progress=(progress.substage if progress is not None else None))


def _data_specific(dc, closed: _ClosedForm, X, act, found: _Findings) -> _DataSpecific:
    """The certificate's view of the data-specific constants, their checks, and the drift
    constants: certified where finite, else the closed form (and ``unknown``)."""
    dj = dc.to_json()
    certified = {k: dj[k] for k in ("engine", "screen_engine", "norm_method", "argmax",
                                    "boxes", "budget_exhausted", "settings", "notes",
                                    "tightness")}
    certified = {"L": dj["certified"]["L"], "beta": dj["certified"]["beta"]} | certified
    failed, not_finite = _split_data_checks(dc.checks())
    found.failed += failed
    found.unknown += not_finite
    L_drift, beta_drift = list(closed.L), list(closed.beta)
    for t in range(len(L_drift)):
        cL, cB = float_up(dc.certified_L[t]), float_up(dc.certified_beta[t])
        if not (math.isfinite(cL) and math.isfinite(cB)):
            if not any(msg.startswith(f"t={t}: ") for msg in not_finite):
                found.unknown.append(f"t={t}: data-specific bound not finite")
            continue
        L_drift[t] = min(L_drift[t], cL)
        beta_drift[t] = min(beta_drift[t], cB)
    found.failed += _lower_points_check(dj["lower"], X, act)
    certified["timings"] = dj["timings"]
    return _DataSpecific(dc, certified, dj["lower"], L_drift, beta_drift)


def _comparator(case, act, threads=None):
    """Θ̄: the transport map's image where the target has one, else the linearized fit."""
    from .train.comparator import ComparatorSettings, linearized_comparator, transport_comparator

    c, w0, U0 = case.init.c, case.init.w0, case.init.U0
    X, Y = case.data.X, case.data.Y
    cset = ComparatorSettings(rho_w=float(case.ball.rho_w), rho_u=float(case.ball.rho_u),
                              activation=act, loss=case.train.loss, threads=threads)
    tmap = case.target_info.transport_map
    if tmap is not None:
        return transport_comparator(w0, U0, c, tmap(w0, U0), X, Y, cset)
    return linearized_comparator(w0, U0, c, X, Y, cset)


def _comparator_loss_bound(case, closed: _ClosedForm) -> float | None:
    """A-priori bound of R̂(Θ̄) from §5 and §6 (transport targets): linearization
    β_t ν̄²/(2√m) plus the Hoeffding term, holding with probability ≥ 1−δ."""
    tinfo = case.target_info
    if not (tinfo.in_class and tinfo.nu_w is not None):
        return None
    n, T, _ = case.data.X.shape
    m = case.width
    nu2 = float(tinfo.nu_w) ** 2 + float(tinfo.nu_u) ** 2
    delta = float(case.certify.delta)
    steps = [T - 1] if case.train.loss == "final-step" else list(range(T))
    total = 0.0
    for t in steps:
        lin = closed.beta[t] * nu2 / (2 * math.sqrt(m))
        hoeff = _hoeffding_term(math.sqrt(nu2) * closed.L[t], n, T, delta, m)
        total += 0.5 * (lin + hoeff) ** 2
    return total / len(steps)


def _train(case, act, comp, drift: tuple[list, list], comp_bound, *, backend, progress,
           threads=None):
    """GD / projected GD on the case, checked against the drift constants ``(L, β)``."""
    from .train import executor as ex_mod

    L_drift, beta_drift = drift
    rho_w, rho_u = float(case.ball.rho_w), float(case.ball.rho_u)
    bfr = _BetaForRadius(act, case.init_spec.alpha0.text, case.width, case.data.X.shape[1],
                         rho_grid=max(rho_w, 1e-3) / 64)
    return ex_mod.train(
        case.init.w0, case.init.U0, case.init.c, case.data.X, case.data.Y, comp,
        settings=ex_mod.TrainSettings(
            eta=float(case.train.eta), iterations=case.train.iterations, rho_w=rho_w,
            rho_u=rho_u, algorithm=case.train.algorithm, activation=act,
            loss=case.train.loss, backend=backend, fp_factor=case.certify.fp_factor,
            threads=threads, progress=(progress.iteration if progress is not None else None)),
        constants=ex_mod.DriftConstants(
            beta=np.array(beta_drift), L=np.array(L_drift), beta_for_radius=bfr,
            L_for_radius=bfr.L_for_radius, comparator_loss_bound=comp_bound))


def _check_run(res, case, beta_drift, comp_bound, found: _Findings) -> dict:
    """The executor's checks, and its a-priori block (with the comparator's bound)."""
    failed, not_established = _executor_checks(res, case, beta_drift)
    found.failed += failed
    found.unknown += not_established
    ap = dict(res.apriori)
    if comp_bound is not None:
        ap["comparator_bound"] = comp_bound
        ap["comparator_bound_note"] = (
            "mean_t ½(β_t ν̄²/(2√m) + ν̄ L_t √(4 log(2nT/δ)/m))²: a bound of R̂(Θ̄) from "
            "THEORY §5–6 that holds with probability ≥ 1−δ over the initialization")
    if ap.get("applicable") and ap.get("holds") is False:
        found.failed.append(f"a-priori bound {ap.get('bound'):.4g} below the observed average "
                            f"loss {ap.get('observed'):.4g}")
    if not all(v is not None for v in float_list(res.loss)):
        found.unknown.append("the executor produced a non-finite loss")
    return ap


def run(case, *, backend: str = "numpy", jobs: int = 1, progress=None,
        engine: str | None = None, scheduler: str | None = None,
        threads: int | None = None) -> Certificate:
    """Certify one loaded case; returns the certificate (nothing is written).

    ``engine``: the trusted interval engine of the data-specific bounds
    ("mpmath.iv" or "python-flint"); None: the case's ``[certify].engine``.
    ``scheduler``: a dask.distributed scheduler address; the data-specific bounds'
    neuron chunks and trusted tasks then run on that cluster (same result).
    ``threads``: NumPy threads of the executor and the comparator (None: the cores;
    results do not depend on it).
    """
    engine = canonical_engine(engine or getattr(case.certify, "engine", None))
    found, clock = _Findings(), _Clock(progress)
    with clock("activation constants", "activation"):  # certified
        ac = certify_activation(case.activation)
        found.failed += _activation_grid_check(ac)
    with clock("closed-form constants", "closed_form"):  # certified, the case's ball
        closed = _closed_form(case, ac.activation)
    if not closed.finite:
        found.unknown.append("closed-form constants are not finite")
    ds = None
    if case.certify.data_specific:  # certified upper, observed lower
        with clock("data-specific constants", "data_constants"):
            dc = _certify_data_specific(case, ac.activation, closed.a_m, jobs=jobs,
                                        engine=engine, progress=progress,
                                        scheduler=scheduler)
        ds = _data_specific(dc, closed, case.data.X, ac.activation, found)
    drift = (ds.L_drift, ds.beta_drift) if ds is not None else (closed.L, closed.beta)
    with clock("comparator", "comparator"):  # observed from here on
        comp = _comparator(case, ac.activation, threads)
    if case.train.algorithm == "pgd" and not comp.in_ball:
        found.failed.append(f"comparator outside Ω_ρ (radius {comp.radius}) with projected GD")
    comp_bound = _comparator_loss_bound(case, closed)
    with clock("executor", "executor"):
        res = _train(case, ac.activation, comp, drift, comp_bound, backend=backend,
                     progress=progress, threads=threads)
    ap = _check_run(res, case, drift[1], comp_bound, found)
    doc = _document(case, _Outcome(ac, closed, ds, drift[1], comp, res, found), backend,
                    clock.timings)
    doc["executor"]["apriori"] = _clean(ap | {"curve": _apriori_curve(res, ap)})
    if case.data.X_test is not None:
        doc["executor"]["held_out"] = _held_out(case, res, ac.activation)
    return Certificate(_clean(doc))


def _held_out(case, res, act) -> dict:
    """The error on the held-out samples (observed, float64) at the last iterate and at
    Θ(0), and their ratio: what a search for the samples needed reads."""
    from .train import rnn

    risk = rnn.Risk(case.init.c, case.data.X_test, case.data.Y_test, act, case.train.loss)
    loss = risk.value(res.w_final, res.U_final)
    init = risk.value(case.init.w0, case.init.U0)
    return {"n": int(case.data.X_test.shape[0]), "loss": finite_or_none(loss),
            "loss_at_init": finite_or_none(init),
            "relative": finite_or_none(loss / init) if init > 0 else None}


@dataclass(frozen=True)
class _Outcome:
    """Everything the certificate reports, stage by stage."""

    ac: object  # the activation's certified constants
    closed: _ClosedForm
    ds: _DataSpecific | None
    beta_drift: list[float]
    comp: object  # the comparator
    res: object  # the executor's RunResult
    found: _Findings


def _constants_block(o: _Outcome, T: int) -> dict:
    cf, q = o.closed.cf, o.closed.cf["q"]
    ratios = max_ratio = None
    if o.ds is not None:
        dc, L, B = o.ds.dc, o.closed.L, o.closed.beta
        ratios = [float_up(dc.certified_L[t]) / L[t] for t in range(T)]
        ratios += [float_up(dc.certified_beta[t]) / B[t] for t in range(T) if B[t] > 0]
        max_ratio = finite_or_none(max(ratios))
    return {
        "t": list(range(T)),
        "alpha_m": interval_strings(o.closed.a_m),
        "q": interval_strings(q),
        "regime": _regime(q),
        "closed_form": {"L": [interval_strings(x) for x in cf["L"]],
                        "beta": [interval_strings(x) for x in cf["beta"]]},
        "certified": o.ds.certified if o.ds is not None else None,
        "lower": o.ds.lower if o.ds is not None else None,
        "ratios": ratios,
        "drift_beta": [upper_string(iv.mpf(b)) for b in o.beta_drift],
        "max_certified_over_closed": max_ratio,
    }


def _document(case, o: _Outcome, backend: str, timings: dict) -> dict:
    """The certificate's fields in the order of the schema (INTERFACE.md)."""
    tinfo, comp = case.target_info, o.comp
    used_engine = o.ds.dc.engine if o.ds is not None else ENGINE
    return {
        "schema_version": SCHEMA_VERSION,
        "case": {"name": case.name, "path": str(case.path), "sha256": case.sha256},
        "description": case.description,
        "environment": environment(backend, o.res.device, interval_engine_label(used_engine)),
        "seeds": case.seeds,
        "rigor": _rigor(),
        "activation": o.ac.to_json(),
        "constants": _constants_block(o, case.data.X.shape[1]),
        "target": {"kind": tinfo.kind, "in_class": tinfo.in_class,
                   "description": tinfo.description,
                   "mc_draws": tinfo.mc_draws,
                   "max_stderr": finite_or_none(tinfo.max_stderr)},
        "comparator": {k: (finite_or_none(v) if isinstance(v, float) else v)
                       for k, v in comp.summary().items() if k != "radius"}
        | {"radius": [finite_or_none(r) for r in comp.radius]},
        "executor": _executor_block(o.res),
        "verdict": o.found.verdict(),
        "reasons": o.found.reasons(),
        "timings": timings,
    }


def _executor_block(res) -> dict:
    """The certificate's ``executor`` block: the executor's summary plus per-iterate
    slack, allowance and radius (observed)."""
    out = res.summary()
    out["drift"]["slack"] = float_list(res.slack)
    out["drift"]["fp_allowance_values"] = float_list(res.fp_allowance)
    out["drift"]["checked"] = int(np.sum(res.checked))
    out["drift"]["lhs"] = float_list(res.lhs)
    out["drift"]["rhs"] = float_list(res.rhs)
    return out


def _apriori_curve(res, ap) -> list | None:
    """The a-priori bound on the running average after τ' = 1..τ steps (for the plot)."""
    if not ap.get("applicable") or not ap.get("eta_L2"):
        return None
    eta, lam_eta = float(res.eta), float(ap["eta_L2"])
    psi0, Rb = float(res.psi[0]), float(res.loss_comparator)
    E = np.asarray(res.E, dtype=float)
    k = np.arange(1, len(E) + 1)
    curve = (Rb + psi0 / (2 * eta * k) + np.cumsum(E) / k) / (1 - lam_eta)
    return float_list(curve)


def _clean(obj):
    """JSON-safe copy: floats finite or None, numpy scalars to Python."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return finite_or_none(obj)
    return obj


def certify_case_file(path, out_dir: Path | None, *, backend: str = "numpy", jobs: int = 1,
                      report: bool = True, progress=None, engine: str | None = None,
                      scheduler: str | None = None) -> dict:
    """Load, certify, write ``NAME.json`` and ``NAME.md``; returns the certificate dict.

    A bad case file raises :class:`UserError` before anything is written.
    ``out_dir=None`` writes nothing (the parallel workers: the parent writes).
    """
    from .cases.case import load_case

    t0 = time.perf_counter()
    case = load_case(path)
    load_s = time.perf_counter() - t0
    cert = run(case, backend=backend, jobs=jobs, progress=progress, engine=engine,
               scheduler=scheduler)
    cert.data["timings"] = {"load": load_s, **cert.data["timings"]}
    if out_dir is not None:
        write_outputs(cert.data, Path(out_dir), report=report)
    return cert.data


def write_outputs(cert: dict, out_dir: Path, *, report: bool = True) -> None:
    """With ``report``, ``NAME.md`` and its plots; then ``NAME.json`` (atomically).

    The certificate comes last: a run stopped in between (Ctrl-C) leaves no
    certificate whose report is missing, and a folder's certificates are exactly
    its finished cases.
    """
    if report:
        from .output.report import write_report

        write_report(cert, out_dir)
    Certificate(cert).write(Path(out_dir) / f"{cert['case']['name']}.json")


def _ignore_sigint() -> None:
    """Pool initializer: Ctrl-C reaches the whole process group; only the parent acts on
    it (and terminates the workers), so a worker never turns it into a result."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker(args):
    """Certify one file in a pool process; writes nothing (the parent writes)."""
    path, backend, engine = args
    try:
        return (str(path), certify_case_file(path, None, backend=backend, engine=engine), None)
    except UserError as exc:
        return (str(path), None, str(exc))


def _validate_all(files) -> None:
    """Validate every case file and reject two files with the same ``name`` (their
    certificates would overwrite each other); raises :class:`UserError`."""
    from .cases.case import load_case

    seen: dict[str, Path] = {}
    for f in files:
        name = load_case(f, build=False).name
        if name in seen:
            raise UserError(f"{f}: name: {name!r} is also the name of {seen[name]} "
                            f"(both would write {name}.json)")
        seen[name] = f


def _run_parallel(files, out_dir: Path, *, backend, jobs, report, progress, engine) -> dict:
    """Cases in ``jobs`` worker processes; the parent writes each result as it arrives.

    On Ctrl-C (or any error) the pending cases are dropped and the workers terminated
    at once; nothing more is written.  Returns {path: certificate dict}.
    """
    import multiprocessing

    certs: dict[str, dict] = {}
    pool = multiprocessing.Pool(min(jobs, len(files)), initializer=_ignore_sigint)
    try:
        tasks = [(str(f), backend, engine) for f in files]
        for k, (path, cert, err) in enumerate(pool.imap_unordered(_worker, tasks), 1):
            if err:
                raise UserError(err)
            if progress is not None:
                progress.start_case(k, cert["case"]["name"])
            write_outputs(cert, out_dir, report=report)
            certs[path] = cert
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return certs


def run_many(files, out_dir: Path, *, backend="numpy", jobs=1, report=True, progress=None,
             engine=None, scheduler=None):
    """Certify many case files; returns [(name, verdict, reasons)] in the order of ``files``.

    ``engine`` (a name, or None: each case's ``[certify].engine``) overrides the
    cases' interval engine of the data-specific bounds.

    Before any computation: every file is validated, two files with the same
    ``name`` are rejected, and ``out_dir`` is checked to be a writable folder (a
    :class:`UserError` then, with nothing written).  With ``jobs > 1`` and several
    files, cases run in parallel processes; with one file, ``jobs`` goes to the
    neuron-parallel certifier.  With ``scheduler`` (a dask.distributed address) the
    cases run one after the other, each fanning its data-specific bounds out over
    that cluster.
    """
    from .output.certificate import check_out_dir

    files = [Path(f) for f in files]
    out_dir = Path(out_dir)
    _validate_all(files)
    check_out_dir(out_dir)
    if jobs > 1 and len(files) > 1 and not scheduler:
        certs = _run_parallel(files, out_dir, backend=backend, jobs=jobs, report=report,
                              progress=progress, engine=engine)
        results = [certs[str(f)] for f in files]
    else:
        results = []
        for k, f in enumerate(files, 1):
            if progress is not None:
                progress.start_case(k, f.stem)
            results.append(certify_case_file(f, out_dir, backend=backend, jobs=jobs,
                                             report=report, progress=progress, engine=engine,
                                             scheduler=scheduler))
    return [(c["case"]["name"], c["verdict"], c["reasons"]) for c in results]
