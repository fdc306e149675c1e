"""Case files: every shipped case loads; every bad input is a one-line UserError
naming the file and the key (INTERFACE.md "Case file")."""

from __future__ import annotations

import copy
import json
import math
import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certify.cases.case import Case, DecimalValue, load_case
from certify.cases.data import norm_violations
from certify.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "cases").glob("*.toml"))


# --------------------------------------------------------------------------
# a tiny TOML writer (tables one level deep), so tests can build case files


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(type(v))


def dump(doc: dict) -> str:
    lines = [f"{json.dumps(k)} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{json.dumps(kk)} = {_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


BASE = {
    "name": "tiny",
    "model": {"activation": "tanh", "width": 8},
    "init": {"seed": 1, "alpha0": "0.5"},
    "ball": {"rho_w": "1.0", "rho_u": "1.0"},
    "data": {"kind": "sphere", "n": 4, "steps": 3, "dim": 2, "seed": 2},
    "target": {"kind": "transport", "nu_w": "0.5", "nu_u": "0.5", "mc_draws": 200, "seed": 3},
    "train": {"algorithm": "pgd", "eta": "0.1", "iterations": 10},
}


def write(tmp_path: Path, doc: dict, name: str = "case.toml") -> Path:
    p = tmp_path / name
    p.write_text(dump(doc), encoding="utf-8")
    return p


def mutate(**changes) -> dict:
    """BASE with changes ``{"table.key": value}``; value ``DELETE`` removes the key."""
    doc = copy.deepcopy(BASE)
    for dotted, v in changes.items():
        parts = dotted.split(".")
        d = doc
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        if v is DELETE:
            d.pop(parts[-1], None)
        else:
            d[parts[-1]] = v
    return doc


DELETE = object()


# --------------------------------------------------------------------------
# shipped cases


def test_shipped_cases_exist():
    names = {p.stem for p in SHIPPED}
    expected = {"tanh-short-memory", "tanh-cutoff", "tanh-long-memory", "logistic", "gaussian",
                "tanh-gd-exit", "additive", "multi-index", "sunspots", "van-der-pol"}
    assert expected <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_case_loads(path):
    case = load_case(path)
    assert isinstance(case, Case)
    assert case.name == path.stem
    assert case.description and "\n" not in case.description
    m = case.width
    assert m % 2 == 0 and 32 <= m <= 256
    X, Y = case.data.X, case.data.Y
    n, T, d = X.shape
    assert 8 <= n <= 64 and 4 <= T <= 16 and 2 <= d <= 4
    assert 100 <= case.train.iterations <= 400
    assert X.dtype == np.float64 and Y.dtype == np.float64 and Y.shape == (n, T)
    assert np.isfinite(X).all() and np.isfinite(Y).all()
    assert not norm_violations(X).any()
    assert case.init.w0.shape == (m,) and case.init.U0.shape == (m, d)
    assert set(np.unique(case.init.c)) <= {-1.0, 1.0}
    # |w_i(0)| ≤ α₀ exactly
    a0 = case.init_spec.alpha0.exact
    assert all(Fraction(float(x)) <= a0 for x in np.abs(case.init.w0))
    ti = case.target_info
    assert ti.kind == case.target_spec.kind
    assert ti.in_class == (ti.kind == "transport")
    if ti.in_class:
        assert ti.stderr.shape == (n, T) and ti.mc_draws == case.target_spec.mc_draws
        assert ti.mc_draws > 10 * m  # M ≫ m
        if case.train.algorithm == "pgd":
            assert case.target_spec.nu_w.exact <= case.ball.rho_w.exact
            assert case.target_spec.nu_u.exact <= case.ball.rho_u.exact
    import hashlib

    assert case.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_memory_regimes_of_shipped_cases():
    """short memory: σ₁α_m < 1; cutoff: α_m = 1 = 1/σ₁ exactly; long memory: > 1."""

    def alpha_m_exact(case):
        # α_m = α₀ + ρ_w/√m; with m a perfect square this is rational
        r = math.isqrt(case.width)
        assert r * r == case.width
        return case.init_spec.alpha0.exact + case.ball.rho_w.exact / r

    short = load_case(ROOT / "cases/tanh-short-memory.toml", build=False)
    cutoff = load_case(ROOT / "cases/tanh-cutoff.toml", build=False)
    long = load_case(ROOT / "cases/tanh-long-memory.toml", build=False)
    assert alpha_m_exact(short) < 1
    assert alpha_m_exact(cutoff) == 1
    assert alpha_m_exact(long) > 1
    logistic = load_case(ROOT / "cases/logistic.toml", build=False)
    assert alpha_m_exact(logistic) * Fraction(1, 4) < 1
    gd = load_case(ROOT / "cases/tanh-gd-exit.toml", build=False)
    assert gd.train.algorithm == "gd"


# --------------------------------------------------------------------------
# exact decimals


def test_decimal_value_keeps_text():
    x = DecimalValue("0.1")
    assert float(x) == 0.1 and x.text == "0.1" and x.exact == Fraction(1, 10)
    assert isinstance(x, float) and x + 1 == 1.1
    y = pickle.loads(pickle.dumps(x))
    assert type(y) is DecimalValue and y.text == "0.1" and y.exact == Fraction(1, 10)
    assert json.loads(json.dumps({"a": x}))["a"] == 0.1
    assert DecimalValue(3).exact == 3 and DecimalValue("1_000.5").exact == Fraction(2001, 2)
    with pytest.raises(ValueError):
        DecimalValue("1/3")
    with pytest.raises(ValueError):
        DecimalValue(True)


@settings(max_examples=60, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, places=None,
                   min_value=-1e6, max_value=1e6))
