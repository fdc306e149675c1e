"""``rnn-certify constants``: JSON contract, table output, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import mpmath
import pytest

from certify.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "certify", *args], capture_output=True,
                          text=True, timeout=120)


def test_constants_json_contract(capsys):
    assert main(["constants", "--activation", "tanh", "--alpha", "0.9", "--steps", "12",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"activation", "alpha_m", "t", "L", "beta"}
    assert set(out["activation"]) >= {"name", "sigma0", "sigma1", "sigma2"}
    assert out["t"] == list(range(12))
    assert len(out["L"]) == len(out["beta"]) == 12
    # intervals are ["lo", "hi"] decimal strings; L_t = σ₁K Σ_{k≤t} q^k with K = √2
    with mpmath.workdps(40):
        for t, (lo, hi) in enumerate(out["L"]):
            exact = mpmath.sqrt(2) * sum(mpmath.mpf("0.9") ** k for k in range(t + 1))
            assert mpmath.mpf(lo) <= exact <= mpmath.mpf(hi), (t, lo, hi, exact)
            assert mpmath.mpf(hi) - mpmath.mpf(lo) < 1e-12 * exact
    assert out["regime"].startswith("short memory")


def test_constants_at_the_cutoff_and_beyond(capsys):
    main(["constants", "--activation", "tanh", "--alpha", "1", "--steps", "5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert "cutoff" in out["regime"]
    main(["constants", "--activation", "logistic", "--alpha", "8", "--steps", "5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["regime"].startswith("long memory")  # q = σ₁α = 8/4 = 2
    main(["constants", "--activation", "logistic", "--alpha", "4", "--steps", "5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert "cutoff" in out["regime"]  # exactly α = 1/σ₁


def test_constants_table_output(capsys):
    assert main(["constants", "--activation", "gaussian", "--alpha", "0.5", "--steps",
                 "3"]) == 0
    text = capsys.readouterr().out
    assert "certified" in text and "beta_t" in text


@pytest.mark.parametrize("args,needle", [
    (["--activation", "foo", "--alpha", "1", "--steps", "3"], "--activation"),
    (["--activation", "tanh", "--alpha", "-1", "--steps", "3"], "--alpha"),
    (["--activation", "tanh", "--alpha", "x", "--steps", "3"], "--alpha"),
    (["--activation", "tanh", "--alpha", "1", "--steps", "0"], "--steps"),
    (["--activation", "z**2", "--alpha", "1", "--steps", "3"], "--activation"),
    (["--activation", "tanh(z", "--alpha", "1", "--steps", "3"], "--activation"),
])
def test_bad_input_one_line_exit_2(args, needle):
    r = run_cli("constants", *args)
    assert r.returncode == 2, r
    assert needle in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stdout == ""
