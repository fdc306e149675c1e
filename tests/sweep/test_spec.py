"""The sweep spec: bad specs are one line naming the spec and the key, exit 2, nothing
written and no cluster started; points and their stable IDs."""

from __future__ import annotations

import pytest

from certify.sweep.points import expand
from certify.sweep.spec import load_spec

from .conftest import GRID, sweep, write_spec

BAD = [
    ('[grid]\n"model.widht" = [4]\n', '[grid]."model.widht" = 4: [model].widht: unknown key'),
    ('[grid]\n"model.width" = [4, 7]\n', '[grid]."model.width" = 7: [model].width: must be even'),
    ('[grid]\n"ball.rho_w" = ["x"]\n', '[grid]."ball.rho_w" = \'x\': [ball].rho_w: expected a '
     'decimal'),
    ('[grid]\n"init.alpha0" = [-0.5]\n', '[grid]."init.alpha0" = -0.5: [init].alpha0: must be '
     'nonnegative'),
    ('[grid]\n"model.width" = []\n', '[grid]."model.width": expected a non-empty list'),
    ("[grid]\n", "[grid]: empty"),
    ("", "[grid]: empty"),
    ('[grid]\nwidth = [4]\n', '[grid]."width": expected a dotted case key'),
    ('[grid]\nmodel.width = [4]\n', '[grid].model: quote the dotted key'),
    ('[zip]\n"model.width" = [4, 8]\n"data.n" = [3]\n', '[zip]."data.n": has 1 values'),
    ('colour = 1\n[grid]\n"model.width" = [4]\n', "colour: unknown key"),
    ('[grid]\n"ball.rho_w" = ["0.1"]\n', '[target].nu_w: 0.5 exceeds [ball].rho_w'),
    ('[search]\nkey = "model.width"\nmin = 3\nmax = 7\ntarget = 0.1\n',
     '[search]."model.width" = 3: [model].width: must be even'),
    ('[search]\nkey = "model.width"\nmin = 2\nmax = 8\n', "[search].target: missing"),
    ('[experiment]\nkind = "nope"\n[grid]\n"model.width" = [4]\n', "[experiment].kind: must be"),
    ('[experiment]\nx = "data.n"\n[grid]\n"model.width" = [4]\n',
     '[experiment].x: "data.n" is not a varied key'),
    ('[search]\nkey = "data.n"\nmin = 2\nmax = 8\ntarget = 0.5\ncriteria = ["held-out"]\n',
     '[search].criteria: "held-out" needs held-out samples ([data].test_n > 0)'),
    ('[grid]\n"data.test_n" = [-1]\n', '[grid]."data.test_n" = -1: [data].test_n: must be'),
]


@pytest.mark.parametrize("body, message", BAD)
def test_bad_spec_is_one_line_exit_2_nothing_written(tmp_path, capsys, body, message):
    spec = write_spec(tmp_path / "s", body)
    out = tmp_path / "out"
    rc, stdout, err = sweep(capsys, spec, "--out", out)
    assert rc == 2 and stdout == ""
    assert err.count("\n") == 1 and str(spec) in err and message in err, err
    assert "Traceback" not in err and not out.exists()


def test_missing_base_and_missing_spec(tmp_path, capsys):
    spec = write_spec(tmp_path / "s", base="")
    rc, _, err = sweep(capsys, spec, "--out", tmp_path / "out")
    assert rc == 2 and f"{spec}: base: missing (required)" in err
    spec = write_spec(tmp_path / "t", base="nowhere.toml")
    rc, _, err = sweep(capsys, spec, "--out", tmp_path / "out")
    assert rc == 2 and "base: no such case file: nowhere.toml" in err
    rc, _, err = sweep(capsys, tmp_path / "none.toml", "--out", tmp_path / "out")
    assert rc == 2 and "no such sweep spec" in err
    assert not (tmp_path / "out").exists()


def test_out_is_a_file(spec, tmp_path, capsys):
    (tmp_path / "f").write_text("")
    rc, _, err = sweep(capsys, spec, "--out", tmp_path / "f")
    assert rc == 2 and "argument --out" in err and "is a file" in err


