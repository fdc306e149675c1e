"""Markdown reports with plots, one per certificate, and an index page.

A report answers at a glance: did the case pass, how much tighter than the paper's
closed-form constants are the certified ones (closed/certified), and how close to the
truth (certified/lower: the true constant lies between the observed lower bound and the
certified upper bound).  Per-iterate values stay in the JSON; the text gives their
formula, largest and median value.  The figures are drawn by :mod:`.figures`.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import figures
from .certificate import check_out_dir, validate, write_atomic
from .readout import (
    allowance_stats,
    apriori_text,
    fmt,
    headline,
    interval_text,
    num,
    tightness,
)

# the names earlier code and tests used
_fmt, _num = fmt, num


def _engine_of(cert) -> str:
    """The certificate's interval engine (``environment.interval_engine``)."""
    return str((cert.get("environment") or {}).get("interval_engine") or "mpmath.iv")


def _allowance_lines(fp) -> list[str]:
    """The floating-point allowance: its formula, then its largest and median value."""
    s = allowance_stats(fp)
    lines = []
    if s["formula"]:
        lines.append(f"- floating-point allowance (observed): `{s['formula']}`")
    else:
        lines.append("- floating-point allowance (observed):")
    if s["count"]:
        lines.append(f"  - largest {fmt(s['max'])}, median {fmt(s['median'])} over "
                     f"{s['count']} iterates (per-iterate values in the JSON)")
    else:
        lines.append("  - not finite at any iterate")
    return lines


def _not_checked_lines(drift: dict) -> list[str]:
    """Why iterates were not checked (counts per reason) and the allowance rule."""
    out = []
    by = drift.get("not_checked_by_reason") or {}
    legend = drift.get("not_checked_legend") or {}
    if by:
        out.append("- not checked: " + "; ".join(
            f"{n} × {legend.get(code, code)}" for code, n in by.items()))
    rule = drift.get("allowance_rule") or {}
    if isinstance(rule, dict) and rule.get("rule"):
        text = str(rule["rule"]).removeprefix("checked only if ")
        out.append(f"- an iterate counts as checked only if {text} "
                   f"(largest ratio {fmt(rule.get('ratio_max'))}, observed)")
    return out


def _gradient_line(gc) -> list[str]:
    if not isinstance(gc, dict):
        return []
    worst = max((num(p.get("rel_err")) or 0.0 for p in gc.get("points") or []), default=None)
    return [f"- gradient check ({gc.get('method') or 'central differences'}): "
            f"{gc.get('status')}, largest relative error {fmt(worst)} (observed)"]


def render(cert: dict, plots: dict[str, str]) -> str:
    """The Markdown report of one certificate, whatever its verdict: a missing, null
    (non-finite) or unreadable value prints as "—".

    Sections in order: title, verdict and the answers at a glance, overview, drift
    inequality, losses (with the loss and slack plots), constants per t, timings and
    provenance."""
    c = cert["case"]
    ex = cert.get("executor") or {}
    const = cert.get("constants") or {}
    act = cert.get("activation") or {}
    drift = ex.get("drift") or {}
    ap = ex.get("apriori") or {}
    env = cert.get("environment") or {}
    lines = _title(cert, c)
    lines += _glance(const)
    lines += _overview(cert, c, act, const, ex, env)
    lines += _drift_section(ex, drift)
    lines += _loss_section(ex, ap, plots)
    lines += _constants_section(const, plots)
    lines += _footer(cert, env)
    return "\n".join(lines)


def _title(cert: dict, c: dict) -> list[str]:
    """The case name and verdict, the description and the reasons for the verdict."""
    lines = [f"# {c.get('name')}: **{str(cert.get('verdict')).upper()}**", ""]
    if cert.get("description"):
        lines += [cert["description"], ""]
    if cert.get("reasons"):
        lines += ["Reasons:", ""] + [f"- {r}" for r in cert["reasons"]] + [""]
    return lines


def _times(x) -> str:
    return "—" if x is None else f"{x:.3g}×"


