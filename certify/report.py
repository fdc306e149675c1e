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
from pathlib import Path

from .certificate import write_atomic


def _num(v):
    if v is None:
        return None
    if isinstance(v, list):
        v = v[1]
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _save(plt, fig, out_dir: Path, name: str, kind: str) -> str:
    fig.tight_layout()
    f = out_dir / f"{name}-{kind}.png"
    fig.savefig(f, dpi=110)
    plt.close(fig)
    return f.name


def _plots(cert: dict, out_dir: Path, name: str) -> dict[str, str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    files = {}
    ex = cert.get("executor") or {}
    loss = [v for v in ex.get("loss") or []]
    if loss:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        k = list(range(len(loss)))
        ax.semilogy(k, [v if v and v > 0 else float("nan") for v in loss], label="R̂(Θ(k)) observed")
        run, s = [], 0.0
        for i, v in enumerate(loss):
            s += v or 0.0
            run.append(s / (i + 1))
        ax.semilogy(k, run, label="running average")
        curve = (ex.get("apriori") or {}).get("curve")
        if curve:
            ax.semilogy(range(1, len(curve) + 1), [c if c and c > 0 else float("nan")
                                                  for c in curve],
                        "--", label="a-priori bound on the average")
        comp = ex.get("loss_comparator")
        if comp:
            ax.axhline(comp, color="gray", lw=0.8, label="R̂(Θ̄)")
        ax.set_xlabel("iteration k")
        ax.set_ylabel("empirical risk")
        ax.legend(fontsize=7)
        files["loss"] = _save(plt, fig, out_dir, name, "loss")
    drift = ex.get("drift") or {}
    slack = drift.get("slack")
    if slack:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(range(len(slack)), [v if v is not None else float("nan") for v in slack],
                lw=0.8, label="slack = RHS − LHS (observed)")
        fp = drift.get("fp_allowance_values")
        if fp:
            ax.plot(range(len(fp)), [-v for v in fp], "r--", lw=0.8,
                    label="−fp allowance (violation below)")
        ax.set_yscale("symlog", linthresh=1e-8)
        ax.set_xlabel("iteration k")
        ax.legend(fontsize=7)
        files["slack"] = _save(plt, fig, out_dir, name, "slack")
    const = cert.get("constants") or {}
    t = const.get("t") or []
    if t:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for ax, q, label in ((axes[0], "L", "L_t"), (axes[1], "beta", "β_t")):
            cf = [_num(v) for v in (const.get("closed_form") or {}).get(q, [])]
            ax.semilogy(t[:len(cf)], cf, "k-", label="closed form (certified)")
            cert_q = (const.get("certified") or {}).get(q)
            if cert_q:
                ax.semilogy(t[:len(cert_q)], [_num(v) for v in cert_q], "b.-",
                            label="data-specific (certified)")
            low = (const.get("lower") or {}).get(q)
            if low:
                ax.semilogy(t[:len(low)], low, "g^", ms=3, label="lower (observed)")
            ax.set_xlabel("t")
            ax.set_title(label)
            ax.legend(fontsize=7)
        fig.suptitle(f"q = σ₁α_m ∈ {const.get('q')}", fontsize=8)
        files["constants"] = _save(plt, fig, out_dir, name, "constants")
    return files


def _fmt(v, digits=4):
    if v is None:
        return "—"
    if isinstance(v, list):
        return f"[{v[0]}, {v[1]}]"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _engine_of(cert) -> str:
    """The certificate's interval engine (``environment.interval_engine``)."""
    return str((cert.get("environment") or {}).get("interval_engine") or "mpmath.iv")


def render(cert: dict, plots: dict[str, str]) -> str:
    c = cert["case"]
    ex = cert.get("executor") or {}
    const = cert.get("constants") or {}
    act = cert.get("activation") or {}
    drift = ex.get("drift") or {}
    ap = ex.get("apriori") or {}
    lines = [f"# {c['name']}: **{cert['verdict'].upper()}**", ""]
    if cert.get("description"):
        lines += [cert["description"], ""]
    if cert.get("reasons"):
        lines += ["Reasons:", ""] + [f"- {r}" for r in cert["reasons"]] + [""]
    lines += [
        "How to read this report: numbers marked *certified* are outward-rounded enclosures "
        f"from the trusted interval engine (`{_engine_of(cert)}`); the true value is inside. "
        "Numbers "
        "marked *observed* are floating point from the executor. The drift inequality "
        "compares observed numbers against certified constants with the stated "
        "floating-point allowance.",
        "",
        f"- case file: `{c['path']}` (sha256 `{c['sha256'][:16]}…`)",
        f"- activation `{act.get('name')}`: σ₀ ∈ {_fmt(act.get('sigma0'))}, "
        f"σ₁ ∈ {_fmt(act.get('sigma1'))}, σ₂ ∈ {_fmt(act.get('sigma2'))} (certified)",
        f"- α_m ∈ {_fmt(const.get('alpha_m'))}, q = σ₁α_m ∈ {_fmt(const.get('q'))}: "
        f"{const.get('regime', '')}",
        f"- algorithm `{ex.get('algorithm')}`, η = {ex.get('eta')}, "
        f"{ex.get('iterations')} iterations, backend `{cert['environment']['backend']}`",
        "",
        "## Drift inequality (THEORY §7), every iterate",
        "",
        f"- minimum slack {_fmt(drift.get('min_slack'))} at k = {drift.get('argmin')} "
        f"(observed); violations: {len(drift.get('violations') or [])}",
        f"- floating-point allowance: {drift.get('fp_allowance')}",
        f"- iterates checked: {drift.get('checked', '—')} of {ex.get('iterations')}",
        f"- exit time from Ω_ρ: {_fmt(ex.get('exit_time'))}",
        "",
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
    lines += ["", "## Constants per t", "",
              "| t | closed-form L_t (cert.) | data L_t (cert.) | lower L_t (obs.) | "
              "closed-form β_t (cert.) | data β_t (cert.) | lower β_t (obs.) |",
              "|---|---|---|---|---|---|---|"]
    t = const.get("t") or []
    cf = const.get("closed_form") or {}
    ce = const.get("certified") or {}
    lo = const.get("lower") or {}
    for i in t:
        def g(d, q, i=i):
            v = (d.get(q) or [None] * (i + 1))
            return _fmt(_num(v[i]) if i < len(v) else None)

        lines.append(f"| {i} | {g(cf, 'L')} | {g(ce, 'L')} | {g(lo, 'L')} | {g(cf, 'beta')} | "
                     f"{g(ce, 'beta')} | {g(lo, 'beta')} |")
    if "constants" in plots:
        lines += ["", f"![constants]({plots['constants']})"]
    lines += ["", "## Timings (seconds)", ""]
    lines += [f"- {k}: {v:.2f}" for k, v in (cert.get("timings") or {}).items()
              if isinstance(v, int | float)]
    env = cert["environment"]
    lines += ["", f"Produced by {env['package']} (git {str(env.get('git_commit'))[:10]}"
              f"{', dirty' if env.get('git_dirty') else ''}), Python {env['python']}, "
              f"NumPy {env['numpy']}, mpmath {env['mpmath']}, sympy {env['sympy']}, "
              f"engine {env['interval_engine']}.", ""]
    return "\n".join(lines)


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
    """L_t and β_t (closed form) of every case on one log-scale figure."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not certs:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    styles = {"short": "-", "at the": "--", "long": ":"}
    for cert in certs:
        const = cert.get("constants") or {}
        regime = const.get("regime", "")
        ls = next((v for k, v in styles.items() if regime.startswith(k)), "-")
        for ax, q in zip(axes, ("L", "beta"), strict=True):
            vals = [_num(v) for v in (const.get("closed_form") or {}).get(q, [])]
            ax.semilogy(range(len(vals)), vals, ls, label=f"{cert['case']['name']} ({regime})")
    for ax, title in zip(axes, ("closed-form L_t", "closed-form β_t"), strict=True):
        ax.set_xlabel("t")
        ax.set_title(title)
    axes[1].legend(fontsize=6, loc="upper left")
    return _save(plt, fig, folder, "index", "cutoff")


def write_index(folder: Path) -> Path:
    """``index.md`` over every certificate ``*.json`` in ``folder``."""
    from .errors import UserError

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"report: {folder}: not a folder of certificates")
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
        rows.append(f"| [{name}]({name}.md) | **{cert['verdict']}** | "
                    f"{const.get('regime', '')} | {_fmt(drift.get('min_slack'))} | "
                    f"{len(drift.get('violations') or [])} | {_fmt(ex.get('exit_time'))} | "
                    f"{_fmt(ap.get('ratio'))} | {_fmt(const.get('max_certified_over_closed'))} "
                    f"| {tot:.1f} |")
    if not rows:
        raise UserError(f"report: {folder}: no certificates (*.json) found")
    cutoff = _cutoff_plot(certs, folder)
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
    write_atomic(path, text)
    return path