def test_decimal_value_exact(dec):
    text = str(dec)
    x = DecimalValue(text)
    assert x.exact == Fraction(dec)
    assert float(x) == float(dec)


def test_toml_float_and_string_give_the_same_exact_value(tmp_path):
    a = load_case(write(tmp_path, mutate(**{"ball.rho_w": 0.1, "init.alpha0": 0.3,
                                                  "target.nu_w": "0.05"}), "a.toml"),
                  build=False)
    b = load_case(write(tmp_path, mutate(**{"ball.rho_w": "0.1", "init.alpha0": "0.3",
                                                  "target.nu_w": 0.05}), "b.toml"),
                  build=False)
    for case in (a, b):
        assert case.ball.rho_w.text == "0.1" and case.ball.rho_w.exact == Fraction(1, 10)
        assert case.init_spec.alpha0.exact == Fraction(3, 10)
    c = load_case(write(tmp_path, mutate(**{"ball.rho_w": 2}), "c.toml"), build=False)
    assert a.target_spec.nu_w.exact == b.target_spec.nu_w.exact == Fraction(1, 20)
    assert c.ball.rho_w.exact == 2 and c.ball.rho_w.text == "2"


def test_nu_equal_rho_is_decided_exactly(tmp_path):
    # equal as decimals (one a TOML float, one a string): accepted
    load_case(write(tmp_path, mutate(**{"ball.rho_w": 0.1, "target.nu_w": "0.1"}), "eq.toml"),
              build=False)
    # the same double, but the decimal ν̄_w exceeds ρ_w: rejected
    p = write(tmp_path, mutate(**{"ball.rho_w": "0.1", "target.nu_w": "0.10000000000000001"}),
              "gt.toml")
    assert float(DecimalValue("0.10000000000000001")) == 0.1
    with pytest.raises(UserError, match=r"\[target\]\.nu_w"):
        load_case(p, build=False)
    # plain GD does not need the comparator in the ball
    load_case(write(tmp_path, mutate(**{"ball.rho_w": "0.1", "target.nu_w": "0.5",
                                        "train.algorithm": "gd"}), "gd.toml"), build=False)


def test_defaults(tmp_path):
    case = load_case(write(tmp_path, BASE))
    assert case.train.loss == "all-steps"
    c = case.certify
    assert c.delta.exact == Fraction(1, 20) and c.data_specific is True
    assert c.box_budget == 2000 and c.rel_tol == 0.02
    assert c.lower_samples is None and c.fp_factor is None and c.time_limit_s is None
    assert c.engine == "mpmath.iv"
    assert case.meta == {} and case.description == ""
    assert case.seeds == {"init": 1, "data": 2, "target": 3}
    assert case.alpha_m == pytest.approx(0.5 + 1 / math.sqrt(8))


