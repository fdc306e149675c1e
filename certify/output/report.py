"""Markdown reports with plots, one per certificate, and an index page.

Plots (matplotlib, Agg backend, written beside the report):

* ``NAME-loss.png``      — observed R̂(Θ(k)), its running average, R̂(Θ̄) and the
  a-priori bound on the running average (certified constants, observed inputs);
* ``NAME-slack.png``     — drift slack RHS − LHS per iterate with the
  floating-point allowance (a violation is slack < −allowance);
* ``NAME-constants.png`` — L_t and β_t vs t on a log scale: closed form
  (certified), data-specific certified upper bound, observed lower bound.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .certificate import check_out_dir, write_atomic


def _num(v):
    """A float from a number, a decimal string or a ``["lo", "hi"]`` pair (its upper end);
    None when absent or unreadable."""
    if isinstance(v, list):
        v = v[1] if len(v) == 2 else None
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _series(values, positive: bool = False) -> list[float]:
    """Floats for a plot: None, non-finite (and, with ``positive``, ≤ 0) become NaN (a gap)."""
    out = []
    for v in values or []:
        x = _num(v)
        ok = x is not None and math.isfinite(x) and (x > 0 or not positive)
        out.append(x if ok else math.nan)
    return out


def _has_data(ys) -> bool:
    return any(y == y for y in ys)


def _save(plt, fig, out_dir: Path, name: str, kind: str) -> str:
    fig.tight_layout()
    f = out_dir / f"{name}-{kind}.png"
    fig.savefig(f, dpi=110)
    plt.close(fig)
    return f.name


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _plots(cert: dict, out_dir: Path, name: str) -> dict[str, str]:
    """The three plots that have finite data to show (a certificate whose values are all
    missing or non-finite, e.g. verdict ``unknown``, simply gets fewer plots)."""
    plt = _pyplot()
    if plt is None:
        return {}
    ex = cert.get("executor") or {}
    files = {}
    for kind, plot in (("loss", _loss_plot), ("slack", _slack_plot),
                       ("constants", _constants_plot)):
        # symlog axes of values near the double range overflow inside matplotlib's
        # transforms: harmless for the picture, not something to print to the user
        with np.errstate(over="ignore", invalid="ignore"):
            fig = plot(plt, cert, ex)
            if fig is not None:
                files[kind] = _save(plt, fig, out_dir, name, kind)
    return files


def _running_average(loss: list[float]) -> list[float]:
    run, s = [], 0.0
    for i, v in enumerate(loss):
        s += v  # a NaN (non-finite loss) makes the rest of the average NaN: no made-up value
        run.append(s / (i + 1))
    return run


def _loss_plot(plt, cert, ex):
    raw = ex.get("loss") or []
    loss = _series(raw, positive=True)
    if not _has_data(loss):
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    k = list(range(len(loss)))
    ax.semilogy(k, loss, label="R̂(Θ(k)) observed")
    ax.semilogy(k, _series(_running_average(_series(raw)), positive=True),
                label="running average")
    curve = _series((ex.get("apriori") or {}).get("curve"), positive=True)
    if _has_data(curve):
        ax.semilogy(range(1, len(curve) + 1), curve, "--", label="a-priori bound on the average")
    comp = _num(ex.get("loss_comparator"))
    if comp is not None and math.isfinite(comp) and comp > 0:
        ax.axhline(comp, color="gray", lw=0.8, label="R̂(Θ̄)")
    ax.set_xlabel("iteration k")
    ax.set_ylabel("empirical risk")
    ax.legend(fontsize=7)
    return fig


def _slack_plot(plt, cert, ex):
    drift = ex.get("drift") or {}
    slack = _series(drift.get("slack"))
    if not _has_data(slack):
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(len(slack)), slack, lw=0.8, label="slack = RHS − LHS (observed)")
    fp = _series(drift.get("fp_allowance_values"))
    if _has_data(fp):
        ax.plot(range(len(fp)), [-v for v in fp], "r--", lw=0.8,
                label="−fp allowance (violation below)")
    ax.set_yscale("symlog", linthresh=1e-8)
    ax.set_xlabel("iteration k")
    ax.legend(fontsize=7)
    return fig


def _constants_plot(plt, cert, ex):
    const = cert.get("constants") or {}
    t = const.get("t") or []
    curves = {q: [(_series((const.get("closed_form") or {}).get(q), positive=True),
                   "k-", {}, "closed form (certified)"),
                  (_series((const.get("certified") or {}).get(q), positive=True),
                   "b.-", {}, "data-specific (certified)"),
                  (_series((const.get("lower") or {}).get(q), positive=True),
                   "g^", {"ms": 3}, "lower (observed)")]
              for q in ("L", "beta")}
    if not t or not any(_has_data(ys) for cs in curves.values() for ys, *_ in cs):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, q, label in ((axes[0], "L", "L_t"), (axes[1], "beta", "β_t")):
        for ys, style, kw, what in curves[q]:
            if _has_data(ys):
                ax.semilogy(t[:len(ys)], ys[:len(t)], style, label=what, **kw)
        ax.set_xlabel("t")
        ax.set_title(label)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(f"q = σ₁α_m ∈ {_fmt(const.get('q'))}", fontsize=8)
    return fig


def _fmt(v, digits=4):
    """A value for the text: "—" when absent (null: missing or not finite)."""
    if v is None:
        return "—"
    if isinstance(v, list):
        if len(v) != 2:
            return str(v)
        return f"[{_fmt(v[0], digits)}, {_fmt(v[1], digits)}]"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _engine_of(cert) -> str:
    """The certificate's interval engine (``environment.interval_engine``)."""
    return str((cert.get("environment") or {}).get("interval_engine") or "mpmath.iv")


