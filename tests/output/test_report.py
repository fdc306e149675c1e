"""Reports a researcher reads at a glance (issue #15), on the shipped baselines: the
index answers "did it pass, how much tighter than the paper, how close to the truth";
per-t ratios; the allowance as formula, max and median (never the per-iterate values);
the a-priori bound's reason in words; intervals printed like a paper; every figure with
labelled axes, the allowance visible on the slack plot, an index figure with one panel
per case, certified curves and a legend that covers no curve."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from certify.errors import UserError
from certify.output import figures
from certify.output.readout import headline, interval_text, tightness
from certify.output.report import render, write_index

BASELINES = Path(__file__).resolve().parents[2] / "cases" / "baselines"


def load(name: str) -> dict:
    return json.loads((BASELINES / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("index")
    for f in BASELINES.glob("*.json"):
        shutil.copy(f, d)
    write_index(d)
    return d


@pytest.mark.parametrize("v,text", [
    (["0.99999999999999988", "1"], "≈ 1"), (["1", "1"], "= 1"),
    (["0.76980035891949960", "0.76980035891950305"], "≈ 0.7698"),
    (["1.2345", "1.3456"], "∈ [1.234, 1.346]"), (["1", "inf"], "∈ [1, ∞]"),
    (["nan", "1"], "—"), (None, "—"), (["0.625", "0.62500000000000012"], "≈ 0.625")])
def test_intervals_print_like_a_paper(v, text):
    assert interval_text(v) == text


def test_tightness_ratios_of_tanh_cutoff():
    """β₇ certified 19.02 against a lower bound of 8.562 (the worst step)."""
    const = load("tanh-cutoff")["constants"]
    row = tightness(const, "beta")["rows"][7]
    assert row["cert_over_lower"] == pytest.approx(19.02 / 8.562, rel=1e-3)
    assert row["closed_over_cert"] == pytest.approx(393.3 / 19.02, rel=1e-3)
    h = headline(const)
    assert h["worst"]["beta"][1] == 7 and h["worst"]["beta"][0] == pytest.approx(2.222, rel=1e-3)
    assert h["gain"]["L"] == pytest.approx(11.31 / 2.961, rel=1e-3)


def test_case_report_has_ratios_formula_and_no_raw_dumps():
    cert = load("tanh-cutoff")
    md = render(cert, {})
    assert "certified/lower" in md and "closed/certified" in md
    assert "| 7 | 393.3 | 19.02 | 8.562 | 2.22 | 20.7 |" in md
    assert "fp_k = 16 * u" in md and "largest 8.226e-13, median" in md
    assert "β 2.22× (t=7)" in md and "L 3.82×, β 20.7×" in md
    assert "q = σ₁α_m ≈ 1" in md and "0.99999999999999988" not in md
    assert "{'" not in md and "['" not in md  # no Python dict or list dumps
    assert max(len(line) for line in md.splitlines()) < 600  # no 300 values on a line
    assert "applies and holds" in md


def test_a_priori_not_applicable_says_why_in_words():
    md = render(load("tanh-gd-exit"), {})
    assert "applicable: False" not in md
    assert re.search(r"does not apply: it needs η·Λ < 1 \(Λ = mean_t L_t²\), and here "
                     r"η·Λ = 19\.48: the step size is too large", md)


def test_index_answers_the_three_questions(index_dir):
    text = (index_dir / "index.md").read_text()
    header = text.splitlines()[2]
    for col in ("verdict", "gain over closed form at last t", "worst tightness"):
        assert col in header
    assert "max certified/closed-form" not in text and "0.7071" not in text
    row = next(line for line in text.splitlines() if line.startswith("| [tanh-cutoff]"))
    assert "**pass**" in row and "L 3.82×, β 20.7×" in row and "β 2.22× (t=7)" in row
    gd = next(line for line in text.splitlines() if line.startswith("| [tanh-gd-exit]"))
    assert "| n/a |" in gd  # the a-priori bound does not apply (its report says why)
    assert (index_dir / "index-cutoff.png").stat().st_size > 10_000


def test_index_rejects_a_malformed_certificate_and_skips_other_json(tmp_path, capsys):
    from certify.cli import main

    shutil.copy(BASELINES / "tanh-gd-exit.json", tmp_path)
    (tmp_path / "bench.json").write_text('{"benchmarks": []}')  # not a certificate: skipped
    assert main(["report", str(tmp_path)]) == 0
    bad = load("tanh-gd-exit")
    del bad["executor"]
    bad["case"]["name"] = "bad"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match=r"bad\.json: not a valid certificate \(missing field "
                                        r"'executor'\)"):
        write_index(tmp_path)
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a valid certificate" in err


def _labelled(ax) -> bool:
    return bool(ax.get_xlabel()) and bool(ax.get_ylabel())


@pytest.mark.parametrize("name", ["tanh-cutoff", "tanh-gd-exit"])
def test_case_figures_have_labelled_axes_and_a_paper_title(name):
    figs = figures.case_figures(load(name))
    try:
        assert set(figs) == {"loss", "slack", "constants"}
        for kind, fig in figs.items():
            for ax in fig.axes:
                assert _labelled(ax), (kind, ax.get_title())
                assert ax.get_yscale() == "log"
        title = figs["constants"].get_suptitle()
        assert "q = σ₁α_m ≈" in title and "[" not in title and "'" not in title
        labels = [line.get_label() for line in figs["constants"].axes[0].get_lines()]
        assert {"closed form (certified)", "data-specific (certified)",
                "lower (observed)"} <= set(labels)
    finally:
        _close(figs.values())


def test_slack_plot_shows_the_allowance_on_its_scale():
    """The allowance (about 1e-12 relative) lies inside the axis' range, well apart from
    the slack: a reader sees how far the slack is from a violation."""
    figs = figures.case_figures(load("tanh-cutoff"))
    try:
        ax = figs["slack"].axes[0]
        lo, hi = ax.get_ylim()
        lines = {line.get_label(): line for line in ax.get_lines()}
        fp = next(v for k, v in lines.items() if k.startswith("fp allowance"))
        slack = next(v for k, v in lines.items() if k.startswith("slack"))
        assert lo <= min(fp.get_ydata()) and max(slack.get_ydata()) <= hi
        assert min(slack.get_ydata()) > 1e6 * max(fp.get_ydata())
        assert "RHS" in ax.get_ylabel()
    finally:
        _close(figs.values())


def test_index_figure_one_panel_pair_per_case_with_certified_curves_and_a_clear_legend():
    certs = [load(f.stem) for f in sorted(BASELINES.glob("*.json"))]
    fig = figures.index_figure(certs)
    try:
        axes = [ax for ax in fig.get_axes() if ax.get_visible()]
        assert len(axes) == 2 * len(certs)
        assert all(ax.get_ylabel() in ("L_t", "β_t") for ax in axes)
        assert sum(1 for ax in axes if ax.get_xlabel() == "t") == len(certs)
        for ax in axes:  # closed form and certified drawn in every panel
            colours = {line.get_color() for line in ax.get_lines()}
            assert {"black", "tab:blue"} <= colours, ax.get_ylabel()
        fig.canvas.draw()
        (legend,) = fig.legends
        box = legend.get_window_extent()
        assert not any(box.overlaps(ax.get_window_extent()) for ax in axes)
        assert [t.get_text() for t in legend.get_texts()] == [
            "closed form (certified)", "data-specific (certified)", "lower (observed)"]
    finally:
        _close([fig])


def _close(figs) -> None:
    plt = figures.pyplot()
    for f in figs:
        plt.close(f)


def test_without_data_specific_bounds_the_report_says_so():
    cert = load("tanh-cutoff")
    cert["constants"]["certified"] = cert["constants"]["lower"] = None
    md = render(cert, {})
    assert "no data-specific bounds in this certificate" in md
    assert "| 7 | 11.31 | — | — | — | — |" in md


def test_slack_plot_marks_violations_apart_from_negative_slack_within_the_allowance():
    cert = load("tanh-cutoff")
    d = cert["executor"]["drift"]
    for k in range(100, 110):  # negative, but within the allowance: not a violation
        d["slack"][k] = -1e-14 * d["rhs"][k]
    for k in range(200, 205):
        d["slack"][k] = -1e-6 * d["rhs"][k]
    d["violations"] = list(range(200, 205))
    figs = figures.case_figures(cert)
    try:
        fig = figs["slack"]
        ax = fig.axes[0]
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert list(lines["|slack| of a violation"].get_xdata()) == list(range(200, 205))
        assert len(lines["|slack| of a slack < 0 within the allowance"].get_xdata()) == 10
        fig.canvas.draw()
        (legend,) = fig.legends  # below the axes: it covers no marker
        assert not legend.get_window_extent().overlaps(ax.get_window_extent())
        assert legend.get_window_extent().x0 >= 0
        assert legend.get_window_extent().x1 <= fig.bbox.x1
    finally:
        _close(figs.values())


def _with_tightness(reached: bool) -> dict:
    cert = load("tanh-cutoff")
    T = len(cert["constants"]["t"])
    short = [(not reached) and t in (3, 7) for t in range(T)]
    cert["constants"]["certified"]["tightness"] = {
        "method": "screening branch and bound", "target": 1.02, "reached": reached,
        "ratio": {"L": [1.0] * T, "beta": [1.5 if s else 1.0 for s in short]},
        "worst": {"L": {"t": 0, "ratio": 1.0}, "beta": {"t": 3, "ratio": 1.5}},
        "short_of_target": {"L": [False] * T, "beta": short},
        "stopped_by": [] if reached else ["box budget: 2 of 4 neuron sets spent box_budget = 64"],
        "boxes_by_neuron": [{"neuron": 5, "boxes": 64}], "memory_cap_mb": 1536, "chunks": 1,
        "label": "observed"}
    return cert


def test_report_says_whether_the_bounds_reached_their_target():
    from certify.output.report import _index_row

    short = render(_with_tightness(False), {})
    assert "**stopped short** (L at t = none; β at t = 3, 7)" in short
    assert "stopped by box budget: 2 of 4 neuron sets" in short
    assert "boxes went to neurons 5 (64)" in short
    assert "short of target 1.02×" in _index_row(_with_tightness(False))
    ok = render(_with_tightness(True), {})
    assert "certified/lower ≤ 1.02 at every t: **reached**" in ok
    assert "short of target" not in _index_row(_with_tightness(True))