def test_optional_tables(tmp_path):
    doc = mutate(**{"certify.delta": 0.01, "certify.data_specific": False,
                    "certify.box_budget": 50, "certify.rel_tol": 0.1,
                    "certify.lower_samples": 16, "certify.fp_factor": 4.0,
                    "certify.time_limit_s": 90,
                    "meta.description": "hello", "meta.owner": "me", "train.loss": "final-step"})
    case = load_case(write(tmp_path, doc), build=False)
    assert case.certify.delta.text == "0.01" and case.certify.data_specific is False
    assert case.certify.box_budget == 50 and case.certify.lower_samples == 16
    assert case.certify.fp_factor == 4.0 and case.train.loss == "final-step"
    assert case.certify.time_limit_s == 90.0
    assert case.description == "hello" and case.meta["owner"] == "me"
    assert case.data is None and case.init is None and case.target_info is None


def test_custom_activation_expression(tmp_path):
    case = load_case(write(tmp_path, mutate(**{"model.activation": "sin(z)",
                                               "target.kind": "additive",
                                               "target.nu_w": DELETE, "target.nu_u": DELETE,
                                               "target.mc_draws": DELETE})))
    assert case.model.source == "sin(z)"


# --------------------------------------------------------------------------
# bad input: one line, file and key named

BAD = [
    ("missing-table", {"ball": DELETE}, "[ball]"),
    ("missing-key", {"model.width": DELETE}, "[model].width"),
    ("missing-name", {"name": DELETE}, "name"),
    ("bad-name", {"name": "a/b"}, "name"),
    ("unknown-key", {"model.widht": 8}, "[model].widht"),
    ("unknown-keys", {"model.foo": 1, "model.bar": 2}, "[model].foo"),
    ("unknown-table", {"foo": {"a": 1}}, "[foo]"),
    ("unknown-top-key", {"version": 1}, "version"),
    ("table-not-table", {"model": 3}, "[model]"),
    ("odd-width", {"model.width": 7}, "[model].width"),
    ("zero-width", {"model.width": 0}, "[model].width"),
    ("negative-width", {"model.width": -4}, "[model].width"),
    ("bool-width", {"model.width": True}, "[model].width"),
    ("float-width", {"model.width": 8.0}, "[model].width"),
    ("string-width", {"model.width": "8"}, "[model].width"),
    ("unknown-activation", {"model.activation": "relu"}, "[model].activation"),
    ("bad-activation-expr", {"model.activation": "z +* 2"}, "[model].activation"),
    ("not-c2-activation", {"model.activation": "sqrt(z**2)"}, "[model].activation"),
    ("negative-rho", {"ball.rho_w": -1.0}, "[ball].rho_w"),
    ("negative-rho-text", {"ball.rho_u": "-0.5"}, "[ball].rho_u"),
    ("rho-not-decimal", {"ball.rho_w": "abc"}, "[ball].rho_w"),
    ("rho-inf", {"ball.rho_w": math.inf}, "[ball].rho_w"),
    ("rho-nan", {"ball.rho_w": math.nan}, "[ball].rho_w"),
    ("rho-bool", {"ball.rho_w": True}, "[ball].rho_w"),
    ("negative-eta", {"train.eta": "-0.1"}, "[train].eta"),
    ("zero-eta", {"train.eta": 0}, "[train].eta"),
    ("negative-alpha0", {"init.alpha0": -0.5}, "[init].alpha0"),
    ("negative-seed", {"init.seed": -1}, "[init].seed"),
    ("float-seed", {"init.seed": 1.5}, "[init].seed"),
    ("nu-above-rho-pgd", {"target.nu_w": "1.5"}, "[target].nu_w"),
    ("nu-u-above-rho-pgd", {"target.nu_u": 2}, "[target].nu_u"),
    ("negative-nu", {"target.nu_u": -1}, "[target].nu_u"),
    ("mc-draws-one", {"target.mc_draws": 1}, "[target].mc_draws"),
    ("unknown-data-kind", {"data.kind": "csv"}, "[data].kind"),
    ("zero-n", {"data.n": 0}, "[data].n"),
    ("key-for-other-kind", {"data.series": "sunspots"}, "[data].series"),
    ("unknown-target-kind", {"target.kind": "xor"}, "[target].kind"),
    ("file-target-without-file-data", {"target.kind": "file", "target.nu_w": DELETE,
                                       "target.nu_u": DELETE, "target.mc_draws": DELETE,
                                       "target.seed": DELETE}, "[target].kind"),
    ("data-target-without-source", {"target.kind": "data", "target.nu_w": DELETE,
                                    "target.nu_u": DELETE, "target.mc_draws": DELETE,
                                    "target.seed": DELETE}, "[target].kind"),
    ("bad-algorithm", {"train.algorithm": "adam"}, "[train].algorithm"),
    ("bad-loss", {"train.loss": "mean"}, "[train].loss"),
    ("zero-iterations", {"train.iterations": 0}, "[train].iterations"),
    ("delta-one", {"certify.delta": 1}, "[certify].delta"),
    ("bool-as-int", {"certify.box_budget": True}, "[certify].box_budget"),
    ("int-as-bool", {"certify.data_specific": 1}, "[certify].data_specific"),
    ("certify-unknown", {"certify.budget": 3}, "[certify].budget"),
    ("rel-tol-negative", {"certify.rel_tol": -0.1}, "[certify].rel_tol"),
    ("time-limit-zero", {"certify.time_limit_s": 0}, "[certify].time_limit_s"),
    ("time-limit-string", {"certify.time_limit_s": "60"}, "[certify].time_limit_s"),
    ("unknown-engine", {"certify.engine": "intlab"}, "[certify].engine"),
    ("engine-not-string", {"certify.engine": 1}, "[certify].engine"),
    ("meta-description-type", {"meta.description": 3}, "[meta].description"),
    ("newline-key", {"model.a\nb": 1}, "[model]."),
]