def gain_text(const: dict) -> str:
    """closed/certified of L and β at the last t (the gain over the paper's closed form)."""
    g = headline(const)["gain"]
    if not g:
        return "—"
    return ", ".join(f"{q.replace('beta', 'β')} {_times(g[q])}" for q in ("L", "beta") if q in g)


def worst_text(const: dict) -> str:
    """max over t of certified/lower for L and β, with the t where it is worst."""
    w = headline(const)["worst"]
    if not w:
        return "—"
    text = ", ".join(f"{q.replace('beta', 'β')} {_times(w[q][0])} (t={w[q][1]})"
                     for q in ("L", "beta") if q in w)
    tj = (const.get("certified") or {}).get("tightness")
    if isinstance(tj, dict) and not tj.get("reached"):
        text += f"; short of target {fmt(tj.get('target'), 3)}×"
    return text


def _glance(const: dict) -> list[str]:
    """The two questions besides the verdict: tighter than the paper by how much, and how
    close to the truth."""
    if const.get("certified") is None:
        return ["- no data-specific bounds in this certificate (`[certify] data_specific = "
                "false`): only the paper's closed-form constants, so no gain or distance to "
                "the truth to report", ""]
    last = (const.get("t") or [None])[-1]
    lines = [f"- gain over the paper's closed form at the last step t = {fmt(last)} "
             f"(closed/certified): {gain_text(const)}",
             f"- distance to the truth, worst over t (certified/lower; 1× is exact): "
             f"{worst_text(const)}"]
    return lines + _tightness_lines((const.get("certified") or {}).get("tightness")) + [""]


def _short_steps(flags) -> str:
    return ", ".join(str(t) for t, f in enumerate(flags or []) if f) or "none"


def _tightness_lines(tj) -> list[str]:
    """Whether the data-specific bounds reached their target, and if not what stopped
    them and where the boxes went (the certificate's ``tightness`` record)."""
    if not isinstance(tj, dict):
        return []
    target = f"certified/lower ≤ {fmt(tj.get('target'), 3)} at every t"
    if tj.get("reached"):
        return [f"- target {target}: **reached**"]
    short = tj.get("short_of_target") or {}
    lines = [f"- target {target}: **stopped short** (L at t = {_short_steps(short.get('L'))}; "
             f"β at t = {_short_steps(short.get('beta'))}); the bounds stay certified, "
             "only looser"]
    for why in tj.get("stopped_by") or []:
        lines.append(f"  - stopped by {why}")
    top = tj.get("boxes_by_neuron") or []
    if top:
        lines.append("  - boxes went to neurons " + ", ".join(
            f"{b['neuron']} ({b['boxes']})" for b in top))
    lines.append(f"  - method: {tj.get('method', '—')}")
    return lines


def _overview(cert: dict, c: dict, act: dict, const: dict, ex: dict, env: dict) -> list[str]:
    """How to read the report, then the case file, activation, regime and run."""
    return [
        "How to read this report: numbers marked *certified* are outward-rounded enclosures "
        f"from the trusted interval engine (`{_engine_of(cert)}`); the true value is inside "
        "(the JSON holds them to 17 digits). Numbers marked *observed* are floating point "
        "from the executor. The drift inequality compares observed numbers against certified "
        "constants with the stated floating-point allowance.",
        "",
        f"- case file: `{c.get('path')}` (sha256 `{str(c.get('sha256'))[:16]}…`)",
        f"- activation `{act.get('name')}`: σ₀ {interval_text(act.get('sigma0'))}, "
        f"σ₁ {interval_text(act.get('sigma1'))}, σ₂ {interval_text(act.get('sigma2'))} "
        "(certified)",
        f"- α_m {interval_text(const.get('alpha_m'))}, q = σ₁α_m "
        f"{interval_text(const.get('q'))}: {const.get('regime', '')}",
        f"- algorithm `{ex.get('algorithm')}`, η = {fmt(ex.get('eta'))}, "
        f"{ex.get('iterations')} iterations, backend `{env.get('backend')}`",
        "",
    ]