def _allowance(fp) -> str:
    """The executor's floating-point allowance block (its largest value and formula; the
    per-iterate values are in the slack plot), or a plain value."""
    if isinstance(fp, dict):
        return f"largest {_fmt(fp.get('max'))} (observed); {fp.get('formula') or ''}".strip()
    return _fmt(fp)


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
        out.append(f"- an iterate counts as checked only if {rule['rule']} "
                   f"(largest ratio {_fmt(rule.get('ratio_max'))}, observed)")
    return out


def _gradient_line(gc) -> list[str]:
    if not isinstance(gc, dict):
        return []
    worst = max((_num(p.get("rel_err")) or 0.0 for p in gc.get("points") or []), default=None)
    return [f"- gradient check ({gc.get('method') or 'central differences'}): "
            f"{gc.get('status')}, largest relative error {_fmt(worst)} (observed)"]


def render(cert: dict, plots: dict[str, str]) -> str:
    """The Markdown report of one certificate, whatever its verdict: a missing, null
    (non-finite) or unreadable value prints as "—".

    Sections in order: title and overview, drift inequality, losses (with the loss and
    slack plots), constants per t, timings and provenance."""
    c = cert["case"]
    ex = cert.get("executor") or {}
    const = cert.get("constants") or {}
    act = cert.get("activation") or {}
    drift = ex.get("drift") or {}
    ap = ex.get("apriori") or {}
    env = cert.get("environment") or {}
    lines = _title(cert, c)
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


