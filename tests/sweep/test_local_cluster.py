"""A real LocalCluster with 2 workers on a 4-point grid: certificates, rows, resume after
lost points and after Ctrl-C, and a worker killed inside one point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from certify.output.certificate import validate
from certify.sweep.execute import KILL_ENV
from certify.sweep.points import expand
from certify.sweep.results import read_csv
from certify.sweep.spec import load_spec

from .conftest import GRID, rows_without_times, sweep, write_spec

ROOT = Path(__file__).resolve().parents[2]


def test_two_workers_write_every_file_and_a_rerun_resumes(spec, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, _ = sweep(capsys, spec, "--out", out, "--jobs", "2")
    assert rc == 0, stdout
    assert "0 of 4 points already done" in stdout and "4 computed now, 0 failed" in stdout
    ids = [p.id for p in expand(load_spec(spec))]
    assert sorted(f.stem for f in (out / "points").glob("*.json")) == sorted(ids)
    cert = json.loads((out / "points" / f"{ids[0]}.json").read_text())
    assert validate(cert) == [] and cert["sweep_point"]["id"] == ids[0]
    assert cert["case"]["name"] == f"tiny-sweep-{ids[0]}"
    rows = read_csv(out / "results.csv")
    assert [r["id"] for r in rows] == ids
    assert [(r["model.width"], r["data.n"]) for r in rows] == [("4", "3"), ("4", "4"),
                                                               ("8", "3"), ("8", "4")]
    assert {r["verdict"] for r in rows} == {"pass"}
    assert all(float(r["L_closed_max"]) > 0 and r["exit_time"] == "" for r in rows)
    header = (out / "results.csv").read_text().splitlines()[:2]
    assert header[0].startswith("id,model.width,data.n,verdict,reason,avg_loss")
    assert header[1].startswith("(unit),") and "s, wall time" in header[1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdicts"]["pass"] == 4 and summary["already_done"] == 0
    report = (out / "report.md").read_text()
    assert "figures/final-loss.png" in report and (out / "figures" / "final-loss.png").is_file()
    before = rows_without_times(out)
    for pid in ids[1:3]:  # two points lost
        (out / "points" / f"{pid}.json").unlink()
    rc, stdout, _ = sweep(capsys, spec, "--out", out, "--jobs", "2")
    assert rc == 0 and "2 of 4 points already done" in stdout and "2 computed now" in stdout
    assert rows_without_times(out) == before
    (out / "points" / f"{ids[0]}.json").write_text('{"verdict": ')  # not a certificate
    # recomputed on one worker with one NumPy thread per point: the same row
    rc, stdout, _ = sweep(capsys, spec, "--out", out, "--jobs", "1", "--threads", "1")
    assert rc == 0 and "3 of 4 points already done" in stdout and "1 computed now" in stdout
    assert validate(json.loads((out / "points" / f"{ids[0]}.json").read_text())) == []
    assert rows_without_times(out) == before


def test_a_killed_worker_fails_its_point_the_others_go_on(spec, tmp_path, capsys, monkeypatch):
    ids = [p.id for p in expand(load_spec(spec))]
    monkeypatch.setenv(KILL_ENV, ids[1])  # the workers inherit it: one dies in that point
    out = tmp_path / "out"
    rc, stdout, _ = sweep(capsys, spec, "--out", out, "--jobs", "2")
    assert rc == 1 and "3 computed now, 1 failed" in stdout
    assert f"FAILED   {ids[1]}: worker died" in stdout
    rows = {r["id"]: r for r in read_csv(out / "results.csv")}
    assert rows[ids[1]]["verdict"] == "failed" and "KilledWorker" in rows[ids[1]]["reason"]
    assert rows[ids[1]]["avg_loss"] == ""
    assert all(rows[i]["verdict"] == "pass" for i in ids if i != ids[1])
    assert not (out / "points" / f"{ids[1]}.json").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdicts"]["failed"] == 1 and summary["failed"][0]["id"] == ids[1]
    monkeypatch.delenv(KILL_ENV)
    rc, stdout, _ = sweep(capsys, spec, "--out", out)  # no --jobs: one worker per core
    assert rc == 0 and "3 of 4 points already done" in stdout and "1 computed now" in stdout


def test_ctrl_c_mid_sweep_then_a_rerun_finishes_the_rest(tmp_path):
    """SIGINT to the command's process group while points run (as Ctrl-C): exit 130, one
    line and no worker traceback, the finished certificates stay (each whole), the rerun
    computes only the rest."""
    spec = write_spec(tmp_path / "s", GRID.replace("[4, 8]", "[4, 6, 8, 10]")
                      + '"train.iterations" = [400]\n')
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "certify", "sweep", str(spec), "--out", str(out), "--jobs",
           "1"]
    env = os.environ | {"PYTHONPATH": str(ROOT), "CI": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "points").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole process group
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill() if proc.poll() is None else None
    done = len(list((out / "points").glob("*.json")))
    assert proc.returncode == 130 and "interrupted" in err, err
    assert "Traceback" not in err, err  # the workers ignore SIGINT; only the client acts
    assert 1 <= done < 8 and not (out / "results.csv").exists()
    assert not list((out / "points").glob(".*.tmp"))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    now = len(list((out / "points").glob("*.json")))
    assert now == 8 and f"{done} of 8 points already done" in res.stdout
    assert f"{8 - done} computed now" in res.stdout