def _drift_section(ex: dict, drift: dict) -> list[str]:
    """The drift inequality over every iterate: slack, allowance, what was checked."""
    return [
        "## Drift inequality (THEORY §7), every iterate",
        "",
        f"- minimum slack {fmt(drift.get('min_slack'))} at k = {fmt(drift.get('argmin'))} "
        f"(observed); violations: {len(drift.get('violations') or [])}",
        *_allowance_lines(drift.get("fp_allowance")),
        f"- iterates checked: {drift.get('checked', '—')} of {ex.get('iterations')}",
        *_not_checked_lines(drift),
        *_gradient_line(ex.get("gradient_check")),
        f"- exit time from Ω_ρ: {fmt(ex.get('exit_time'))}",
        "",
    ]


def _loss_section(ex: dict, ap: dict, plots: dict[str, str]) -> list[str]:
    """The losses and the a-priori bound, then the loss and slack plots."""
    lines = [
        "## Losses and the a-priori bound",
        "",
        f"- average R̂ over the run: {fmt(ex.get('avg_loss'))} (observed); final "
        f"{fmt((ex.get('loss') or [None])[-1])}; R̂(Θ̄) = {fmt(ex.get('loss_comparator'))}",
        f"- a-priori bound on the average {apriori_text(ap)}",
    ]
    if ap.get("applicable"):
        lines.append(f"  - bound {fmt(ap.get('bound'))}, observed {fmt(ap.get('observed'))}, "
                     f"bound/observed {fmt(ap.get('ratio'))}")
    if ap.get("bound_apriori_comparator") is not None:
        lines.append(f"- fully a-priori (R̂(Θ̄) replaced by its bound from §5–§6): "
                     f"{fmt(ap.get('bound_apriori_comparator'))}")
    if "loss" in plots:
        lines += ["", f"![loss]({plots['loss']})"]
    if "slack" in plots:
        lines += ["", f"![slack]({plots['slack']})"]
    return lines


def _constants_table(const: dict, q: str) -> list[str]:
    sym = "L_t" if q == "L" else "β_t"
    lines = [f"| t | closed-form {sym} (cert.) | data {sym} (cert.) | lower {sym} (obs.) | "
             "certified/lower | closed/certified |", "|---|---|---|---|---|---|"]
    for r in tightness(const, q)["rows"]:
        lines.append(f"| {fmt(r['t'])} | {fmt(r['closed'])} | {fmt(r['certified'])} | "
                     f"{fmt(r['lower'])} | {fmt(r['cert_over_lower'], 3)} | "
                     f"{fmt(r['closed_over_cert'], 3)} |")
    return lines


def _constants_section(const: dict, plots: dict[str, str]) -> list[str]:
    """The tables of L_t and of β_t per t (closed form, data-specific, lower and the two
    ratios), then their plot."""
    lines = ["", "## Constants per t", "",
             "certified/lower ≥ 1 bounds how far the certified constant may be above the "
             "truth; closed/certified is the gain over the paper's closed form.", ""]
    lines += _constants_table(const, "L") + [""] + _constants_table(const, "beta")
    if "constants" in plots:
        lines += ["", f"![constants]({plots['constants']})"]
    return lines


def _footer(cert: dict, env: dict) -> list[str]:
    """The timings and what produced the certificate (package, git, versions, engine)."""
    lines = ["", "## Timings (seconds)", ""]
    lines += [f"- {k}: {v:.2f}" for k, v in (cert.get("timings") or {}).items()
              if isinstance(v, int | float)]
    lines += ["", f"Produced by {env.get('package')} (git {str(env.get('git_commit'))[:10]}"
              f"{', dirty' if env.get('git_dirty') else ''}), Python {env.get('python')}, "
              f"NumPy {env.get('numpy')}, mpmath {env.get('mpmath')}, sympy {env.get('sympy')}, "
              f"engine {env.get('interval_engine')}, certificate schema "
              f"{cert.get('schema_version')}.", ""]
    return lines


