"""The pipeline end to end: certificates, verdicts, reports, compare, CLI run."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from certify.cli import main
from certify.output.certificate import validate
from tests.schema_util import assert_matches_schema

SMALL = """
name = "{name}"
[meta]
description = "small test case"
[model]
activation = "{act}"
width = 16
[init]
seed = 1
alpha0 = "{alpha0}"
[ball]
rho_w = "{rho}"
rho_u = "{rho}"
[data]
kind = "sphere"
n = 6
steps = 4
dim = 2
seed = 2
[target]
kind = "transport"
nu_w = "0.5"
nu_u = "0.5"
mc_draws = 4000
seed = 3
[train]
algorithm = "{alg}"
eta = "{eta}"
iterations = 40
[certify]
data_specific = {ds}
box_budget = 200
"""


def write_case(folder: Path, name="small", act="tanh", alpha0="0.5", alg="pgd", eta="0.05",
               ds="false", rho="1.0") -> Path:
    p = folder / f"{name}.toml"
    p.write_text(SMALL.format(name=name, act=act, alpha0=alpha0, alg=alg, eta=eta, ds=ds,
                              rho=rho))
    return p


@pytest.fixture
def case_dir(tmp_path):
    d = tmp_path / "cases"
    d.mkdir()
    return d


def test_run_writes_valid_certificate_and_report(case_dir, tmp_path, capsys):
    write_case(case_dir)
    out = tmp_path / "out"
    assert main(["run", str(case_dir / "small.toml"), "--out", str(out), "--quiet"]) == 0
    cert = json.loads((out / "small.json").read_text())
    assert validate(cert) == []
    assert_matches_schema(cert)
    assert cert["verdict"] == "pass", cert["reasons"]
    assert cert["environment"]["interval_engine"] == "mpmath.iv"
    assert "certified" in cert["rigor"] and "observed" in cert["rigor"]
    # intervals are decimal-string pairs; closed form of L_0 is σ₁K = √2 for tanh
    lo, hi = cert["constants"]["closed_form"]["L"][0]
    assert float(lo) <= 2 ** 0.5 <= float(hi)
    assert len(cert["executor"]["loss"]) == 40
    assert len(cert["executor"]["drift"]["slack"]) == 40
    md = (out / "small.md").read_text()
    assert "PASS" in md and "certified" in md and "observed" in md
    assert "certified/lower" in md and "no data-specific bounds" in md  # data_specific = false
    assert "median" in md and "a-priori bound on the average applies" in md
    assert "gain over closed form at last t" in (out / "index.md").read_text()
    assert (out / "small-loss.png").exists() and (out / "index.md").exists()
    assert "1 passed, 0 failed" in capsys.readouterr().out


def test_regimes_are_named(case_dir, tmp_path):
    import certify

    for alpha0, regime in (("0.5", "short"), ("0.75", "cutoff"), ("1.0", "long")):
        p = write_case(case_dir, name=f"r{alpha0.replace('.', '')}", alpha0=alpha0)
        cert = certify.run(certify.load_case(p))
        assert_matches_schema(cert)
        assert regime in cert["constants"]["regime"], (alpha0, cert["constants"]["regime"])


def test_gd_reports_exit_time(case_dir):
    import certify

    p = write_case(case_dir, name="gdexit", alg="gd", eta="3.0", rho="0.02")
    cert = certify.run(certify.load_case(p))
    assert_matches_schema(cert)
    ex = cert["executor"]
    assert ex["algorithm"] == "gd"
    assert ex["exit_time"] is not None
    assert max(ex["radius"]["w"] + ex["radius"]["u"]) > 0.02


def test_bad_case_exit_2_and_nothing_written(case_dir, tmp_path):
    p = write_case(case_dir)
    p.write_text(p.read_text().replace("width = 16", "width = 15"))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "certify", "run", str(p), "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert "width" in r.stderr and str(p.name) in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_folder_with_one_bad_case_writes_nothing(case_dir, tmp_path):
    write_case(case_dir, name="good")
    bad = write_case(case_dir, name="bad")
    bad.write_text(bad.read_text().replace('rho_u = "1.0"', 'rho_u = "1.0"\nextra = 1'))
    assert "extra" in bad.read_text()
    out = tmp_path / "out"
    assert main(["run", str(case_dir), "--out", str(out), "--quiet"]) == 2
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("args,needle", [
    (["run", "no/such/case.toml"], "no such file"),
    (["run", "tests/README.md"], ".toml"),
    (["run", "cases", "--jobs", "0"], "--jobs"),
    (["run", "cases", "--backend", "fortran"], "--backend"),
    (["compare", "no/such", "cases"], "no such"),
    (["report", "no/such"], "not a folder"),
])
def test_cli_bad_arguments(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_compare_cli_folders(case_dir, tmp_path, capsys):
    write_case(case_dir)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", str(case_dir), "--out", str(a), "--quiet", "--no-report"]) == 0
    assert main(["run", str(case_dir), "--out", str(b), "--quiet", "--no-report"]) == 0
    assert main(["compare", str(a), str(b)]) == 0
    (b / "small.json").unlink()
    assert main(["compare", str(a), str(b)]) == 1
    assert "missing" in capsys.readouterr().out


def test_pytest_plugin_collects_case_files(case_dir, tmp_path):
    write_case(case_dir)
    r = subprocess.run([sys.executable, "-m", "pytest", str(case_dir), "-q", "-p",
                        "no:cacheprovider", "-o", "addopts=", "--rnn-certify-out",
                        str(tmp_path / "o")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout


def test_pytest_junitxml_has_one_testcase_per_case_file_with_its_verdict(case_dir, tmp_path):
    """``pytest cases/ --junitxml=…``: one <testcase> per case file, named after it, with
    its verdict as a property; a case that does not pass is a <failure> naming the
    verdict.  Two tiny cases: one passes, one is unknown (η = 1e300)."""
    import xml.etree.ElementTree as ET

    write_case(case_dir, name="tiny")
    huge = write_case(case_dir, name="huge", eta="1e300")
    huge.write_text(huge.read_text().replace("iterations = 40", "iterations = 5"))
    xml = tmp_path / "junit.xml"
    r = subprocess.run([sys.executable, "-m", "pytest", str(case_dir), "-q", "-p",
                        "no:cacheprovider", "-o", "addopts=", f"--junitxml={xml}",
                        "--rnn-certify-out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr  # one case did not pass
    cases = {tc.get("name"): tc for tc in ET.parse(xml).getroot().iter("testcase")}
    assert set(cases) == {"tiny", "huge"}
    verdicts = {name: {p.get("name"): p.get("value") for p in tc.iter("property")}["verdict"]
                for name, tc in cases.items()}
    assert verdicts == {"tiny": "pass", "huge": "unknown"}
    assert cases["tiny"].find("failure") is None
    failure = cases["huge"].find("failure")
    assert failure is not None and "verdict unknown" in failure.get("message")
    # classname: the file's path from pytest's rootdir (here the case folder itself)
    assert all(tc.get("classname").endswith(f"{n}.toml") for n, tc in cases.items())
    assert_matches_schema(tmp_path / "o" / "tiny.json")  # written by the subprocess


class _Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def test_progress_shows_on_a_terminal_and_stays_quiet_in_ci(monkeypatch):

    from certify.progress import Progress

    monkeypatch.delenv("CI", raising=False)
    s = _Tty()
    p = Progress(3, stream=s)
    p.start_case(2, "tanh-cutoff")
    p.set_stage("executor")
    p.iteration(10, 300)
    assert "[case 2/3] tanh-cutoff: executor" in s.getvalue()
    monkeypatch.setenv("CI", "true")
    q = _Tty()
    Progress(3, stream=q).start_case(1, "x")
    assert q.getvalue() == ""
    r = io.StringIO()  # piped: not a terminal
    monkeypatch.delenv("CI")
    Progress(1, stream=r).start_case(1, "x")
    assert r.getvalue() == ""


def test_progress_bars_are_tqdm_and_vanish_when_done(monkeypatch):
    """On a terminal: a case bar and a step bar (tqdm), both gone after ``done``;
    disabled (CI, piped, ``--quiet``): no bar is created at all."""

    from certify.progress import Progress

    monkeypatch.delenv("CI", raising=False)
    s = _Tty()
    p = Progress(2, stream=s)
    p.start_case(1, "small")
    p.set_stage("data-specific constants")
    p.substage("boxes", 3, 10)
    p.iteration(40, 40)
    assert type(p._cases).__module__.startswith("tqdm") and p._steps is not None
    out = s.getvalue()
    assert "[case 1/2] small: data-specific constants" in out and "boxes" in out
    assert "iteration" in out and p._steps.n == 40 and p._steps.total == 40
    p.done()
    assert p._cases is None and p._steps is None
    quiet = Progress(2, enabled=False, stream=_Tty())
    quiet.start_case(1, "small")
    quiet.iteration(1, 40)
    quiet.done()
    assert quiet.stream.getvalue() == "" and quiet._cases is None


def test_held_out_error_in_the_certificate(case_dir, tmp_path):
    """``[data].test_n``: the error on held-out samples at the last iterate and at Θ(0),
    recomputed here from the certificate's final iterate with the loss of certify.train."""
    import numpy as np

    from certify.cases.case import load_case
    from certify.runner import run
    from certify.train import rnn

    p = write_case(case_dir)
    p.write_text(p.read_text().replace("seed = 2\n", "seed = 2\ntest_n = 9\n"))
    case = load_case(p)
    cert = run(case).data
    assert_matches_schema(cert)
    ho = cert["executor"]["held_out"]
    Xt, Yt, c = case.data.X_test, case.data.Y_test, case.init.c
    assert ho["n"] == 9 and Xt.shape == (9, 4, 2)
    init = rnn.loss(case.init.w0, case.init.U0, c, Xt, Yt)
    assert ho["loss_at_init"] == init  # symmetric init: f = 0, so R̂ = mean ½y²
    assert init == pytest.approx(0.5 * float(np.mean(Yt**2)), rel=1e-12)
    res = run(case)  # deterministic: the same final iterate, the same held-out error
    assert res.data["executor"]["held_out"] == ho
    assert ho["relative"] == ho["loss"] / ho["loss_at_init"] and 0 < ho["relative"]