def _overview(cert: dict, c: dict, act: dict, const: dict, ex: dict, env: dict) -> list[str]:
    """How to read the report, then the case file, activation, regime and run."""
    return [
        "How to read this report: numbers marked *certified* are outward-rounded enclosures "
        f"from the trusted interval engine (`{_engine_of(cert)}`); the true value is inside. "
        "Numbers "
        "marked *observed* are floating point from the executor. The drift inequality "
        "compares observed numbers against certified constants with the stated "
        "floating-point allowance.",
        "",
        f"- case file: `{c.get('path')}` (sha256 `{str(c.get('sha256'))[:16]}…`)",
        f"- activation `{act.get('name')}`: σ₀ ∈ {_fmt(act.get('sigma0'))}, "
        f"σ₁ ∈ {_fmt(act.get('sigma1'))}, σ₂ ∈ {_fmt(act.get('sigma2'))} (certified)",
        f"- α_m ∈ {_fmt(const.get('alpha_m'))}, q = σ₁α_m ∈ {_fmt(const.get('q'))}: "
        f"{const.get('regime', '')}",
        f"- algorithm `{ex.get('algorithm')}`, η = {_fmt(ex.get('eta'))}, "
        f"{ex.get('iterations')} iterations, backend `{env.get('backend')}`",
        "",
    ]


def _drift_section(ex: dict, drift: dict) -> list[str]:
    """The drift inequality over every iterate: slack, allowance, what was checked."""
    return [
        "## Drift inequality (THEORY §7), every iterate",
        "",
        f"- minimum slack {_fmt(drift.get('min_slack'))} at k = {_fmt(drift.get('argmin'))} "
        f"(observed); violations: {len(drift.get('violations') or [])}",
        f"- floating-point allowance: {_allowance(drift.get('fp_allowance'))}",
        f"- iterates checked: {drift.get('checked', '—')} of {ex.get('iterations')}",
        *_not_checked_lines(drift),
        *_gradient_line(ex.get("gradient_check")),
        f"- exit time from Ω_ρ: {_fmt(ex.get('exit_time'))}",
        "",
    ]


def _loss_section(ex: dict, ap: dict, plots: dict[str, str]) -> list[str]:
    """The losses and the a-priori bound, then the loss and slack plots."""
    lines = [
        "## Losses and the a-priori bound",
        "",
        f"- average R̂ over the run: {_fmt(ex.get('avg_loss'))} (observed); final "
        f"{_fmt((ex.get('loss') or [None])[-1])}; R̂(Θ̄) = {_fmt(ex.get('loss_comparator'))}",
        f"- a-priori bound on the average: {_fmt(ap.get('bound'))}, observed "
        f"{_fmt(ap.get('observed'))}, ratio {_fmt(ap.get('ratio'))}, applicable: "
        f"{ap.get('applicable')}",
    ]
    if ap.get("bound_apriori_comparator") is not None:
        lines.append(f"- fully a-priori (R̂(Θ̄) replaced by its bound from §5–§6): "
                     f"{_fmt(ap.get('bound_apriori_comparator'))}")
    if "loss" in plots:
        lines += ["", f"![loss]({plots['loss']})"]
    if "slack" in plots:
        lines += ["", f"![slack]({plots['slack']})"]
    return lines


def _constants_section(const: dict, plots: dict[str, str]) -> list[str]:
    """The table of L_t and β_t per t (closed form, data-specific, lower), then its plot."""
    lines = ["", "## Constants per t", "",
             "| t | closed-form L_t (cert.) | data L_t (cert.) | lower L_t (obs.) | "
             "closed-form β_t (cert.) | data β_t (cert.) | lower β_t (obs.) |",
             "|---|---|---|---|---|---|---|"]
    t = const.get("t") or []
    cf = const.get("closed_form") or {}
    ce = const.get("certified") or {}
    lo = const.get("lower") or {}
    for i, ti in enumerate(t):
        def g(d, q, i=i):
            v = d.get(q) or []
            return _fmt(_num(v[i]) if i < len(v) else None)

        lines.append(f"| {_fmt(ti)} | {g(cf, 'L')} | {g(ce, 'L')} | {g(lo, 'L')} | "
                     f"{g(cf, 'beta')} | {g(ce, 'beta')} | {g(lo, 'beta')} |")
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
              f"engine {env.get('interval_engine')}.", ""]
    return lines


