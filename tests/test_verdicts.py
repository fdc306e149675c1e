"""Verdict rules (issue #11 §3): ``pass`` needs every iterate checked by a check that
resolves the inequality; a bound that is not finite is ``unknown``, not ``fail``."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from mpmath import iv, mpf

from certify import runner
from certify.bounds import data_constants
from certify.cases.case import load_case
from certify.output.certificate import validate
from certify.train import executor, rnn
from tests.schema_util import assert_matches_schema
from tests.test_runner import write_case


def _gd_case(tmp_path, name, eta, T, alg, ds):
    """The small case of tests/test_runner.py with T steps, 10 iterations and a cheap
    data-specific stage."""
    p = write_case(tmp_path, name=name, alg=alg, eta=eta, ds=ds)
    text = (p.read_text().replace("steps = 4", f"steps = {T}")
            .replace("mc_draws = 4000", "mc_draws = 2000")
            .replace("iterations = 40", "iterations = 10")
            .replace("box_budget = 200", "box_budget = 20\nrel_tol = 0.1\nlower_samples = 8"))
    p.write_text(text)
    return p


def certify(tmp_path, *, eta, T, alg="gd", ds="false", name="v"):
    cert = runner.run(load_case(_gd_case(tmp_path, name, eta, T, alg, ds))).data
    assert validate(cert) == []
    assert_matches_schema(cert)
    return cert


def test_huge_step_with_unchecked_iterates_is_unknown(tmp_path):
    """η = 1e15, T = 12: only Θ(0)'s step had finite constants (before: pass, 1 of 10
    checked); now unknown, and the reasons count the iterates per reason."""
    cert = certify(tmp_path, eta="1e15", T=12)
    drift = cert["executor"]["drift"]
    assert cert["verdict"] == "unknown"
    assert drift["checked"] == 0
    counts = drift["not_checked_by_reason"]
    assert sum(counts.values()) == 10 and counts.get("allowance_not_small") == 1
    text = drift["not_checked_text"]
    assert text.startswith("10 of 10 iterates not checked: ") and text in cert["reasons"]
    assert "allowance not small (rule: checked only if fp_k <= 2^-20" in text
    assert all(drift["not_checked_legend"][c] in text for c in counts)
    assert len(drift["not_checked_reason"]) == 10 and None not in drift["not_checked_reason"]
    # the report says how many iterates were checked and why the others were not
    from certify.output.report import render

    md = render(cert, {})
    assert "- iterates checked: 0 of 10" in md
    assert "- not checked: " in md and "1 × " + drift["not_checked_legend"][
        "allowance_not_small"] in md
    assert "counts as checked only if" in md and "- gradient check" in md


def test_vacuous_allowance_is_not_a_check(tmp_path):
    """η = 1e30, T = 3: every step had finite constants and a slack above −fp, with an
    allowance of 1e181 (before: pass); the allowance is not small against
    2η(|R̂(Θ(k))| + |R̂(Θ̄)|), so no iterate counts as checked."""
    cert = certify(tmp_path, eta="1e30", T=3)
    drift = cert["executor"]["drift"]
    assert cert["verdict"] == "unknown"
    assert drift["not_checked_by_reason"] == {"allowance_not_small": 10}
    assert drift["allowance_rule"]["ratio_max"] > 1e100
    assert drift["allowance_rule"]["resolution"] == 2.0 ** -20
    assert drift["violations"] == []


def test_small_step_passes_and_states_the_rule(tmp_path):
    cert = certify(tmp_path, eta="0.05", T=3)
    drift = cert["executor"]["drift"]
    assert cert["verdict"] == "pass", cert["reasons"]
    assert drift["checked"] == 10 and drift["not_checked_text"] is None
    assert drift["not_checked_reason"] == [None] * 10
    assert 0 < drift["allowance_rule"]["ratio_max"] < executor.RESOLUTION
    assert any(executor.ALLOWANCE_RULE in line for line in cert["rigor"]["checked"])
    assert cert["executor"]["gradient_check"]["status"] == "ok"
    assert [p["k"] for p in cert["executor"]["gradient_check"]["points"]] == [0, 9]


@pytest.mark.parametrize("status", ["inconclusive", "skipped"])
def test_unconfirmed_gradient_is_unknown_not_pass(tmp_path, monkeypatch, status):
    """A gradient check that could not decide (the difference estimates disagree, or no
    gradient to compare) does not confirm that the run was gradient descent: unknown."""
    orig = executor._gradient_check

    def unsure(*a, **k):
        return orig(*a, **k) | {"status": status}

    monkeypatch.setattr(executor, "_gradient_check", unsure)
    cert = certify(tmp_path, eta="0.05", T=3)
    assert cert["verdict"] == "unknown", cert["reasons"]
    assert cert["executor"]["drift"]["checked"] == 10
    line = next(r for r in cert["reasons"] if r.startswith("executor gradient not confirmed"))
    assert f"k=0 ({status}: " in line and f"k=9 ({status}: " in line


def _nonfinite_beta(t):
    orig = data_constants.certify_data_constants

    def fake(*a, **kw):
        dc = orig(*a, **kw)
        B = list(dc.certified_beta)
        B[t] = iv.mpf([B[t].a, mpf("inf")])
        return dataclasses.replace(dc, certified_beta=B)
    return fake


def test_nonfinite_data_specific_bound_is_unknown_not_fail(tmp_path, monkeypatch):
    """README and INTERFACE.md: a bound that is not finite gives unknown (before: fail)."""
    monkeypatch.setattr(data_constants, "certify_data_constants", _nonfinite_beta(1))
    cert = certify(tmp_path, eta="0.05", T=3, alg="pgd", ds="true")
    assert cert["verdict"] == "unknown", cert["reasons"]
    assert any(r.startswith("t=1: certified beta is not finite") for r in cert["reasons"])
    # the drift check then uses the (finite) closed form at t = 1
    assert cert["constants"]["drift_beta"][1] == cert["constants"]["closed_form"]["beta"][1][1]


def test_failure_outranks_a_nonfinite_bound(tmp_path, monkeypatch):
    orig = _nonfinite_beta(2)

    def fake(*a, **kw):  # t = 2 not finite, t = 0 below its observed lower bound
        dc = orig(*a, **kw)
        B = list(dc.certified_beta)
        B[0] = B[0] * iv.mpf("0.5")
        return dataclasses.replace(dc, certified_beta=B)

    monkeypatch.setattr(data_constants, "certify_data_constants", fake)
    cert = certify(tmp_path, eta="0.05", T=3, alg="pgd", ds="true")
    assert cert["verdict"] == "fail"
    assert any("< lower bound" in r for r in cert["reasons"])


@pytest.mark.parametrize("slack,fp,scale,expected", [
    (1.0, 2.0 ** -21, 1.0, None),                  # small allowance: checked
    (1.0, 2.0 ** -20, 1.0, None),                  # at the rule: checked
    (1.0, 2.0 ** -19, 1.0, "allowance_not_small"),
    (1.0, 1e-30, 0.0, "allowance_not_small"),      # nothing to resolve against
    (-1.0, 0.5, 1.0, None),                        # beyond the allowance: a violation
])
def test_resolution_rule(slack, fp, scale, expected):
    assert executor._resolution_reason(slack, fp, scale) == expected


def test_violation_beyond_a_large_allowance_still_counts():
    """A slack below −fp_k is a violation whatever the ratio: a huge fp_factor does not
    hide a real violation (β = 0 against a comparator that needs β)."""
    from tests.train.test_executor import constants, permuted_case, run_train

    ini, X, Y, bar, rho_w, rho_u = permuted_case(0, 1.0)
    L, B = constants(1.0, X.shape[1])
    kw = dict(eta=0.5, iterations=40, rho_w=rho_w, rho_u=rho_u, comparator=bar, L=L)
    bad = run_train(ini, X, Y, beta=0 * B, **kw)
    k = bad.argmin_slack
    factor = 16.0 * 0.5 * (-bad.slack[k]) / bad.fp_allowance[k]  # fp_k = |slack_k| / 2
    big = run_train(ini, X, Y, beta=0 * B, fp_factor=factor, **kw)
    assert k in big.violations and big.checked[k]
    assert big.allowance_ratio[k] > executor.RESOLUTION
    assert not big.passed


def test_gradient_check_sees_a_scaled_gradient(monkeypatch):
    from tests.train.test_executor import constants, run_train, teacher_case

    ini, X, Y, cmp, rho_w, rho_u = teacher_case(1, 0.6)
    L, B = constants(0.6, X.shape[1])
    kw = dict(eta=0.5, iterations=3, rho_w=rho_w, rho_u=rho_u, comparator=cmp, beta=B, L=L)
    ok = run_train(ini, X, Y, **kw)
    assert ok.gradient_check["status"] == "ok" and ok.passed
    assert all(p["rel_err"] < 1e-8 for p in ok.gradient_check["points"])
    orig = rnn._evaluate
    monkeypatch.setattr(rnn, "_evaluate", lambda *a, **k: (
        lambda r: dict(r, gw=r["gw"] * 1.01, gU=r["gU"] * 1.01) if r.get("gw") is not None
        else r)(orig(*a, **k)))
    bad = run_train(ini, X, Y, **kw)
    assert bad.gradient_check["status"] == "mismatch" and not bad.passed
    assert math.isclose(bad.gradient_check["points"][0]["rel_err"], 0.01 / 1.01, rel_tol=1e-4)


def test_summary_fields_are_plain_json():
    import json

    from tests.train.test_executor import constants, run_train, teacher_case

    ini, X, Y, cmp, rho_w, rho_u = teacher_case(6, 1.0)
    L, B = constants(1.0, X.shape[1])
    res = run_train(ini, X, Y, eta=0.3, iterations=5, rho_w=rho_w,
                    rho_u=rho_u, comparator=cmp, beta=[np.inf] * X.shape[1], L=L)
    s = res.summary()
    json.dumps(s, allow_nan=False)
    assert s["drift"]["not_checked_by_reason"] == {"beta_not_finite": 5}
    assert s["drift"]["checked"] == 0
    assert s["drift"]["not_checked_text"] == "5 of 5 iterates not checked: 5 β_t of Ω_ρ not finite"
