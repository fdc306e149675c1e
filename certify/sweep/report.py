"""The sweep's report.md: counts, derived results, a table of the points, figures.

Figures (matplotlib, Agg backend) go to ``DIR/figures/``: the final training error
against the x key (the experiment's ``x``, else the first numeric varied key), one line
per combination of the other keys; and the experiment's own figure (the widths found
against n with both fits; L_{T-1}, β_{T-1} against T per q).  Without matplotlib the
report says so and has no figures.
"""

from __future__ import annotations

import math

from .results import FIELDS

TABLE_COLS = ("verdict", "final_loss", "min_slack", "exit_time", "iters_to_target",
              "L_closed_max", "beta_closed_max", "apriori_bound", "seconds")


def _num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _fmt(v) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def x_key(spec, rows) -> str | None:
    if spec.experiment.x:
        return spec.experiment.x
    for k in spec.varied:
        if rows and all(_num(r.get(k)) is not None for r in rows):
            return k
    return None


def _lines(plt, ax, rows, spec, x, y, label_keys):
    """y against x, one line per value of the keys that vary (keys with one value are left
    out of the labels)."""
    from .experiments import label

    label_keys = [k for k in label_keys if len({label(r.get(k)) for r in rows}) > 1]
    groups: dict = {}
    for r in rows:
        if r["verdict"] != "failed" and _num(r.get(y)) is not None:
            groups.setdefault(tuple(label(r.get(k)) for k in label_keys), []).append(r)
    for key, rs in groups.items():
        rs.sort(key=lambda r: _num(r[x]))
        ax.plot([_num(r[x]) for r in rs], [_num(r[y]) for r in rs], "o-",
                label=", ".join(f"{k}={v}" for k, v in zip(label_keys, key, strict=True))
                or None)
    if any(label_keys):
        ax.legend(fontsize=6)


def _figure(out_dir, name, draw) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        draw(plt, ax)
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(out_dir / "figures" / name, dpi=100)
    finally:
        plt.close(fig)
    return f"figures/{name}"


def metric_figure(out_dir, spec, rows, y: str = "final_loss") -> str | None:
    """``y`` against the x key, one line per combination of the other varied keys."""
    x = x_key(spec, rows)
    if x is None or not any(_num(r.get(y)) is not None for r in rows):
        return None
    others = [k for k in spec.varied if k != x]
    ylabel = {"final_loss": "final training error R̂ (observed)",
              "iters_to_target": "iterations to the target error (observed)"}[y]

    def draw(plt, ax):
        _lines(plt, ax, rows, spec, x, y, others)
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel)
        if all((_num(r.get(y)) or 0) > 0 for r in rows if r["verdict"] != "failed"):
            ax.set_yscale("log")
        ax.set_title(spec.name)

    return _figure(out_dir, f"{y.replace('_', '-')}.png", draw)


def width_figure(out_dir, spec, derived) -> str | None:
    fits = derived.get("fit")
    if not fits:
        return None

    def draw(plt, ax):
        import numpy as np

        for crit, f in fits.items():
            pts = f["points"]
            if not pts:
                continue
            n = np.array([p[0] for p in pts], float)
            ax.plot(n, [p[1] for p in pts], "o", label=f"{crit} (smallest m found)")
            grid = np.geomspace(n.min(), n.max(), 50)
            if f.get("log"):
                ax.plot(grid, f["log"]["a"] + f["log"]["b"] * np.log(grid), "--",
                        label=f"{crit}: a + b log n")
            if f.get("power"):
                ax.plot(grid, f["power"]["c"] * grid ** f["power"]["p"], ":",
                        label=f"{crit}: c n^p")
        ax.set_xscale("log")
        ax.set_xlabel(spec.experiment.x or "data.n")
        ax.set_ylabel(spec.search.key)
        ax.legend(fontsize=6)

    return _figure(out_dir, "width-vs-n.png", draw)


def cutoff_figure(out_dir, spec, rows) -> str | None:
    x = spec.experiment.x or "data.steps"
    def draw(plt, ax):
        by_q: dict = {}
        for r in rows:
            if r["verdict"] != "failed":
                by_q.setdefault(_num(r.get("q")), []).append(r)
        for k, (q, rs) in enumerate(sorted(by_q.items(), key=lambda kv: kv[0] or 0)):
            rs.sort(key=lambda r: _num(r[x]))
            T = [_num(r[x]) for r in rs]
            ax.plot(T, [_num(r["L_last"]) for r in rs], "o-", color=f"C{k}", label=f"q = {q:.3g}")
            ax.plot(T, [_num(r["beta_last"]) for r in rs], "s--", color=f"C{k}")
            bad = [(t, _num(r["L_last"])) for t, r in zip(T, rs, strict=True)
                   if r["verdict"] != "pass"]
            if bad:
                ax.plot(*zip(*bad, strict=True), "x", color="k", markersize=9)
        ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel("L (solid), β (dashed) at t = T-1, certified")
        ax.set_title("bounded (q<1), polynomial (q=1), exponential (q>1); x: not pass",
                     fontsize=8)
        ax.legend(fontsize=7)

    return _figure(out_dir, "memory-cutoff.png", draw)