def write_report(cert: dict, out_dir: Path) -> Path:
    """Write ``NAME.md`` (and its plots) for one certificate into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = cert["case"]["name"]
    plots = {kind: figures.save(fig, out_dir, name, kind)
             for kind, fig in figures.case_figures(cert).items()}
    path = out_dir / f"{name}.md"
    write_atomic(path, render(cert, plots))
    return path


def _read_certificates(folder: Path) -> list[dict]:
    """The certificates ``*.json`` in ``folder``; other JSON files (no ``schema_version``)
    are left out, a certificate with missing fields is a one-line error."""
    from ..errors import UserError

    certs = []
    for f in sorted(folder.glob("*.json")):
        try:
            cert = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(cert, dict) or "schema_version" not in cert:
            continue
        problems = validate(cert)
        if problems or not isinstance(cert.get("case"), dict):
            raise UserError(f"report: {f}: not a valid certificate ("
                            f"{problems[0] if problems else 'case is not an object'}"
                            f"{f'; {len(problems) - 1} more' if len(problems) > 1 else ''})")
        certs.append(cert)
    return certs


def _index_row(cert: dict) -> str:
    name = cert["case"]["name"]
    ex = cert.get("executor") or {}
    drift = ex.get("drift") or {}
    ap = ex.get("apriori") or {}
    const = cert.get("constants") or {}
    tot = sum(v for v in (cert.get("timings") or {}).values() if isinstance(v, int | float))
    bound = fmt(ap.get("ratio")) if ap.get("applicable") else "n/a"
    return (f"| [{name}]({name}.md) | **{cert.get('verdict')}** | {const.get('regime', '')} | "
            f"{fmt(drift.get('min_slack'))} | {len(drift.get('violations') or [])} | "
            f"{fmt(ex.get('exit_time'))} | {bound} | {gain_text(const)} | "
            f"{worst_text(const)} | {tot:.1f} |")


INDEX_HEADER = [
    "| case | verdict | regime | min drift slack (obs.) | violations | exit time | "
    "a-priori bound / observed | gain over closed form at last t (closed/cert.) | "
    "worst tightness (max_t cert./lower) | seconds |",
    "|---|---|---|---|---|---|---|---|---|---|"]

INDEX_NOTES = [
    "How to read the table: *gain* is the closed-form constant divided by the certified "
    "data-specific one at the last step t = T−1 (larger: tighter than the paper). "
    "*Worst tightness* is the largest, over t, certified upper bound divided by the observed "
    "lower bound (the truth lies in between; 1× would be exact). \"n/a\": the a-priori bound "
    "does not apply (the case's report says why); \"—\": no data-specific bounds or a value "
    "that is not finite.", ""]


def write_index(folder: Path) -> Path:
    """``index.md`` over every certificate ``*.json`` in ``folder``."""
    from ..errors import UserError

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"report: {folder}: not a folder of certificates")
    check_out_dir(folder, "report")  # before drawing anything: writable, one-line error
    if (folder / "index.md").is_dir():
        raise UserError(f"report: {folder / 'index.md'}: is a folder, not a file")
    certs = _read_certificates(folder)
    if not certs:
        raise UserError(f"report: {folder}: no certificates (*.json) found")
    try:
        fig = figures.index_figure(certs)
        cutoff = figures.save(fig, folder, "index", "cutoff") if fig is not None else None
    except OSError as exc:
        raise UserError(f"report: {folder}: cannot write the figure ({exc.strerror or exc})") \
            from None
    text = "\n".join([
        "# Certificates", "", *INDEX_HEADER, *[_index_row(c) for c in certs], "",
        *INDEX_NOTES,
        *([f"![L_t and β_t of every case]({cutoff})", "",
           "L_t and β_t of every case: closed form (dashed), data-specific certified upper "
           "bound (solid) and observed lower bound (triangles), log scale. Bounded in t for "
           "q = σ₁α_m < 1, polynomial at the cutoff q = 1, exponential beyond.", ""]
          if cutoff else [])])
    path = folder / "index.md"
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UserError(f"report: {path}: cannot write ({exc.strerror or exc})") from None
    return path