@pytest.mark.parametrize("changes, key", [(c, k) for _, c, k in BAD],
                         ids=[i for i, _, _ in BAD])
def test_bad_input_is_a_one_line_user_error(tmp_path, changes, key):
    p = write(tmp_path, mutate(**changes), "bad_case.toml")
    with pytest.raises(UserError) as ei:
        load_case(p)
    msg = str(ei.value)
    assert "\n" not in msg and "\r" not in msg
    assert msg.startswith(str(p) + ": ")
    assert "bad_case.toml" in msg and key in msg, msg


def test_odd_width_message(tmp_path):
    p = write(tmp_path, mutate(**{"model.width": 7}), "x.toml")
    with pytest.raises(UserError) as ei:
        load_case(p)
    assert str(ei.value) == f"{p}: [model].width: must be even, got 7"


BAD_SOURCES = [
    ("multi-index-lag", {"target.kind": "multi-index", "target.lags": [0, 3],
                         "target.nu_w": DELETE, "target.nu_u": DELETE,
                         "target.mc_draws": DELETE}, "[target].lags"),
    ("multi-index-dup-lag", {"target.kind": "multi-index", "target.lags": [1, 1],
                             "target.nu_w": DELETE, "target.nu_u": DELETE,
                             "target.mc_draws": DELETE}, "[target].lags"),
    ("bad-link", {"target.kind": "additive", "target.link": "relu", "target.nu_w": DELETE,
                  "target.nu_u": DELETE, "target.mc_draws": DELETE}, "[target].link"),
    ("rho-A-one", {"target.kind": "linear-system", "target.rho_A": 1.0, "target.nu_w": DELETE,
                   "target.nu_u": DELETE, "target.mc_draws": DELETE}, "[target].rho_A"),
    ("statsmodels-seed", {"data": {"kind": "statsmodels", "series": "sunspots", "n": 4,
                                   "steps": 3, "dim": 2, "seed": 1}}, "[data].seed"),
    ("statsmodels-too-long", {"data": {"kind": "statsmodels", "series": "sunspots", "n": 400,
                                       "steps": 3, "dim": 2}}, "[data].n"),
    ("statsmodels-series", {"data": {"kind": "statsmodels", "series": "gdp", "n": 4,
                                     "steps": 3, "dim": 2}}, "[data].series"),
    ("ode-dim", {"data": {"kind": "ode", "system": "lorenz", "n": 4, "steps": 3, "dim": 2,
                          "seed": 1}}, "[data].dim"),
    ("ode-mu-lorenz", {"data": {"kind": "ode", "system": "lorenz", "n": 4, "steps": 3,
                                "dim": 3, "seed": 1, "mu": 2.0}}, "[data].mu"),
    ("test-n-statsmodels", {"data": {"kind": "statsmodels", "series": "sunspots", "n": 4,
                                      "steps": 3, "dim": 2, "test_n": 4}}, "[data].test_n"),
    ("test-n-negative", {"data.test_n": -1}, "[data].test_n"),
    ("test-n-float", {"data.test_n": 2.0}, "[data].test_n"),
    ("ode-negative-noise", {"data": {"kind": "ode", "system": "van-der-pol", "n": 4,
                                     "steps": 3, "dim": 2, "seed": 1, "noise": -1.0}},
     "[data].noise"),
]