def samples_figure(out_dir, spec, derived) -> str | None:
    sn = derived.get("samples_needed")
    if not sn:
        return None

    def draw(plt, ax):
        k = 0
        for crit, per in sn["curves"].items():
            for cls, pts in per.items():
                got = [(_num(q["x"]), q["value"]) for q in pts if q["value"] is not None]
                miss = [_num(q["x"]) for q in pts if q["value"] is None]
                if got:
                    ax.plot(*zip(*got, strict=True), "o-", color=f"C{k}",
                            label=f"{cls} ({crit})")
                if miss:
                    ax.plot(miss, [spec.search.max] * len(miss), "x", color=f"C{k}",
                            markersize=9, label=f"{cls}: not reached by {spec.search.max}")
                k += 1
        ax.set_xlabel(sn["x"])
        ax.set_ylabel(f"smallest {sn['key']} reaching the target (observed)")
        ax.set_title(f"samples needed: held-out error ≤ {sn['target']:g} × its value at Θ(0)",
                     fontsize=8)
        ax.legend(fontsize=6)

    return _figure(out_dir, "samples-needed.png", draw)


def table(spec, rows) -> list[str]:
    cols = ["id", *spec.varied, *TABLE_COLS]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return lines


def write_report(out_dir, spec, rows, summary) -> None:
    """DIR/report.md (atomically) and its figures."""
    from ..output.certificate import write_atomic

    figs = [metric_figure(out_dir, spec, rows)]
    if spec.experiment.target is not None:
        figs.append(metric_figure(out_dir, spec, rows, "iters_to_target"))
    if spec.experiment.kind == "width-vs-n":
        figs.append(width_figure(out_dir, spec, summary))
    elif spec.experiment.kind == "memory-cutoff":
        figs.append(cutoff_figure(out_dir, spec, rows))
    elif spec.experiment.kind == "concept-classes":
        figs.append(samples_figure(out_dir, spec, summary))
    v = summary["verdicts"]
    lines = [f"# Sweep {spec.name}", "", spec.description, "",
             f"{summary['points']} points: {v.get('pass', 0)} pass, {v.get('fail', 0)} fail, "
             f"{v.get('unknown', 0)} unknown, {v.get('failed', 0)} failed (did not finish); "
             f"{summary['already_done']} were already done.", "",
             "Certified: closed-form and data-specific L, β (upper ends), q, the a-priori "
             "bounds' constants. Observed: losses, slack, exit time, iterations, seconds.", ""]
    lines += [f"![{f}]({f})" for f in figs if f] or ["(no figures: matplotlib not installed)"]
    lines += ["", *_derived_lines(summary), "", "## Points", "", *table(spec, rows), "",
              "Columns of results.csv: " + ", ".join(f"`{k}` ({u})" for k, u in FIELDS), ""]
    write_atomic(out_dir / "report.md", "\n".join(lines))


def _derived_lines(summary) -> list[str]:
    out = []
    for crit, f in (summary.get("fit") or {}).items():
        lg, pw = f.get("log"), f.get("power")
        out.append(f"- fit of the {crit} width ({f.get('rigor')}): better = **{f['better']}**"
                   + (f"; a + b log n: a = {lg['a']:.3g}, b = {lg['b']:.3g}, RMSE "
                      f"{lg['rmse']:.3g}" if lg else "")
                   + (f"; c n^p: c = {pw['c']:.3g}, p = {pw['p']:.3g}, RMSE {pw['rmse']:.3g}"
                      if pw else ""))
    for r in summary.get("regimes") or []:
        g = r["growth"]["L_last"]
        out.append(f"- {r['point']}: q ≤ {r['q_upper']}: {r['regime']}; log L_(T-1) slope "
                   f"per step {g['exp_rate_per_step']}, against log T {g['poly_degree']} "
                   "(certified)")
    sn = summary.get("samples_needed")
    for crit, per in ((sn or {}).get("curves") or {}).items():
        for cls, pts in per.items():
            out.append(f"- {cls}, smallest {sn['key']} with the {crit} criterion (observed): "
                       + ", ".join(f"{sn['x']} = {q['x']}: "
                                   f"{q['value'] if q['value'] is not None else 'not reached'}"
                                   for q in pts))
    for s in (summary.get("search") or {}).get("results", []):
        out.append(f"- search at {s['point']}: " + ", ".join(
            f"{k}: {v['value']}{' (' + v['reason'] + ')' if v['reason'] else ''}"
            for k, v in s.items() if k != "point"))
    return (["## Derived results", ""] + out) if out else []