def write_report(cert: dict, out_dir: Path) -> Path:
    """Write ``NAME.md`` (and its plots) for one certificate into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = cert["case"]["name"]
    plots = _plots(cert, out_dir, name)
    path = out_dir / f"{name}.md"
    write_atomic(path, render(cert, plots))
    return path


def _cutoff_plot(certs: list[dict], folder: Path) -> str | None:
    """L_t and β_t (closed form) of every case on one log-scale figure (cases without
    finite closed-form values are left out; no figure when none has any)."""
    plt = _pyplot()
    curves = []
    for cert in certs:
        const = cert.get("constants") or {}
        cf = const.get("closed_form") or {}
        ys = {q: _series(cf.get(q), positive=True) for q in ("L", "beta")}
        if any(_has_data(v) for v in ys.values()):
            curves.append((str((cert.get("case") or {}).get("name")),
                           str(const.get("regime") or ""), ys))
    if plt is None or not curves:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    styles = {"short": "-", "at the": "--", "long": ":"}
    for name, regime, ys in curves:
        ls = next((v for k, v in styles.items() if regime.startswith(k)), "-")
        for ax, q in zip(axes, ("L", "beta"), strict=True):
            ax.semilogy(range(len(ys[q])), ys[q], ls, label=f"{name} ({regime})")
    for ax, title in zip(axes, ("closed-form L_t", "closed-form β_t"), strict=True):
        ax.set_xlabel("t")
        ax.set_title(title)
    axes[1].legend(fontsize=6, loc="upper left")
    return _save(plt, fig, folder, "index", "cutoff")


def write_index(folder: Path) -> Path:
    """``index.md`` over every certificate ``*.json`` in ``folder``."""
    from ..errors import UserError

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"report: {folder}: not a folder of certificates")
    check_out_dir(folder, "report")  # before drawing anything: writable, one-line error
    if (folder / "index.md").is_dir():
        raise UserError(f"report: {folder / 'index.md'}: is a folder, not a file")
    rows = []
    certs = []
    for f in sorted(folder.glob("*.json")):
        try:
            cert = json.loads(f.read_text())
            name = cert["case"]["name"]
        except (ValueError, KeyError, TypeError):
            continue
        certs.append(cert)
        ex = cert.get("executor") or {}
        drift = ex.get("drift") or {}
        ap = ex.get("apriori") or {}
        const = cert.get("constants") or {}
        tot = sum(v for v in (cert.get("timings") or {}).values() if isinstance(v, int | float))
        rows.append(f"| [{name}]({name}.md) | **{cert.get('verdict')}** | "
                    f"{const.get('regime', '')} | {_fmt(drift.get('min_slack'))} | "
                    f"{len(drift.get('violations') or [])} | {_fmt(ex.get('exit_time'))} | "
                    f"{_fmt(ap.get('ratio'))} | {_fmt(const.get('max_certified_over_closed'))} "
                    f"| {tot:.1f} |")
    if not rows:
        raise UserError(f"report: {folder}: no certificates (*.json) found")
    try:
        cutoff = _cutoff_plot(certs, folder)
    except OSError as exc:
        raise UserError(f"report: {folder}: cannot write the figure ({exc.strerror or exc})") \
            from None
    text = "\n".join([
        "# Certificates", "",
        *([f"![closed-form constants of every case]({cutoff})", "",
           "Closed-form L_t and β_t (certified upper bounds) of every case: bounded in t "
           "for q = σ₁α_m < 1, polynomial at the cutoff q = 1, exponential beyond.", ""]
          if cutoff else []),
        "| case | verdict | regime | min drift slack (obs.) | violations | exit time | "
        "a-priori bound / observed | max certified/closed-form | seconds |",
        "|---|---|---|---|---|---|---|---|---|", *rows, ""])
    path = folder / "index.md"
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UserError(f"report: {path}: cannot write ({exc.strerror or exc})") from None
    return path