@pytest.mark.parametrize("changes, key", [(c, k) for _, c, k in BAD_SOURCES],
                         ids=[i for i, _, _ in BAD_SOURCES])
def test_bad_source_and_target_keys(tmp_path, changes, key):
    p = write(tmp_path, mutate(**changes), "bad_case.toml")
    with pytest.raises(UserError) as ei:
        load_case(p)
    msg = str(ei.value)
    assert "\n" not in msg and "bad_case.toml" in msg and key in msg, msg


def test_unreadable_files(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(UserError, match="nope.toml"):
        load_case(missing)
    bad = tmp_path / "broken.toml"
    bad.write_text("name = \n[model\n")
    with pytest.raises(UserError) as ei:
        load_case(bad)
    assert "broken.toml" in str(ei.value) and "\n" not in str(ei.value)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="bin.toml"):
        load_case(binary)
    with pytest.raises(UserError, match="folder"):
        load_case(tmp_path)


# --------------------------------------------------------------------------
# user data (.npz)


def _file_case(tmp_path, X, Y=None, **extra):
    arrays = {"X": X} if Y is None else {"X": X, "Y": Y}
    np.savez(tmp_path / "data.npz", **arrays)
    doc = mutate(**{"data": {"kind": "file", "path": "data.npz", **extra},
                    "target": {"kind": "file"}})
    return write(tmp_path, doc, "filecase.toml")


def test_file_round_trip(tmp_path, rng):
    X = rng.standard_normal((5, 4, 3))
    X /= 2 * np.linalg.norm(X, axis=-1, keepdims=True).max()
    Y = rng.standard_normal((5, 4))
    case = load_case(_file_case(tmp_path, X, Y, n=5, steps=4, dim=3))
    assert np.array_equal(case.data.X, X) and np.array_equal(case.data.Y, Y)
    assert case.target_info.kind == "file" and not case.target_info.in_class
    assert case.init.U0.shape == (8, 3)
    # the path is relative to the case file, not to the working directory
    assert case.data_spec.resolved_path == tmp_path / "data.npz"
    # a file X with a model-class target
    np.savez(tmp_path / "xonly.npz", X=X)
    doc = mutate(**{"data": {"kind": "file", "path": "xonly.npz"}})
    case = load_case(write(tmp_path, doc, "xonly.toml"))
    assert case.target_info.kind == "transport" and case.data.Y.shape == (5, 4)


def _just_outside(X):
    """One vector with exact ‖x‖² = 1 + 2⁻⁶⁰ > 1, whose float norm rounds to 1."""
    X = X.copy()
    X[1, 2] = [1.0, 2.0**-30, 0.0]
    assert np.linalg.norm(X[1, 2]) == 1.0
    return X


BAD_FILES = [
    ("X-2d", lambda X, Y: {"X": X[0], "Y": Y}),
    ("X-nan", lambda X, Y: {"X": np.where(np.arange(3) == 1, np.nan, X), "Y": Y}),
    ("X-inf", lambda X, Y: {"X": np.where(np.arange(3) == 2, np.inf, X), "Y": Y}),
    ("X-norm", lambda X, Y: {"X": X * 10, "Y": Y}),
    ("X-norm-one-ulp", lambda X, Y: {"X": _just_outside(X), "Y": Y}),
    ("Y-shape", lambda X, Y: {"X": X, "Y": Y[:, :-1]}),
    ("Y-nan", lambda X, Y: {"X": X, "Y": Y * np.nan}),
    ("Y-missing", lambda X, Y: {"X": X}),
    ("X-missing", lambda X, Y: {"Z": X, "Y": Y}),
    ("X-complex", lambda X, Y: {"X": X.astype(complex), "Y": Y}),
    ("X-strings", lambda X, Y: {"X": np.array([["a"]]), "Y": Y}),
]


