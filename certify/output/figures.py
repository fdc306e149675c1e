"""The report's figures (matplotlib, Agg backend), built from a finished certificate.

Per case (:func:`case_figures`), written beside ``NAME.md``:

* ``loss``      — observed R̂(Θ(k)), its running average, R̂(Θ̄) and the a-priori bound
  on the running average;
* ``slack``     — drift slack relative to the right-hand side, (RHS − LHS)/|RHS|, on a log
  scale, with the floating-point allowance on the same scale (a violation is a negative
  slack larger than the allowance, drawn as a red cross above the allowance line);
* ``constants`` — L_t and β_t vs t on a log scale: closed form, data-specific certified
  upper bound, observed lower bound (the truth lies between the last two).

Over a folder (:func:`index_figure`): a pair of small panels (L_t above β_t) per case
with the same three curves, so that no two cases draw on top of each other.

Every axis has a label (a test reads them from these figure objects).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .readout import finite, has_data, interval_text, series

#: dots per inch of the PNG files: a 9-inch-wide figure is about 1000 pixels
DPI = 110
CLOSED = {"color": "black", "ls": "--", "lw": 1.2, "label": "closed form (certified)"}
CERT = {"color": "tab:blue", "ls": "-", "marker": ".", "lw": 1.4,
        "label": "data-specific (certified)"}
LOWER = {"color": "tab:green", "ls": "none", "marker": "^", "ms": 4, "label": "lower (observed)"}
SYMBOLS = {"L": "L_t", "beta": "β_t"}


def pyplot():
    """matplotlib.pyplot on the Agg backend, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save(fig, out_dir: Path, name: str, kind: str) -> str:
    """Write ``NAME-KIND.png`` and close the figure; returns the file name."""
    plt = pyplot()
    f = Path(out_dir) / f"{name}-{kind}.png"
    fig.savefig(f, dpi=DPI)
    plt.close(fig)
    return f.name


def case_figures(cert: dict) -> dict:
    """{kind: figure} for the plots that have finite data to show (a certificate whose
    values are all missing or non-finite, e.g. verdict ``unknown``, gets fewer)."""
    plt = pyplot()
    if plt is None:
        return {}
    ex = cert.get("executor") or {}
    figs = {}
    for kind, plot in (("loss", _loss_plot), ("slack", _slack_plot),
                       ("constants", _constants_plot)):
        # log axes of values near the double range overflow inside matplotlib's
        # transforms: harmless for the picture, not something to print to the user
        with np.errstate(over="ignore", invalid="ignore"):
            fig = plot(plt, cert, ex)
        if fig is not None:
            if fig.get_layout_engine() is None:
                fig.tight_layout()
            figs[kind] = fig
    return figs


def _running_average(loss: list[float]) -> list[float]:
    run, s = [], 0.0
    for i, v in enumerate(loss):
        s += v  # a NaN (non-finite loss) makes the rest of the average NaN: no made-up value
        run.append(s / (i + 1))
    return run


def _loss_plot(plt, cert, ex):
    raw = ex.get("loss") or []
    loss = series(raw, positive=True)
    if not has_data(loss):
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.0), layout="constrained")
    k = list(range(len(loss)))
    ax.semilogy(k, loss, label=r"$\hat R(\Theta(k))$ observed")
    ax.semilogy(k, series(_running_average(series(raw)), positive=True),
                label="running average (observed)")
    curve = series((ex.get("apriori") or {}).get("curve"), positive=True)
    if has_data(curve):
        ax.semilogy(range(1, len(curve) + 1), curve, "--", label="a-priori bound on the average")
    comp = finite(ex.get("loss_comparator"))
    if comp is not None and comp > 0:
        ax.axhline(comp, color="gray", lw=0.8, label=r"$\hat R(\bar\Theta)$ comparator")
    ax.set_xlabel("iteration k")
    ax.set_ylabel(r"empirical risk $\hat R$ (log scale)")
    ax.set_title("losses", fontsize=10)
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return fig


def _relative(values, scale) -> list[float]:
    """values / |scale| element-wise (NaN where either is missing or the scale is 0)."""
    out = []
    for v, s in zip(values, scale, strict=False):
        ok = v == v and s == s and s != 0
        out.append(v / abs(s) if ok else math.nan)
    return out


def _slack_plot(plt, cert, ex):
    drift = ex.get("drift") or {}
    slack = series(drift.get("slack"))
    if not has_data(slack):
        return None
    rhs = series(drift.get("rhs"))
    fp = series(((drift.get("fp_allowance") or {}).get("values")
                 if isinstance(drift.get("fp_allowance"), dict) else None)
                or drift.get("fp_allowance_values"))
    rel = has_data(_relative(slack, rhs))
    if rel:
        slack, fp = _relative(slack, rhs), _relative(fp, rhs)
    k = np.arange(len(slack))
    s = np.asarray(slack, dtype=float)
    fig, ax = plt.subplots(figsize=(6.5, 4.0), layout="constrained")
    pos = np.where(s > 0, s, np.nan)
    ax.semilogy(k, pos, lw=1.2, label="slack ≥ 0 (the inequality holds)")
    neg = s < 0
    bad = np.zeros(len(s), dtype=bool)
    bad[[v for v in drift.get("violations") or [] if isinstance(v, int) and 0 <= v < len(s)]] = 1
    if (neg & ~bad).any():
        ax.semilogy(k[neg & ~bad], -s[neg & ~bad], "x", color="tab:orange", ms=5,
                    label="|slack| of a slack < 0 within the allowance")
    if (neg & bad).any():
        ax.semilogy(k[neg & bad], -s[neg & bad], "rX", ms=7, label="|slack| of a violation")
    fpa = np.asarray(fp, dtype=float) if fp else np.full(len(k), np.nan)
    if np.any(fpa > 0):
        ax.semilogy(np.arange(len(fpa)), np.where(fpa > 0, fpa, np.nan), "r--", lw=1,
                    label="fp allowance (a violation lies above it)")
    ax.set_xlabel("iteration k")
    ax.set_ylabel("(RHS − LHS) / |RHS| (log scale)" if rel else "RHS − LHS (log scale)")
    ax.set_title("drift inequality: slack" + (" relative to the right-hand side" if rel
                                             else ""), fontsize=10)
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return fig


