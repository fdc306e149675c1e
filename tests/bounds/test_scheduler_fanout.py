"""``run PATH --scheduler ADDRESS`` and ``BoundsSettings(scheduler=…)``: the screening
chunks and trusted tasks of the data-specific bounds run on a dask cluster — a real
scheduler with 2 worker processes started here — and give the same certified numbers
as a serial run; a scheduler that cannot be reached is one line, exit 2, nothing written."""

from __future__ import annotations

import json

import pytest

from certify import cli
from certify.bounds.data_constants import Ball, BoundsSettings, certify_data_constants
from tests.bounds.test_data_constants import sphere_data, symmetric
from tests.sweep.conftest import TINY_CASE
from tests.sweep.test_scheduler import scheduler  # noqa: F401  (the fixture)

pytest.importorskip("distributed")

FAST = dict(rel_tol=0.3, box_budget=400, lower_samples=8)


def test_bounds_on_a_cluster_equal_the_serial_ones(scheduler):  # noqa: F811
    X = sphere_data(3, 3, 2, 5)
    init = symmetric(4, 2, 0.5, 6)
    args = ("tanh", X, init, Ball(4, "0.6", "0.6"), None, 3)
    serial = certify_data_constants(*args, settings=BoundsSettings(**FAST))
    fanned = certify_data_constants(*args, settings=BoundsSettings(scheduler=scheduler, **FAST))
    assert fanned.certified_L == serial.certified_L
    assert fanned.certified_beta == serial.certified_beta
    assert fanned.lower_L == serial.lower_L and fanned.lower_beta == serial.lower_beta
    assert fanned.settings["jobs"] == 2  # one chunk per worker thread of the cluster
    assert fanned.tightness["chunks"] == 2


def _constants(path):
    c = json.loads(path.read_text())["constants"]
    return c["certified"]["L"], c["certified"]["beta"], c["lower"]


def test_run_with_scheduler_gives_the_serial_certificate(tmp_path, capsys, scheduler):  # noqa: F811
    case = tmp_path / "tiny.toml"
    case.write_text(TINY_CASE.replace("data_specific = false", "data_specific = true\n"
                                      "rel_tol = 0.3\nbox_budget = 200\nlower_samples = 8"))
    assert cli.main(["run", str(case), "--out", str(tmp_path / "serial"), "--quiet",
                     "--no-report"]) == 0
    assert cli.main(["run", str(case), "--out", str(tmp_path / "cluster"), "--quiet",
                     "--no-report", "--scheduler", scheduler]) == 0
    assert (_constants(tmp_path / "cluster" / "tiny.json")
            == _constants(tmp_path / "serial" / "tiny.json"))


def test_unreachable_scheduler_is_one_line(tmp_path, capsys):
    import dask

    case = tmp_path / "tiny.toml"
    case.write_text(TINY_CASE)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        rc = cli.main(["run", str(case), "--out", str(tmp_path / "out"), "--quiet",
                       "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("rnn-certify: error: argument --scheduler: cannot "
                                               "connect to scheduler tcp://127.0.0.1:9"), err
    assert not (tmp_path / "out").exists()
