"""The memory cap and the time limit of the data-specific certifier, and its tightness
record.

Chunking under the cap covers every (neuron set, sample) once; a neuron set split by
samples and a refinement stopped by the cap or by the time limit leave the bounds sound
(≥ 50-digit point values, between lower and closed form) and the certificate says so.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from certify.bounds import data_constants as dcm
from certify.bounds.data_constants import Ball, BoundsSettings, certify_data_constants
from certify.trusted.intervals import hi
from tests.bounds.test_data_constants import (
    _w0U0,
    point_norms,
    random_points,
    sphere_data,
    symmetric,
)

FAST = dict(rel_tol=0.3, box_budget=400, lower_samples=8)


def _case(seed=5, m=4, n=3, T=3, d=2):
    X = sphere_data(n, T, d, seed)
    init = symmetric(m, d, 0.5, seed + 1)
    return X, init, m


def _certify(X, init, m, **kw):
    return certify_data_constants("tanh", X, init, Ball(m, "0.6", "0.6"), None, X.shape[1],
                                  settings=BoundsSettings(**{**FAST, **kw}))


def _assert_sound(dc, X, init, m, seed):
    """closed ≥ certified ≥ lower, and certified ≥ 50-digit values at random points."""
    assert dc.checks() == []
    rng = np.random.default_rng(seed)
    w0, U0 = _w0U0(init)
    r = 0.6 / math.sqrt(m)
    UL, UB = dc.upper("L"), dc.upper("beta")
    for i in range(m):
        for j in range(X.shape[0]):
            for theta in random_points(rng, w0[i], U0[i], r, r, 2):
                nL, nB = point_norms("tanh", theta, X[j])
                for t in range(X.shape[1]):
                    assert UL[t] >= float(nL[t]), (i, j, t, theta.tolist())
                    assert UB[t] >= float(nB[t]), (i, j, t, theta.tolist())


class _Pb:
    def __init__(self, G, n, T, d):
        self.X = np.zeros((n, T, d))
        self.G = G


@pytest.mark.parametrize("G,n,jobs,cap_groups", [(5, 4, 1, 10), (5, 4, 2, 10), (7, 3, 2, 2),
                                                 (3, 8, 1, 0.3), (4, 5, 2, 0.5)])
def test_chunks_cover_every_pair_once(monkeypatch, G, n, jobs, cap_groups):
    T, d = 3, 2
    per_group = dcm._group_bytes(n, T, d + 1)
    monkeypatch.setitem(dcm._CTX, "mem_cap", int(per_group * cap_groups))
    chunks = dcm._chunks(_Pb(G, n, T, d), jobs)
    seen = [(int(g), int(j)) for groups, smp in chunks for g in groups
            for j in (range(n) if smp is None else smp)]
    assert sorted(seen) == [(g, j) for g in range(G) for j in range(n)]
    for groups, smp in chunks:  # each chunk fits (a split one holds one neuron's part)
        rows = len(groups) * (n if smp is None else len(smp))
        assert rows * per_group / n <= max(per_group * cap_groups, per_group / n * 2)
    if cap_groups >= G:
        assert len(chunks) == min(G, jobs)  # nothing changes while everything fits


def test_settings_memory_cap_is_checked():
    assert BoundsSettings().memory_cap_mb == 1536
    with pytest.raises(ValueError, match="memory_cap_mb"):
        BoundsSettings(memory_cap_mb=10)


def test_case_default_memory_cap_is_the_certifiers():
    from certify.cases.case import CertifySpec

    assert CertifySpec().memory_cap_mb == BoundsSettings().memory_cap_mb


def test_split_by_samples_is_sound_and_recorded(monkeypatch):
    X, init, m = _case(seed=5, n=3)
    whole = _certify(X, init, m)
    # a cap that one neuron's samples do not fit: every set split by samples
    monkeypatch.setattr(dcm, "_group_bytes", lambda n, T, p: 10 * 2**30)
    split = _certify(X, init, m)
    assert split.tightness["chunks"] > whole.tightness["chunks"]
    _assert_sound(split, X, init, m, seed=5)
    # the lower bounds do not depend on the chunking
    assert split.lower_L == whole.lower_L and split.lower_beta == whole.lower_beta


def test_refinement_stopped_by_the_cap_is_sound_and_said(monkeypatch):
    X, init, m = _case(seed=8, n=2, T=4)

    def refuse(self, n_anchors):
        if n_anchors:
            self.memory_stopped = True
            return False
        return True

    monkeypatch.setattr(dcm._Tree, "room_for", refuse)
    # anchors every 4th level: ∂H is kept for the cheap forms below them, which the cap
    # counts (with anchor_levels = 1 nothing is kept: see the test below)
    dc = _certify(X, init, m, rel_tol=0.02, anchor_levels=4)
    _assert_sound(dc, X, init, m, seed=8)
    stops = dc.tightness["stopped_by"]
    assert any(s.startswith("memory cap: refinement stopped") for s in stops), stops
    assert dc.to_json()["tightness"]["stopped_by"] == stops


def test_every_box_its_own_ad_keeps_no_dH(monkeypatch):
    """With anchor_levels = 1 (the default) no descendant reads a stored ∂H, so none is
    kept or returned: the widest split keeps nothing, the smear split (the default) only
    its (T, p) weights; anchor_levels = 4 keeps ∂H for the cheap forms."""
    X, init, m = _case(seed=8, n=2, T=4)
    kept = []
    real = dcm._Tree.free_anchors

    def spy(self):
        kept.append((len(self.anchors), {np.shape(v) if isinstance(v, np.ndarray)
                                         else "dH" for v in self.anchors.values()}))
        return real(self)

    import certify.trusted.screen as screen

    asked = []
    real_screen = screen.screen_bounds

    def spy_screen(*a, **kw):
        asked.append(bool(kw.get("return_dH")))
        return real_screen(*a, **kw)

    monkeypatch.setattr(dcm._Tree, "free_anchors", spy)
    monkeypatch.setattr(screen, "screen_bounds", spy_screen)
    T, p = X.shape[1], X.shape[2] + 1
    widest = _certify(X, init, m, rel_tol=0.02, split="widest")
    assert widest.settings["ancestor_levels"] == 1 and max(k for k, _ in kept) == 0
    assert asked and not any(asked)  # nor is it computed into a (N, T, p, p, p) array
    assert "of every box" in widest.tightness["method"]
    kept.clear()
    smear = _certify(X, init, m, rel_tol=0.02)  # the default split
    assert smear.settings["split"] == "smear" and not any(asked)
    assert max(k for k, _ in kept) > 0
    shapes = set().union(*(s for _, s in kept))  # weights only, (live steps, p)
    assert shapes and all(sh != "dH" and sh[1] == p and sh[0] <= T for sh in shapes)
    _assert_sound(smear, X, init, m, seed=8)
    kept.clear()
    four = _certify(X, init, m, rel_tol=0.02, anchor_levels=4)
    assert "at every 4th level" in four.tightness["method"] and any(asked)
    assert "dH" in set().union(*(s for _, s in kept))
    _assert_sound(four, X, init, m, seed=8)
    for bad in (0, 1.5, True, "4"):
        with pytest.raises(ValueError, match="anchor_levels"):
            BoundsSettings(anchor_levels=bad)


def test_refinement_stopped_by_the_time_limit_is_sound_and_said(monkeypatch):
    X, init, m = _case(seed=8, n=2, T=4)
    clock = iter(range(0, 10**7, 10))  # each reading 10 s later: the limit is hit early
    monkeypatch.setattr(dcm.time, "monotonic", lambda: float(next(clock)))
    dc = _certify(X, init, m, rel_tol=0.02, time_limit_s=30)
    _assert_sound(dc, X, init, m, seed=8)
    stops = dc.tightness["stopped_by"]
    assert any(s.startswith("time limit: refinement stopped") and "time_limit_s = 30" in s
               for s in stops), stops
    assert dc.settings["time_limit_s"] == 30.0
    unlimited = _certify(X, init, m, rel_tol=0.02)
    assert dc.boxes["screened"] < unlimited.boxes["screened"]
    assert not any(s.startswith("time limit") for s in unlimited.tightness["stopped_by"])


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_settings_time_limit_is_checked(bad):
    with pytest.raises(ValueError, match="time_limit_s"):
        BoundsSettings(time_limit_s=bad)


def test_tightness_record_states_ratio_target_and_method():
    X, init, m = _case(seed=3)
    dc = _certify(X, init, m)
    tj = dc.to_json()["tightness"]
    T = dc.steps
    assert tj["target"] == pytest.approx(1.3)
    for kind, cert, low in (("L", dc.certified_L, dc.lower_L),
                            ("beta", dc.certified_beta, dc.lower_beta)):
        ratio = [float(hi(c)) / lw for c, lw in zip(cert, low, strict=True)]
        assert tj["ratio"][kind] == pytest.approx(ratio, rel=1e-15)
        assert len(tj["short_of_target"][kind]) == T
        assert tj["short_of_target"][kind] == [r > 1.3 for r in ratio]
        assert tj["worst"][kind]["ratio"] == pytest.approx(max(ratio))
        assert min(ratio) >= 1
    assert tj["reached"] == (not any(tj["short_of_target"]["L"] + tj["short_of_target"]["beta"]))
    assert "branch and bound" in tj["method"]
    assert tj["boxes_by_neuron"] and all(b["boxes"] >= X.shape[0] for b in tj["boxes_by_neuron"])
    if not tj["reached"]:
        assert tj["stopped_by"]


def test_lower_samples_scale_down_with_the_pairs_only_past_the_point_budget():
    from certify.bounds.settings import DEFAULT_LOWER_SAMPLES, LOWER_POINTS, MIN_LOWER_SAMPLES

    s = BoundsSettings()
    assert s.samples_for(512) == DEFAULT_LOWER_SAMPLES  # the shipped cases: unchanged
    assert s.samples_for(LOWER_POINTS // DEFAULT_LOWER_SAMPLES) == DEFAULT_LOWER_SAMPLES
    assert s.samples_for(16384) == LOWER_POINTS // 16384
    assert s.samples_for(10**7) == MIN_LOWER_SAMPLES
    assert BoundsSettings(lower_samples=3).samples_for(10**7) == 3  # a setting wins