def _curves(const: dict, q: str) -> list[tuple[list[float], dict]]:
    return [(series((const.get(part) or {}).get(q), positive=True), style)
            for part, style in (("closed_form", CLOSED), ("certified", CERT),
                                ("lower", LOWER))]


def _draw_constants(ax, t, curves, with_labels: bool = True) -> None:
    """The curves with finite values on a log axis (plainly ticked); an axis without any
    says so instead."""
    drawn = False
    for ys, style in curves:
        if has_data(ys):
            n = min(len(t), len(ys))
            kw = dict(style) if with_labels else {k: v for k, v in style.items() if k != "label"}
            ax.semilogy(t[:n], ys[:n], **kw)
            drawn = True
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # t is a step index
    if drawn:
        _log_ticks(ax)
    else:
        ax.text(0.5, 0.5, "no finite values", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)


def _q_title(const: dict) -> str:
    q = interval_text(const.get("q"), same=4)
    return f"q = σ₁α_m {q}: {const.get('regime') or ''}".rstrip(": ")


def _constants_plot(plt, cert, ex):
    const = cert.get("constants") or {}
    t = [x for x in const.get("t") or [] if isinstance(x, int | float)]
    curves = {q: _curves(const, q) for q in ("L", "beta")}
    if not t or not any(has_data(ys) for cs in curves.values() for ys, _ in cs):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, q in zip(axes, ("L", "beta"), strict=True):
        _draw_constants(ax, t, curves[q])
        ax.set_xlabel("t")
        ax.set_ylabel(f"{SYMBOLS[q]} (log scale)")
        ax.set_title(SYMBOLS[q], fontsize=10)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8)
    name = (cert.get("case") or {}).get("name") or ""
    fig.suptitle(f"{name}: {_q_title(const)}", fontsize=10)
    return fig


def _index_cases(certs: list[dict]) -> list[tuple[str, dict]]:
    out = []
    for cert in certs:
        const = cert.get("constants") or {}
        if any(has_data(ys) for q in ("L", "beta") for ys, _ in _curves(const, q)):
            out.append((str((cert.get("case") or {}).get("name")), const))
    return out


def _log_ticks(ax) -> None:
    """Log axis ticks printed plainly ("0.5", "20") at 1, 2, 5 × 10^k on an axis that spans
    about a decade, fewer on a wider one: readable also where matplotlib would print
    2×10⁰ over 3×10⁰.  Call after drawing (it reads the axis' range)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    lo, hi = ax.get_ylim()
    span = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
    if span < 0.8:  # less than a decade: evenly spaced plain numbers (0.6, 0.8, 1, 1.2)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
    else:
        subs = (1.0, 2.0, 5.0) if span < 1.3 else (1.0, 3.0) if span < 2.6 else (1.0,)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _index_panel(axes, name: str, const: dict, first: bool) -> None:
    """One case: L_t above β_t, sharing t."""
    t = [x for x in const.get("t") or [] if isinstance(x, int | float)]
    for j, (ax, q) in enumerate(zip(axes, ("L", "beta"), strict=True)):
        _draw_constants(ax, t, _curves(const, q), with_labels=first and j == 0)
        ax.set_ylabel(SYMBOLS[q], fontsize=9, labelpad=3)
        ax.tick_params(labelsize=7.5)
    axes[0].tick_params(labelbottom=False)
    axes[1].set_xlabel("t", fontsize=9, labelpad=1)
    axes[0].set_title(f"{name} (q {interval_text(const.get('q'), same=4)})", fontsize=9.5)


def index_figure(certs: list[dict]):
    """L_t and β_t of every case, one small panel pair per case (rows of at most four):
    closed form, certified and lower; None when no case has finite values.

    Laid out on a fixed grid (rows L, β, gap per row of cases) without a layout engine:
    matplotlib's constrained layout takes seconds per figure of this many axes."""
    plt = pyplot()
    cases = _index_cases(certs)
    if plt is None or not cases:
        return None
    ncol = min(4, len(cases))
    nrow = -(-len(cases) // ncol)
    ratios = ([1, 1, 0.55] * nrow)[:-1]
    height = 3.1 * nrow + 0.5
    fig = plt.figure(figsize=(2.4 * ncol, height))
    grid = fig.add_gridspec(len(ratios), ncol, height_ratios=ratios, hspace=0.12, wspace=0.5,
                            left=0.07, right=0.98, top=1 - 0.35 / height,
                            bottom=0.85 / height)
    for i, (name, const) in enumerate(cases):
        r, c = 3 * (i // ncol), i % ncol
        top = fig.add_subplot(grid[r, c])
        _index_panel((top, fig.add_subplot(grid[r + 1, c], sharex=top)), name, const,
                     first=(i == 0))
    fig.legend(loc="lower center", ncol=3, fontsize=9, frameon=False)
    return fig