@pytest.mark.parametrize("make", [m for _, m in BAD_FILES], ids=[i for i, _ in BAD_FILES])
def test_bad_npz(tmp_path, rng, make):
    X = 0.1 * rng.standard_normal((4, 3, 3))
    Y = rng.standard_normal((4, 3))
    np.savez(tmp_path / "data.npz", **make(X, Y))
    p = write(tmp_path, mutate(**{"data": {"kind": "file", "path": "data.npz"},
                                  "target": {"kind": "file"}}), "bad_case.toml")
    with pytest.raises(UserError) as ei:
        load_case(p)
    msg = str(ei.value)
    assert "\n" not in msg and "bad_case.toml" in msg and "[data].path" in msg, msg
    assert "data.npz" in msg


def test_missing_or_corrupt_npz(tmp_path):
    p = write(tmp_path, mutate(**{"data": {"kind": "file", "path": "absent.npz"},
                                  "target": {"kind": "file"}}), "c.toml")
    with pytest.raises(UserError, match=r"\[data\]\.path: no such file: absent\.npz"):
        load_case(p)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    p = write(tmp_path, mutate(**{"data": {"kind": "file", "path": "junk.npz"},
                                  "target": {"kind": "file"}}), "d.toml")
    with pytest.raises(UserError, match=r"\[data\]\.path"):
        load_case(p)


def test_file_shape_mismatch_with_declared_sizes(tmp_path, rng):
    X = 0.1 * rng.standard_normal((4, 3, 2))
    p = _file_case(tmp_path, X, np.zeros((4, 3)), steps=5)
    with pytest.raises(UserError, match=r"\[data\]\.steps"):
        load_case(p)


INTERFACE_EXAMPLE = '''
name = "tanh-short-memory"

[model]
activation = "tanh"       # tanh | logistic | gaussian | a sympy expression in z
width = 512               # m, even

[init]
seed = 1
alpha0 = 0.0              # w_i(0) ~ Unif[-alpha0, alpha0]

[ball]
rho_w = 1.0
rho_u = 1.0

[data]
kind = "sphere"           # sphere | gaussian-clipped | file | statsmodels | ode
n = 32
steps = 8                 # T
dim = 3                   # d
seed = 2

[target]
kind = "transport"        # transport | additive | multi-index | linear-system | file
nu_w = 1.0
nu_u = 1.0
mc_draws = 200000
seed = 3

[train]
algorithm = "pgd"         # pgd | gd
eta = 0.2
iterations = 300
loss = "all-steps"        # all-steps | final-step

[certify]
delta = 0.05
data_specific = true
'''


def test_interface_example_validates(tmp_path):
    p = tmp_path / "example.toml"
    p.write_text(INTERFACE_EXAMPLE)
    case = load_case(p, build=False)
    assert case.width == 512 and case.init_spec.alpha0.exact == 0
    assert case.train.eta.text == "0.2" and case.certify.delta.exact == Fraction(1, 20)
    assert case.target_spec.mc_draws == 200000


def test_case_pickles(tmp_path):
    """Cases travel to Dask workers: they must pickle, exact decimals included."""
    case = load_case(write(tmp_path, BASE))
    back = pickle.loads(pickle.dumps(case))
    assert back.ball.rho_w.text == "1.0" and back.ball.rho_w.exact == 1
    assert np.array_equal(back.data.X, case.data.X) and np.array_equal(back.init.c, case.init.c)
    vw, vU = back.target_info.transport_map(back.init.w0, back.init.U0)
    vw0, vU0 = case.target_info.transport_map(case.init.w0, case.init.U0)
    assert np.array_equal(vw, vw0) and np.array_equal(vU, vU0)


@pytest.mark.parametrize("kind", ["sphere", "gaussian-clipped"])
def test_held_out_samples_are_an_independent_draw_of_the_same_source(tmp_path, kind):
    from certify.cases.targets import additive_target

    target = {"kind": "additive", "seed": 7}
    docs = [mutate(**{"data.kind": kind, "data.n": n, "data.test_n": 5, "target": target})
            for n in (3, 6)]
    a, b = (load_case(write(tmp_path, d, f"c{i}.toml")) for i, d in enumerate(docs))
    assert a.data.X_test.shape == (5, 3, 2) and a.data.Y_test.shape == (5, 3)
    # independent of n (one test set for a search over n), disjoint from the training draw
    assert np.array_equal(a.data.X_test, b.data.X_test)
    assert not np.isin(a.data.X_test, b.data.X).any()
    # the same target function: its own seed, evaluated on the held-out inputs
    assert np.array_equal(a.data.Y_test, additive_target(a.data.X_test, 7))
    assert load_case(write(tmp_path, BASE, "none.toml")).data.X_test is None
