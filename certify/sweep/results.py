"""results.csv and summary.json: one row per point, from its certificate.

Columns: ``id``, the varied keys named exactly as in the spec, then the certificate's
summary fields (:data:`FIELDS`).  The second line names the unit or the rigor of each
column (``certified`` upper bounds, ``observed`` floats); readers skip it
(``pandas.read_csv(path, skiprows=[1])``).  A failed point has verdict ``failed`` and
its reason; its numbers are empty.
"""

from __future__ import annotations

import csv
import io
import json
import math

#: (column, unit / rigor) after the varied keys
FIELDS = (
    ("verdict", "pass | fail | unknown | failed"),
    ("reason", "first reason"),
    ("avg_loss", "observed R̂, mean over iterations"),
    ("final_loss", "observed R̂ at the last iterate"),
    ("loss_comparator", "observed R̂(Θ̄)"),
    ("held_out_relative", "observed held-out error at the last iterate / at Θ(0) (empty: no "
                          "[data].test_n)"),
    ("min_slack", "observed, Ψ units (squared parameter distance)"),
    ("exit_time", "iteration (empty: never left Ω_ρ)"),
    ("iters_to_target", "iterations until R̂ ≤ target (relative: target·R̂(Θ(0)); empty: "
                        "not reached)"),
    ("q", "certified upper end of q = σ₁α_m"),
    ("L_closed_max", "certified upper, max over t"),
    ("L_certified_max", "certified upper (data-specific), max over t"),
    ("L_lower_max", "observed lower, max over t"),
    ("beta_closed_max", "certified upper, max over t"),
    ("beta_certified_max", "certified upper (data-specific), max over t"),
    ("beta_lower_max", "observed lower, max over t"),
    ("L_last", "certified upper, closed form at t = T-1"),
    ("beta_last", "certified upper, closed form at t = T-1"),
    ("apriori_bound", "bound of the mean R̂ (with observed R̂(Θ̄))"),
    ("apriori_bound_certified", "bound of the mean R̂ (with the §5–6 bound of R̂(Θ̄))"),
    ("seconds", "s, wall time of the point"),
)


def _hi(pair) -> float | None:
    try:
        return float(pair[1])
    except (TypeError, ValueError, IndexError):
        return None


def _max(xs) -> float | None:
    vals = [x for x in xs if x is not None and math.isfinite(x)]
    return max(vals) if vals else None


def _interval_max(block, key) -> float | None:
    if not block or key not in block:
        return None
    return _max(_hi(p) for p in block[key])


def iterations_to(losses, target: float | None, relative: bool = False) -> int | None:
    """The first iteration whose observed loss is ≤ target (``relative``: ≤ target ·
    the loss at iteration 0); None: never."""
    if target is None or not losses:
        return None
    if relative:
        if losses[0] is None:
            return None
        target = target * losses[0]
    return next((k for k, x in enumerate(losses or []) if x is not None and x <= target), None)


def row_from_certificate(cert: dict, target: float | None = None,
                         relative: bool = False) -> dict:
    """The summary fields of one certificate (the columns after the varied keys)."""
    ex, const = cert["executor"], cert["constants"]
    ap = ex.get("apriori") or {}
    lower = const.get("lower") or {}
    cf = const["closed_form"]
    return {
        "verdict": cert["verdict"],
        "reason": (cert.get("reasons") or [""])[0],
        "avg_loss": ex.get("avg_loss"), "final_loss": ex.get("final_loss"),
        "loss_comparator": ex.get("loss_comparator"),
        "held_out_relative": (ex.get("held_out") or {}).get("relative"),
        "min_slack": ex["drift"].get("min_slack"), "exit_time": ex.get("exit_time"),
        "iters_to_target": iterations_to(ex.get("loss"), target, relative),
        "q": _hi(const.get("q")),
        "L_closed_max": _interval_max(cf, "L"),
        "L_certified_max": _interval_max(const.get("certified"), "L"),
        "L_lower_max": _max(lower.get("L") or []),
        "beta_closed_max": _interval_max(cf, "beta"),
        "beta_certified_max": _interval_max(const.get("certified"), "beta"),
        "beta_lower_max": _max(lower.get("beta") or []),
        "L_last": _hi(cf["L"][-1]), "beta_last": _hi(cf["beta"][-1]),
        "apriori_bound": ap.get("bound") if ap.get("applicable") else None,
        "apriori_bound_certified": (ap.get("bound_certified_comparator")
                                    if ap.get("applicable") else None),
    }


def make_row(point, outcome, target: float | None = None, relative: bool = False) -> dict:
    """One results.csv row: the ID, the varied values, the summary fields."""
    from .execute import json_values

    row = {"id": point.id} | json_values(point.values)
    if outcome.status == "failed":
        row |= {k: None for k, _ in FIELDS} | {"verdict": "failed", "reason": outcome.reason}
    else:
        row |= row_from_certificate(outcome.certificate, target, relative)
    row["seconds"] = outcome.seconds
    return row


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list | dict):
        return json.dumps(v)
    return str(v)


def csv_text(varied: list[str], rows: list[dict]) -> str:
    """The text of results.csv: header, units line, one line per row."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ["id", *varied, *(k for k, _ in FIELDS)]
    w.writerow(cols)
    w.writerow(["(unit)", *("as in the spec" for _ in varied), *(u for _, u in FIELDS)])
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in cols])
    return buf.getvalue()


def read_csv(path) -> list[dict]:
    """results.csv back as dicts of strings (the units line skipped)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows[1:]


def counts(rows: list[dict]) -> dict:
    out = {"pass": 0, "fail": 0, "unknown": 0, "failed": 0}
    for r in rows:
        out[r["verdict"]] = out.get(r["verdict"], 0) + 1
    return out


def summary(spec, rows: list[dict], tally, derived: dict) -> dict:
    """summary.json: the counts, the failures, and the experiment's derived results."""
    return {
        "name": spec.name, "spec": str(spec.path), "base": str(spec.base_path),
        "description": spec.description, "varied": spec.varied,
        "points": len(rows), "already_done": tally.already, "computed": tally.done,
        "verdicts": counts(rows),
        "failed": [{"id": r["id"], "reason": r["reason"]} for r in rows
                   if r["verdict"] == "failed"],
        **derived,
    }
