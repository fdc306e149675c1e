"""``compare``: every guarded field of a real certificate, mutated one at a time.

The certificates are the shipped baselines (``cases/baselines/``): a mutated copy
must be flagged with a message naming the field, an unmutated copy and a change
within the stated tolerance must not be.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest

from certify.cli import main
from certify.output import compare as cmp
from certify.output.compare import compare_certificates, compare_paths

BASELINES = Path(__file__).resolve().parents[2] / "cases" / "baselines"
PGD = "tanh-short-memory"   # projected GD, data-specific constants, a-priori bound applies
GD = "tanh-gd-exit"         # plain GD that leaves Ω_ρ at k = 6


def load(name: str = PGD) -> dict:
    return json.loads((BASELINES / f"{name}.json").read_text())


def _keys(path: str):
    return [int(k) if k.isdigit() else k for k in path.split(".")]


def get(doc, path: str):
    for k in _keys(path):
        doc = doc[k]
    return doc


def put(doc, path: str, value) -> dict:
    *head, last = _keys(path)
    for k in head:
        doc = doc[k]
    doc[last] = value
    return doc


def mutated(path: str, fn, name: str = PGD) -> dict:
    doc = load(name)
    put(doc, path, fn(get(doc, path)))
    return doc


def scale(v, f):
    """``v`` times ``f``: a float, a decimal string, or the upper end of ``["lo", "hi"]``."""
    if isinstance(v, list):
        return [v[0], scale(v[1], f)]
    if isinstance(v, str):
        return str(Decimal(v) * Decimal(str(f)))
    return v * f


# (field path, worse factor): certified upper ends and observed values where larger is worse
GROW = [
    ("activation.sigma0", 1.5), ("activation.sigma1", 1.5), ("activation.sigma2", 1.5),
    ("constants.alpha_m", 1.01), ("constants.q", 1.01),
    ("constants.closed_form.L.2", 1.01), ("constants.closed_form.beta.2", 1.01),
    ("constants.certified.L.2", 1.01), ("constants.certified.beta.2", 1.01),
    ("constants.drift_beta.2", 1.01),
    ("executor.avg_loss", 100.0), ("executor.final_loss", 100.0),
    ("executor.apriori.bound", 2.0),
    ("executor.drift.fp_allowance.max", 4.0), ("executor.drift.fp_allowance.values.5", 4.0),
]
# (field path, new value or function of the old one, name in the message)
OTHER = [
    ("verdict", "fail", "verdict"), ("verdict", "unknown", "verdict"),
    ("executor.drift.min_slack", lambda v: v * 0.5, "executor.drift.min_slack lower"),
    ("executor.drift.min_slack", -1e-3, "executor.drift.min_slack negative"),
    ("executor.drift.min_slack", -1e-20, "executor.drift.min_slack negative"),
    ("executor.drift.violations", [7], "executor.drift.violations"),
    ("executor.drift.not_checked", [3], "executor.drift.not_checked"),
    ("executor.drift.checked", 299, "executor.drift.checked"),
    ("executor.apriori.holds", False, "executor.apriori.holds"),
    ("executor.apriori.applicable", False, "executor.apriori.applicable"),
    ("executor.exit_time", 5, "executor.exit_time"),
    ("executor.gradient_check.status", "inconclusive", "gradient check worse: ok -> incon"),
    ("executor.gradient_check.status", "mismatch", "gradient check worse: ok -> mismatch"),
    ("executor.gradient_check.status", None, "gradient check worse: ok -> None"),
    ("constants.closed_form.L", lambda v: v[:-1], "constants.closed_form.L at t=7"),
    ("timings", lambda v: {k: x * 10 + 10 for k, x in v.items()}, "slowdown"),
]
FIELD = {p: p.rsplit(".", 1)[0] if p[-1].isdigit() else p for p, _ in GROW}


def _rtol(path: str) -> float:
    """The stated tolerance of a field: certified (activation, constants) or observed."""
    return cmp.DEFAULT_RTOL if path.startswith(("activation.", "constants.")) \
        else cmp.OBSERVED_RTOL


def test_baselines_are_not_flagged_against_themselves(capsys):
    for f in sorted(BASELINES.glob("*.json")):
        doc = json.loads(f.read_text())
        assert compare_certificates(doc, copy.deepcopy(doc)) == [], f.name
    assert compare_paths(BASELINES, BASELINES) == []
    assert main(["compare", str(BASELINES), str(BASELINES)]) == 0
    assert "no regressions" in capsys.readouterr().out


def test_certificate_objects_compare_like_dicts():
    from certify.output.certificate import Certificate

    assert compare_certificates(Certificate(load()), Certificate(load())) == []
    worse = Certificate(mutated("executor.avg_loss", lambda v: v * 100))
    assert [p for p in compare_certificates(Certificate(load()), worse) if "avg_loss" in p]


@pytest.mark.parametrize("path,factor", GROW, ids=[p for p, _ in GROW])
def test_each_loosened_or_worse_field_is_flagged_with_its_tolerance(path, factor):
    probs = compare_certificates(load(), mutated(path, lambda v: scale(v, factor)))
    assert len(probs) >= 1
    hit = [p for p in probs if FIELD[path] in p]
    assert hit, probs
    assert f"tolerance {_rtol(path):g} relative" in hit[0]
    assert hit[0].startswith(f"{PGD}: ")


@pytest.mark.parametrize("path,factor", GROW, ids=[p for p, _ in GROW])
def test_a_change_within_tolerance_or_an_improvement_is_not_flagged(path, factor):
    within = 1 + _rtol(path) / 10
    assert compare_certificates(load(), mutated(path, lambda v: scale(v, within))) == []
    assert compare_certificates(load(), mutated(path, lambda v: scale(v, 0.5))) == []


@pytest.mark.parametrize("path,value,needle", OTHER, ids=[f"{p}={n}" for p, _, n in OTHER])
def test_each_other_regression_is_flagged(path, value, needle):
    fn = value if callable(value) else (lambda _: value)
    probs = compare_certificates(load(), mutated(path, fn))
    assert any(needle in p for p in probs), probs


def test_min_slack_within_tolerance_and_higher_is_not_flagged():
    base = load()
    fp = get(base, "executor.drift.fp_allowance.max")
    for fn in (lambda v: v - fp / 2, lambda v: v * (1 - cmp.OBSERVED_RTOL / 10),
               lambda v: v * 2):
        assert compare_certificates(base, mutated("executor.drift.min_slack", fn)) == []


def test_lower_min_slack_names_a_tightened_drift_beta():
    new = mutated("executor.drift.min_slack", lambda v: v * 0.5)
    put(new, "constants.drift_beta.3", scale(get(new, "constants.drift_beta.3"), 0.9))
    (msg,) = compare_certificates(load(), new)
    assert "min_slack lower" in msg and "drift_beta tightened" in msg


def test_gd_exit_earlier_is_flagged_and_later_is_not():
    base = load(GD)
    assert get(base, "executor.exit_time") == 6
    earlier = compare_certificates(base, mutated("executor.exit_time", lambda _: 3, GD))
    assert any("executor.exit_time" in p and "6 -> 3" in p for p in earlier)
    for later in (7, None):
        assert compare_certificates(base, mutated("executor.exit_time",
                                                  lambda _, v=later: v, GD)) == []


GUARDED = [p for p, _ in GROW] + ["executor.drift.min_slack"]


@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize("bad", [None, "inf", "nan", "missing"])
def test_a_field_missing_or_not_finite_in_new_is_flagged(path, bad):
    new = load()
    *head, last = path.rsplit(".", 1)
    if bad == "missing":  # a key removed, or a list cut short before that index
        parent = get(new, head[0])
        del parent[slice(int(last), None) if last.isdigit() else last]
    else:
        old = get(new, path)
        value = None if bad is None else (
            [old[0], bad] if isinstance(old, list) else (bad if isinstance(old, str)
                                                         else float(bad)))
        put(new, path, value)
    probs = compare_certificates(load(), new)
    assert any(FIELD.get(path, path) in p and "missing or not finite" in p
               for p in probs), probs


def test_a_missing_data_specific_block_is_flagged_once_per_list():
    new = load()
    new["constants"]["certified"] = None
    probs = compare_certificates(load(), new)
    for q in ("L", "beta"):
        (msg,) = [p for p in probs if f"constants.certified.{q} " in p]
        assert "at t=0" in msg and "and at 7 more t" in msg


def test_numpy_and_torch_runs_of_one_case_are_not_flagged(tmp_path):
    """Observed floats differ between backends in the last bits (about 1e-14 relative):
    within OBSERVED_RTOL, so not a regression."""
    pytest.importorskip("torch")
    import certify
    from tests.test_runner import write_case

    case = certify.load_case(write_case(tmp_path))
    a, b = (dict(certify.run(case, backend=be).data) for be in ("numpy", "torch"))
    assert compare_certificates(a, b) == []
    assert compare_certificates(b, a) == []


@pytest.mark.parametrize("text,needle", [("[1, 2]", "not an object"), ("{", "line 1"),
                                         ("\xff\xfe", "not a JSON certificate")])
def test_a_file_that_is_not_a_certificate_is_a_one_line_error(tmp_path, capsys, text, needle):
    bad = tmp_path / "bad.json"
    bad.write_bytes(text.encode("latin-1"))
    assert main(["compare", str(BASELINES / f"{PGD}.json"), str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and needle in err and err.count("\n") == 1


def test_a_certificate_with_missing_fields_is_a_one_line_error(tmp_path, capsys):
    doc = load()
    del doc["executor"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["compare", str(BASELINES / f"{PGD}.json"), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not a valid certificate (missing field 'executor')" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("version,rc", [("1.1", 0), ("2.0", 2)])
def test_compare_across_schema_versions(tmp_path, capsys, version, rc):
    """A later minor version is compared field by field (its new fields are ignored); a
    different major version is refused with a one-line error."""
    doc = load()
    doc["schema_version"] = version
    doc["executor"]["new_field_of_a_later_version"] = {"x": 1}
    new = tmp_path / "new.json"
    new.write_text(json.dumps(doc))
    assert main(["compare", str(BASELINES / f"{PGD}.json"), str(new)]) == rc
    if rc:
        err = capsys.readouterr().err
        assert "different major versions" in err and err.count("\n") == 1
