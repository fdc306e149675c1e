"""The pipeline: case → constants → executor → certificate (DESIGN.md).

:func:`run` certifies one loaded :class:`~certify.case.Case` and returns a
:class:`~certify.certificate.Certificate`; :func:`certify_case_file` loads a
file, runs it and writes ``NAME.json`` (atomically) and ``NAME.md``;
:func:`run_many` does that for many files, in parallel processes with
``jobs > 1``.

Verdict rules
-------------
``fail`` if any check fails: a data-specific certified constant above the
closed form, a drift violation beyond the floating-point allowance, the
a-priori bound below the observed average loss (when applicable), or the
comparator outside Ω_ρ for projected GD.  ``unknown`` if a needed bound is not
finite or could not be established (e.g. a box budget ran out before a finite
bound, or plain GD left every ball for which constants are finite); never
``pass`` on a bound that was not established.  ``pass`` otherwise.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from mpmath import iv

from .activation_constants import certify_activation, closed_form_constants
from .certificate import (
    RIGOR,
    SCHEMA_VERSION,
    Certificate,
    environment,
    finite_or_none,
    float_list,
)
from .engine import canonical_engine
from .errors import UserError
from .intervals import ENGINE, float_up, hi, interval_strings, is_finite, lo, upper_string


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


def run(case, *, backend: str = "numpy", jobs: int = 1, progress=None,
        engine: str | None = None) -> Certificate:
    """Certify one loaded case; returns the certificate (nothing is written).

    ``engine``: the trusted interval engine of the data-specific bounds
    ("mpmath.iv" or "python-flint"); None: the case's ``[certify].engine``.
    """
    from . import executor as ex_mod
    from .comparator import linearized_comparator, transport_comparator

    timings: dict[str, float] = {}
    reasons: list[str] = []
    unknown: list[str] = []
    engine = canonical_engine(engine or getattr(case.certify, "engine", None))

    def stage(name):
        if progress is not None:
            progress.set_stage(name)
        return time.perf_counter()

    # ---- activation constants (certified)
    t0 = stage("activation constants")
    ac = certify_activation(case.activation)
    timings["activation"] = time.perf_counter() - t0

    m = case.width
    X, Y = case.data.X, case.data.Y
    n, T, d = X.shape
    alpha0_text = case.init_spec.alpha0.text
    rho_w_text, rho_u_text = case.ball.rho_w.text, case.ball.rho_u.text

    # ---- closed-form constants of the case's ball (certified)
    t0 = stage("closed-form constants")
    a_m = alpha_m_interval(alpha0_text, rho_w_text, m)
    cf = closed_form_constants(ac.activation, a_m, T)
    q = cf["q"]
    closed_L = [float_up(x) for x in cf["L"]]
    closed_B = [float_up(x) for x in cf["beta"]]
    timings["closed_form"] = time.perf_counter() - t0
    if not all(math.isfinite(v) for v in closed_L + closed_B):
        unknown.append("closed-form constants are not finite")

    # ---- data-specific constants (certified upper, observed lower)
    certified = lower = ratios = None
    dc_summary = None
    beta_drift = list(closed_B)
    L_drift = list(closed_L)
    if case.certify.data_specific:
        from .data_constants import certify_data_constants

        t0 = stage("data-specific constants")
        dc = certify_data_constants(
            ac.activation, X, case.init, m=m, rho_w=rho_w_text, rho_u=rho_u_text,
            alpha_m=a_m, T=T, rel_tol=case.certify.rel_tol, box_budget=case.certify.box_budget,
            jobs=jobs, engine=engine, seed=case.init_spec.seed,
            lower_samples=case.certify.lower_samples,
            progress=(progress.substage if progress is not None else None))
        timings["data_constants"] = time.perf_counter() - t0
        dj = dc.to_json()
        certified = {"L": dj["certified"]["L"], "beta": dj["certified"]["beta"],
                     "engine": dj["engine"], "screen_engine": dj["screen_engine"],
                     "norm_method": dj["norm_method"], "argmax": dj["argmax"],
                     "boxes": dj["boxes"], "budget_exhausted": dj["budget_exhausted"],
                     "settings": dj["settings"], "notes": dj["notes"]}
        lower = dj["lower"]
        ratios = dj["ratios"]
        for t in range(T):
            cL, cB = float_up(dc.certified_L[t]), float_up(dc.certified_beta[t])
            if not (math.isfinite(cL) and math.isfinite(cB)):
                unknown.append(f"t={t}: data-specific bound not finite")
                continue
            L_drift[t] = min(L_drift[t], cL)
            beta_drift[t] = min(beta_drift[t], cB)
        reasons += dc.checks()
        dc_summary = dc
        certified["timings"] = dj["timings"]

    # ---- comparator and executor (observed, checked against certified constants)
    t0 = stage("comparator")
    tinfo = case.target_info
    c = case.init.c
    w0, U0 = case.init.w0, case.init.U0
    rho_w, rho_u = float(case.ball.rho_w), float(case.ball.rho_u)
    if tinfo.transport_map is not None:
        vw, vU = tinfo.transport_map(w0, U0)
        comp = transport_comparator(w0, U0, c, vw, vU, X, Y, rho_w, rho_u,
                                    ac.activation, case.train.loss)
    else:
        comp = linearized_comparator(w0, U0, c, X, Y, rho_w, rho_u, ac.activation,
                                     case.train.loss)
    timings["comparator"] = time.perf_counter() - t0
    if case.train.algorithm == "pgd" and not comp.in_ball:
        reasons.append(f"comparator outside Ω_ρ (radius {comp.radius}) with projected GD")

    # a-priori bound of R̂(Θ̄) from §5 and §6 (transport targets): linearization
    # β_t ν̄²/(2√m) plus the Hoeffding term, holding with probability ≥ 1−δ
    comp_bound = None
    if tinfo.in_class and tinfo.nu_w is not None:
        nu2 = float(tinfo.nu_w) ** 2 + float(tinfo.nu_u) ** 2
        delta = float(case.certify.delta)
        steps = [T - 1] if case.train.loss == "final-step" else list(range(T))
        total = 0.0
        for t in steps:
            lin = closed_B[t] * nu2 / (2 * math.sqrt(m))
            hoeff = _hoeffding_term(math.sqrt(nu2) * closed_L[t], n, T, delta, m)
            total += 0.5 * (lin + hoeff) ** 2
        comp_bound = total / len(steps)

    t0 = stage("executor")
    bfr = _BetaForRadius(ac.activation, alpha0_text, m, T, rho_grid=max(rho_w, 1e-3) / 64)
    res = ex_mod.train(
        w0, U0, c, X, Y, eta=float(case.train.eta), iterations=case.train.iterations,
        rho_w=rho_w, rho_u=rho_u, comparator=comp, algorithm=case.train.algorithm,
        beta=np.array(beta_drift), L=np.array(L_drift),
        beta_for_radius=bfr, L_for_radius=bfr.L_for_radius,
        activation=ac.activation, loss=case.train.loss, backend=backend,
        progress=(progress.iteration if progress is not None else None),
        comparator_loss_bound=comp_bound, fp_factor=case.certify.fp_factor)
    timings["executor"] = time.perf_counter() - t0

    if res.violations:
        reasons.append(f"drift inequality violated at {len(res.violations)} iterate(s), first "
                       f"k={res.violations[0]} (min slack {res.min_slack:.3e} at "
                       f"k={res.argmin_slack})")
    ap = dict(res.apriori)
    if comp_bound is not None:
        ap["comparator_bound"] = comp_bound
        ap["comparator_bound_note"] = (
            "mean_t ½(β_t ν̄²/(2√m) + ν̄ L_t √(4 log(2nT/δ)/m))²: a bound of R̂(Θ̄) from "
            "THEORY §5–6 that holds with probability ≥ 1−δ over the initialization")
    if ap.get("applicable") and ap.get("holds") is False:
        reasons.append(f"a-priori bound {ap.get('bound'):.4g} below the observed average loss "
                       f"{ap.get('observed'):.4g}")
    unchecked = len(res.not_checked)
    if unchecked:
        if case.train.algorithm == "pgd":
            unknown.append(f"{unchecked} iterate(s) could not be checked")
        elif unchecked == len(res.loss):
            unknown.append("no iterate could be checked (constants not finite)")

    observed_finite = all(v is not None for v in float_list(res.loss))
    if not observed_finite:
        unknown.append("the executor produced a non-finite loss")

    verdict = "fail" if reasons else ("unknown" if unknown else "pass")
    max_ratio = None
    if dc_summary is not None:
        ratios = [float_up(dc_summary.certified_L[t]) / closed_L[t] for t in range(T)]
        ratios += [float_up(dc_summary.certified_beta[t]) / closed_B[t] for t in range(T)
                   if closed_B[t] > 0]
        max_ratio = finite_or_none(max(ratios))

    used_engine = dc_summary.engine if dc_summary is not None else ENGINE
    doc = {
        "schema_version": SCHEMA_VERSION,
        "case": {"name": case.name, "path": str(case.path), "sha256": case.sha256},
        "description": case.description,
        "environment": environment(backend, res.device, interval_engine_label(used_engine)),
        "seeds": case.seeds,
        "rigor": RIGOR,
        "activation": ac.to_json(),
        "constants": {
            "t": list(range(T)),
            "alpha_m": interval_strings(a_m),
            "q": interval_strings(q),
            "regime": _regime(q),
            "closed_form": {"L": [interval_strings(x) for x in cf["L"]],
                            "beta": [interval_strings(x) for x in cf["beta"]]},
            "certified": certified,
            "lower": lower,
            "ratios": ratios if dc_summary is not None else None,
            "drift_beta": [upper_string(iv.mpf(b)) for b in beta_drift],
            "max_certified_over_closed": max_ratio,
        },
        "target": {"kind": tinfo.kind, "in_class": tinfo.in_class,
                   "description": tinfo.description,
                   "mc_draws": tinfo.mc_draws,
                   "max_stderr": finite_or_none(tinfo.max_stderr)},
        "comparator": {k: (finite_or_none(v) if isinstance(v, float) else v)
                       for k, v in comp.summary().items() if k != "radius"}
        | {"radius": [finite_or_none(r) for r in comp.radius]},
        "executor": _executor_block(res),
        "verdict": verdict,
        "reasons": reasons + (unknown if verdict == "unknown" else []),
        "timings": timings,
    }
    doc["executor"]["apriori"] = _clean(ap | {"curve": _apriori_curve(res, ap)})
    return Certificate(_clean(doc))


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


def certify_case_file(path, out_dir: Path, *, backend: str = "numpy", jobs: int = 1,
                      report: bool = True, progress=None, engine: str | None = None) -> dict:
    """Load, certify, write ``NAME.json`` and ``NAME.md``; returns the certificate dict.

    A bad case file raises :class:`UserError` before anything is written.
    """
    from .case import load_case

    t0 = time.perf_counter()
    case = load_case(path)
    load_s = time.perf_counter() - t0
    cert = run(case, backend=backend, jobs=jobs, progress=progress, engine=engine)
    cert.data["timings"] = {"load": load_s, **cert.data["timings"]}
    out_dir = Path(out_dir)
    cert.write(out_dir / f"{case.name}.json")
    if report:
        from .report import write_report

        write_report(cert.data, out_dir)
    return cert.data


def _worker(args):
    path, out_dir, backend, report, engine = args
    try:
        cert = certify_case_file(path, out_dir, backend=backend, report=report, engine=engine)
        return (cert["case"]["name"], cert["verdict"], cert["reasons"], None)
    except UserError as exc:
        return (Path(path).stem, "error", [], str(exc))


def run_many(files, out_dir: Path, *, backend="numpy", jobs=1, report=True, progress=None,
             engine=None):
    """Certify many case files; returns [(name, verdict, reasons)].

    ``engine`` (a name, or None: each case's ``[certify].engine``) overrides the
    cases' interval engine of the data-specific bounds.

    All files are validated first (a bad file stops the run before anything is
    written).  With ``jobs > 1`` and several files, cases run in parallel
    processes; with one file, ``jobs`` goes to the neuron-parallel certifier.
    """
    from .case import load_case

    for f in files:  # validate everything first: nothing written on a user mistake
        load_case(f, build=False)
    out = []
    if jobs > 1 and len(files) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for k, (name, verdict, reasons, err) in enumerate(pool.map(
                    _worker, [(f, out_dir, backend, report, engine) for f in files]), 1):
                if err:
                    raise UserError(err)
                if progress is not None:
                    progress.start_case(k, name)
                out.append((name, verdict, reasons))
        return out
    for k, f in enumerate(files, 1):
        if progress is not None:
            progress.start_case(k, Path(f).stem)
        cert = certify_case_file(f, out_dir, backend=backend, jobs=jobs, report=report,
                                 progress=progress, engine=engine)
        out.append((cert["case"]["name"], cert["verdict"], cert["reasons"]))
    return out