def test_jobs_and_scheduler_exclude_each_other(spec, tmp_path, capsys):
    rc, _, err = sweep(capsys, spec, "--out", tmp_path / "o", "--jobs", "2", "--scheduler",
                       "tcp://127.0.0.1:1")
    assert rc == 2 and "not allowed with argument" in err


def test_without_dask_says_what_to_install(spec, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    rc, _, err = sweep(capsys, spec, "--out", tmp_path / "o")
    assert rc == 2 and err.count("\n") == 1 and "pip install 'rnn-certify[dask]'" in err
    assert not (tmp_path / "o").exists()


def test_threads_must_be_positive(spec, tmp_path, capsys):
    rc, _, err = sweep(capsys, spec, "--out", tmp_path / "o", "--threads", "0")
    assert rc == 2 and err.count("\n") == 1 and "argument --threads" in err
    assert not (tmp_path / "o").exists()


def test_unknown_backend(spec, tmp_path, capsys):
    rc, _, err = sweep(capsys, spec, "--out", tmp_path / "o", "--backend", "jax")
    assert rc == 2 and "argument --backend: unknown backend 'jax'" in err


def test_one_case_written_two_ways_is_one_point(tmp_path):
    s = load_spec(write_spec(tmp_path / "a", '[grid]\n"init.alpha0" = [0.5, "0.50", 0.25]\n'))
    assert len(expand(s)) == 2


def test_progress_line_counts_points():
    import io

    from certify.sweep.progress import PointsLine

    buf = io.StringIO()
    line = PointsLine(enabled=True, stream=buf)
    line.points(3, 8, 2, 1)
    assert "[sweep] 3/8 points done, 2 running, 1 failed" in buf.getvalue()
    line.done()
    assert buf.getvalue().endswith("\r")
    quiet = io.StringIO()
    PointsLine(stream=quiet).points(3, 8, 2, 1)  # not a terminal: nothing
    assert quiet.getvalue() == ""


def test_grid_is_the_product_zip_the_rows(tmp_path):
    s = load_spec(write_spec(tmp_path / "a", GRID + '[zip]\n"train.algorithm" = ["pgd", "gd"]\n'
                             '"train.eta" = ["0.08", "0.04"]\n'))
    pts = expand(s)
    assert len(pts) == 8 and len({p.id for p in pts}) == 8
    assert s.varied == ["model.width", "data.n", "train.algorithm", "train.eta"]
    assert {(p.values["train.algorithm"], str(p.values["train.eta"])) for p in pts} == {
        ("pgd", "0.08"), ("gd", "0.04")}
    assert all(p.name == f"tiny-sweep-{p.id}" and p.doc["name"] == p.name for p in pts)


def test_id_is_the_case_content_not_its_spelling(tmp_path):
    """0.5, "0.50" and 5e-1 are one value; key order, the sweep's name and a default
    written out do not change the ID; a changed value does."""
    ids = []
    for i, (body, name) in enumerate([
            ('[grid]\n"ball.rho_w" = [1.0]\n"init.alpha0" = [0.5]\n', "a"),
            ('[grid]\n"init.alpha0" = ["0.50"]\n"ball.rho_w" = ["1"]\n', "b"),
            ('[grid]\n"init.alpha0" = [5e-1]\n"train.loss" = ["all-steps"]\n', "c")]):
        ids.append(expand(load_spec(write_spec(tmp_path / str(i), body, name=name)))[0].id)
    assert len(set(ids)) == 1
    other = expand(load_spec(write_spec(tmp_path / "x", '[grid]\n"init.alpha0" = [0.25]\n')))
    assert other[0].id != ids[0]


def test_work_estimate_orders_points_largest_first():
    from certify.sweep.execute import work_estimate

    base = {"model": {"width": 8}, "data": {"n": 4, "steps": 3, "dim": 2},
            "train": {"iterations": 20}, "certify": {"data_specific": False}}
    wider = {**base, "model": {"width": 16}}
    certified = {**base, "certify": {"data_specific": True}}
    assert work_estimate(wider) == 2 * work_estimate(base)
    assert work_estimate(certified) == work_estimate(base) * (20 + 27) / 20
    assert work_estimate({}) == 1.0  # missing values count as 1, never an error
    assert work_estimate({"model": {"width": "x"}, "data": {"n": True}}) == 1.0
