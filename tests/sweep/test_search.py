"""The adaptive search (galloping then bisection), the fits of width-vs-n, whole-table
replacement, and one real search on a LocalCluster."""

from __future__ import annotations

import json
import math

import pytest

from certify.sweep.experiments import fit_log_and_power
from certify.sweep.points import expand
from certify.sweep.search import Bisection, run_search
from certify.sweep.spec import load_spec

from .conftest import sweep, write_spec

SEARCH = """\
[grid]
"data.n" = [3, 4]
[search]
key = "model.width"
min = 2
max = 64
target = 0.01
certified_target = 2.0
[experiment]
kind = "width-vs-n"
x = "data.n"
"""


@pytest.mark.parametrize("n", [1, 2, 3, 10, 33, 500])
def test_bisection_finds_the_smallest_index_in_logarithmic_steps(n):
    for answer in range(n + 1):  # n: never holds
        b, steps = Bisection(n), 0
        while (i := b.next_index()) is not None:
            b.update(i, i >= answer)
            steps += 1
        assert (b.held_i if b.held_i is not None else n) == answer
        assert steps <= 2 * math.log2(n + 1) + 2


def _fake_cert(m, n):
    """Observed error falls like 1/m; the certified bound like log(n)/m."""
    return {"executor": {"final_loss": 1 / m, "apriori": {
        "applicable": True, "bound_certified_comparator": 10 * math.log(4 * n) / m}}}


def test_search_per_point_and_criterion(tmp_path):
    spec = load_spec(write_spec(tmp_path / "s", SEARCH))
    calls = []

    def evaluate(values):
        calls.append(values)
        return [(_fake_cert(v["model.width"], v["data.n"]), "") for v in values]

    found = run_search(spec, evaluate)
    assert [f["point"] for f in found] == [{"data.n": 3}, {"data.n": 4}]
    # observed: 1/m ≤ 0.01 needs m ≥ 100 > 64; certified: 10 log(4n)/m ≤ 2
    assert all(f["observed"]["value"] is None and "not reached" in f["observed"]["reason"]
               for f in found)
    for f in found:
        m, n = f["certified"]["value"], f["point"]["data.n"]
        assert 10 * math.log(4 * n) / m <= 2 < 10 * math.log(4 * n) / (m - 2)
    assert len(calls) <= 12 and all(len(c) <= 4 for c in calls)  # rounds run in parallel


def test_a_failed_point_breaks_its_search_only(tmp_path):
    spec = load_spec(write_spec(tmp_path / "s", SEARCH))

    def evaluate(values):
        return [(None, "worker died") if v["data.n"] == 3 else
                (_fake_cert(v["model.width"], v["data.n"]), "") for v in values]

    found = run_search(spec, evaluate)
    assert found[0]["certified"] == {"value": None, "reason": "search broke: worker died"}
    assert found[1]["certified"]["value"] is not None


def test_fits_tell_log_from_power():
    ns = [16, 64, 256, 1024, 4096]
    log = fit_log_and_power(ns, [round(3 + 5 * math.log(n)) for n in ns])
    assert log["better"] == "log" and abs(log["log"]["b"] - 5) < 0.2
    power = fit_log_and_power(ns, [2 * n ** 0.5 for n in ns])
    assert power["better"] == "power" and abs(power["power"]["p"] - 0.5) < 1e-9
    assert fit_log_and_power(ns[:2], [4, 6])["better"] == "undecided"
    near = fit_log_and_power(ns[:4], [336, 352, 368, 400], resolution=16)  # within the grid
    assert near["better"] == "undecided" and near["resolution_rmse"] == 16 / math.sqrt(12)
    assert "criterion" in log and log["log"]["rmse"] < log["power"]["rmse"]


def test_a_whole_table_replaced_by_inline_tables(tmp_path):
    body = ('[grid]\n"target" = [{kind = "multi-index", lags = [0, 2], link = "sin", seed = 5},'
            ' {kind = "additive", seed = 6}]\n')
    pts = expand(load_spec(write_spec(tmp_path / "s", body)))
    assert [p.doc["target"]["kind"] for p in pts] == ["multi-index", "additive"]
    assert "nu_w" not in pts[0].doc["target"]  # the base's transport keys are gone


def test_a_bad_inline_table_names_the_spec_and_the_key(tmp_path, capsys):
    body = '[grid]\n"target" = [{kind = "multi-index", lags = [0, 9], seed = 5}]\n'
    spec = write_spec(tmp_path / "s", body)
    rc, _, err = sweep(capsys, spec, "--out", tmp_path / "o")
    assert rc == 2 and f'{spec}: [grid]."target" = {{kind = ' in err
    assert "[target].lags: each lag must be in [0, 3)" in err and not (tmp_path / "o").exists()


def test_a_real_search_on_a_local_cluster(tmp_path, capsys):
    spec = write_spec(tmp_path / "s", SEARCH.replace("max = 64", "max = 16")
                      .replace("target = 0.01", "target = 0.0006"))
    out = tmp_path / "out"
    rc, stdout, _ = sweep(capsys, spec, "--out", out, "--jobs", "2")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["search"]["key"] == "model.width" and len(summary["search"]["results"]) == 2
    assert set(summary["fit"]) == {"observed", "certified"}
    assert summary["points"] == summary["computed"] == len(list((out / "points").glob("*.json")))
    assert "already done" in stdout and rc in (0, 1)
    assert (out / "figures" / "width-vs-n.png").is_file()
    rc, stdout, _ = sweep(capsys, spec, "--out", out, "--jobs", "2")  # resumed: nothing new
    assert f"{summary['points']} of {summary['points']} points already done" in stdout


SAMPLES = """\
[grid]
"target" = [{kind = "additive", seed = 5}, {kind = "multi-index", lags = [0, 1], seed = 6}]
"data.steps" = [3]
"data.test_n" = [16]
[search]
key = "data.n"
min = 2
max = 32
step = 2
target = 0.5
criteria = ["held-out"]
[experiment]
kind = "concept-classes"
x = "data.steps"
"""


def test_held_out_criterion_finds_the_samples_needed(tmp_path):
    spec = load_spec(write_spec(tmp_path / "s", SAMPLES))

    def evaluate(values):  # the additive class halves its held-out error from n = 10 on
        return [({"executor": {"held_out": {"relative": (
            0.4 if v["target"]["kind"] == "additive" and v["data.n"] >= 10 else 0.9)}}}, "")
            for v in values]

    found = run_search(spec, evaluate)
    assert [f["held-out"]["value"] for f in found] == [10, None]
    from certify.sweep.experiments import derive

    sn = derive(spec, [], found)["samples_needed"]
    assert sn["key"] == "data.n" and sn["x"] == "data.steps"
    assert sn["curves"]["held-out"]["additive"] == [{"x": 3, "value": 10, "reason": ""}]
    assert sn["curves"]["held-out"]["multi-index"][0]["value"] is None


def test_a_held_out_search_on_a_local_cluster(tmp_path, capsys):
    spec = write_spec(tmp_path / "s", SAMPLES.replace("max = 32", "max = 6"))
    out = tmp_path / "out"
    rc, _, _ = sweep(capsys, spec, "--out", out, "--jobs", "2")
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["samples_needed"]["curves"]["held-out"]) == {"additive", "multi-index"}
    certs = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    assert certs and all(c["executor"]["held_out"]["n"] == 16 for c in certs)
    from certify.sweep.results import read_csv

    rows = read_csv(out / "results.csv")
    assert all(0 < float(r["held_out_relative"]) for r in rows)
    assert (out / "figures" / "samples-needed.png").is_file() and rc in (0, 1)
