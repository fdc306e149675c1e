"""Derived results of the shipped experiments (``[experiment].kind``), for summary.json.

- ``width-vs-n``: the widths the search found, fitted as m ≈ a + b·log n and as
  m ≈ c·n^p (both by least squares: the first in m, the second in log m), compared by
  the root-mean-square error in m of each fit over the same points (both have two
  parameters, so this ranks them as AIC would); fewer than 3 points: undecided.
- ``memory-cutoff``: for each q, how L_{T-1} and β_{T-1} (closed form, certified upper)
  grow with T: the slope of log L against T (exponential rate) and against log T
  (polynomial degree), and the regime that q puts it in.
- ``pgd-vs-gd`` and ``concept-classes``: the rows grouped side by side (by algorithm;
  by target kind), with exit time, iterations to the target, final error and verdict.

Each derived number says whether it rests on observed or certified values.
"""

from __future__ import annotations

import math

import numpy as np


def _num(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fit_log_and_power(ns, ms, resolution: float = 0.0) -> dict:
    """Fit m ≈ a + b·log n and m ≈ c·n^p; which is better, by RMSE in m.

    ``resolution``: the search's step in m; the values found are rounded up to it, an
    error of standard deviation step/√12, and RMSEs that differ by less than that (or by
    less than 5%) do not tell the fits apart."""
    pts = [(n, m) for n, m in zip(ns, ms, strict=True) if n and m]
    noise = resolution / math.sqrt(12)
    out = {"points": [[n, m] for n, m in pts], "resolution_rmse": noise,
           "criterion": "smaller root-mean-square error in m over the same points (both fits "
                        "have two parameters; equivalent to AIC); undecided with < 3 points, "
                        "or when the RMSEs differ by less than 5% or than the rounding error "
                        "of the search grid (step/√12)"}
    if len({n for n, _ in pts}) < 2:  # no fit through one n
        return out | {"better": "undecided", "log": None, "power": None}
    n = np.array([p[0] for p in pts], float)
    m = np.array([p[1] for p in pts], float)
    b, a = np.polyfit(np.log(n), m, 1)
    p, logc = np.polyfit(np.log(n), np.log(m), 1)
    rmse_log = float(np.sqrt(np.mean((a + b * np.log(n) - m) ** 2)))
    rmse_pow = float(np.sqrt(np.mean((math.exp(logc) * n ** p - m) ** 2)))
    better = "undecided"
    if len(pts) >= 3 and abs(rmse_log - rmse_pow) > max(0.05 * max(rmse_log, rmse_pow), noise):
        better = "log" if rmse_log < rmse_pow else "power"
    return out | {"better": better,
                  "log": {"a": float(a), "b": float(b), "rmse": rmse_log},
                  "power": {"c": math.exp(logc), "p": float(p), "rmse": rmse_pow}}


def width_vs_n(spec, search: list[dict]) -> dict:
    x = spec.experiment.x or "data.n"
    fits = {}
    for crit in spec.search.criteria if spec.search else ():
        ns = [_num(r["point"].get(x)) for r in search]
        ms = [r[crit]["value"] for r in search]
        fits[crit] = fit_log_and_power(ns, ms, spec.search.step) | {
            "rigor": "observed (final training error)" if crit == "observed" else
            "certified constants, observed run (a-priori bound of THEORY §7 with §5–6)"}
    return {"fit": fits}


def _groups(rows: list[dict], varied: list[str], leave_out: tuple[str, ...]) -> dict:
    keys = [k for k in varied if k not in leave_out]
    out: dict = {}
    for r in rows:
        out.setdefault(tuple((k, label(r.get(k))) for k in keys), []).append(r)
    return out


def _slope(xs, ys) -> float | None:
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if x and y and y > 0]
    if len(pts) < 2:
        return None
    return float(np.polyfit([p[0] for p in pts], [math.log(p[1]) for p in pts], 1)[0])


def memory_cutoff(spec, rows: list[dict]) -> dict:
    x = spec.experiment.x or "data.steps"
    out = []
    for key, rs in _groups(rows, spec.varied, (x,)).items():
        rs = sorted((r for r in rs if r["verdict"] != "failed"), key=lambda r: _num(r[x]))
        if not rs:
            continue
        T = [_num(r[x]) for r in rs]
        q = _num(rs[0]["q"])
        growth = {}
        for col in ("L_last", "beta_last"):
            ys = [_num(r[col]) for r in rs]
            growth[col] = {"exp_rate_per_step": _slope(T, ys),
                           "poly_degree": _slope([math.log(t) for t in T], ys)}
        regime = ("bounded (q < 1)" if q is not None and q < 1 - 1e-9 else
                  "exponential (q > 1)" if q is not None and q > 1 + 1e-9 else
                  "polynomial (q = 1)")
        out.append({"point": dict(key), "q_upper": q, "regime": regime, "growth": growth,
                    "T": T, "verdicts": [r["verdict"] for r in rs],
                    "iters_to_target": [r.get("iters_to_target") for r in rs],
                    "rigor": "certified (closed-form enclosures, upper ends); iterations "
                             "observed"})
    return {"regimes": out}


def label(v) -> str:
    """A short label of a varied value (a whole table by its kind)."""
    if isinstance(v, dict):
        return str(v.get("kind", v))
    return str(v)


def side_by_side(spec, rows: list[dict], by: str) -> dict:
    cols = ("verdict", "exit_time", "iters_to_target", "final_loss", "seconds")
    out = []
    for key, rs in _groups(rows, spec.varied, (by,)).items():
        out.append({"point": dict(key),
                    "by": {label(r.get(by)): {c: r.get(c) for c in cols} for r in rs}})
    return {"compared": out, "by": by,
            "rigor": "observed (losses, exit time, iterations); verdict: the certificate"}


def derive(spec, rows: list[dict], search: list[dict] | None) -> dict:
    """The experiment's derived results (empty for a plain sweep)."""
    out: dict = {}
    if search is not None:
        out["search"] = {"key": spec.search.key, "target": spec.search.target,
                         "certified_target": spec.search.target_for("certified"),
                         "results": search}
    kind = spec.experiment.kind
    if kind == "width-vs-n" and search is not None:
        out |= width_vs_n(spec, search)
    elif kind == "memory-cutoff":
        out |= memory_cutoff(spec, rows)
    elif kind == "pgd-vs-gd":
        out |= side_by_side(spec, rows, "train.algorithm")
    elif kind == "concept-classes":
        by = "target" if "target" in spec.varied else "target.kind"
        out |= side_by_side(spec, rows, by)
        if search is not None:
            out |= samples_needed(spec, search, by)
    return out


def samples_needed(spec, search: list[dict], by: str) -> dict:
    """Per concept class (``by``), the value of the search key found along ``x``: with the
    key ``data.n`` and the ``held-out`` criterion, the samples needed."""
    x = spec.experiment.x or "data.steps"
    curves: dict = {}
    for r in search:
        pt = r["point"]
        for crit in spec.search.criteria:
            curves.setdefault(crit, {}).setdefault(label(pt.get(by)), []).append(
                {"x": pt.get(x), "value": r[crit]["value"], "reason": r[crit]["reason"]})
    for per in curves.values():
        for pts in per.values():
            pts.sort(key=lambda q: _num(q["x"]) or 0)
    return {"samples_needed": {"key": spec.search.key, "x": x, "by": by,
                               "target": spec.search.target, "curves": curves,
                               "rigor": "observed (errors of trained networks)"}}
