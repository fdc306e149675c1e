"""The refinement of the data-specific bounds: bisection rules, leaf selection, and the
bound a box inherits from its ancestors (certify.bounds.data_constants._Tree).

Every rule gives an exact cover, so each must stay sound (certified ≥ 50-digit point
values at random points of Ω_ρ, boundary included); the tree's bookkeeping must keep
Ue ≤ U on every node and Ue never above the parent's; the cover's boxes must carry
bounds within what the cover promises.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import certify.bounds.data_constants as dc_mod
from certify.bounds.data_constants import Ball, BoundsSettings, certify_data_constants
from certify.bounds.settings import SELECTION_RULES, SPLIT_RULES
from tests.bounds.test_data_constants import (
    _w0U0,
    point_norms,
    random_points,
    sphere_data,
    symmetric,
)

RULES = [(s, q) for s in SPLIT_RULES for q in SELECTION_RULES]


def _case(seed=5, m=4, n=2, T=3, d=2, alpha0=1.1):
    return sphere_data(n, T, d, seed), symmetric(m, d, alpha0, seed + 1), m, T


@pytest.mark.parametrize("split,selection", RULES)
def test_every_rule_is_sound_against_50_digit_points(split, selection):
    X, init, m, T = _case()
    s = BoundsSettings(rel_tol=0.05, box_budget=300, lower_samples=8, split=split,
                       selection=selection)
    dc = certify_data_constants("tanh", X, init, Ball(m, "0.8", "0.8"), None, T, settings=s)
    assert dc.checks() == []
    assert dc.settings["split"] == split and dc.settings["selection"] == selection
    assert (("width × |∂H|" in dc.tightness["method"]) == (split == "smear"))
    w0, U0 = _w0U0(init)
    rw = ru = 0.8 / math.sqrt(m)
    UL, UB = dc.upper("L"), dc.upper("beta")
    rng = np.random.default_rng(1)
    for i in range(0, m, 2):  # symmetric init: neurons i and i + m/2 alike
        for j in range(X.shape[0]):
            for theta in random_points(rng, w0[i], U0[i], rw, ru, 3):
                nL, nB = point_norms("tanh", theta, X[j])
                for t in range(T):
                    assert UL[t] >= float(nL[t]), (split, selection, i, j, t, theta)
                    assert UB[t] >= float(nB[t]), (split, selection, i, j, t, theta)


def test_boxes_inherit_their_ancestors_bounds_and_the_cover_keeps_its_promise(monkeypatch):
    """Past the cutoff (q ≈ 1.1, T = 6) the cheap forms of small boxes are often looser
    than their parents' bounds: a leaf's Ue is the least bound on its path, never more
    than its parent's, and the cover picks nodes whose own bound is within ok_thr."""
    seen = []
    real_cover = dc_mod._cover

    def spy(tree, nodes):
        chosen, ok_thr = real_cover(tree, nodes)
        seen.append((tree, nodes, chosen, ok_thr))
        return chosen, ok_thr

    monkeypatch.setattr(dc_mod, "_cover", spy)
    X, init, m, T = _case(seed=9, m=8, n=3, T=6, d=2, alpha0=1.15)
    s = BoundsSettings(rel_tol=0.02, box_budget=400, lower_samples=8)
    dc = certify_data_constants("tanh", X, init, Ball(m, "1", "1"), None, T, settings=s)
    assert dc.checks() == [] and seen
    looser_children = 0
    for tree, nodes, chosen, ok_thr in seen:
        U, Ue, par, alive = nodes["U"], nodes["Ue"], nodes["par"], nodes["alive"]
        fin = np.isfinite(U) & alive
        assert np.all(Ue[fin] <= U[fin])
        kids = np.nonzero(par >= 0)[0]
        live = alive[kids]
        assert np.all(Ue[kids][live] <= Ue[par[kids]][live])
        looser_children += int(np.sum((U[kids] > U[par[kids]]) & live))
        li = tree.gi[nodes["grp"]]
        assert np.all(U[chosen] <= ok_thr[li][chosen])
    assert looser_children > 0  # the case does exercise the inheritance


def test_smear_split_takes_the_coordinate_with_most_width_times_weight():
    lo = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    hi = np.array([[1.0, 2.0, 1.0], [1.0, 2.0, 1.0]])
    w = np.array([[5.0, 1.0, 1.0], [1.0, 1.0, np.inf]])
    l2, h2 = dc_mod._split(lo, hi, w)
    # box 0: 5·1 > 1·2 → coordinate 0; box 1: an infinite weight wins → coordinate 2
    assert np.array_equal(h2[0], [0.5, 2.0, 1.0]) and np.array_equal(l2[2], [0.5, 0.0, 0.0])
    assert np.array_equal(h2[1], [1.0, 2.0, 0.5]) and np.array_equal(l2[3], [0.0, 0.0, 0.5])
    l3, h3 = dc_mod._split(lo, hi)  # widest: coordinate 1 for both
    assert np.array_equal(h3[:2, 1], [1.0, 1.0]) and np.array_equal(l3[2:, 1], [1.0, 1.0])


def test_unknown_rules_are_clear_errors():
    with pytest.raises(ValueError, match="split must be one of widest, smear, got 'x'"):
        BoundsSettings(split="x")
    with pytest.raises(ValueError, match="selection must be one of per-criterion, combined"):
        BoundsSettings(selection="best")


@pytest.mark.parametrize("engine", ["mpmath.iv", "python-flint"])
def test_cover_boxes_left_to_the_screen_are_below_the_trusted_max(monkeypatch, engine):
    """The trusted engine evaluates the cover from the top (largest screened bounds
    first); a (box, criterion) it skips has a screened bound ≤ the certified upper
    end, and one it evaluates a trusted bound ≤ it, so the certified max bounds the
    whole cover.  Skipping must also happen: most of the cover is below the max."""
    if engine == "python-flint":
        pytest.importorskip("flint")
    seen, trusted = [], {}
    real_cover, real_task = dc_mod._trusted_cover, dc_mod._iv_task

    def spy_cover(tasks, T, settings, progress):
        res = real_cover(tasks, T, settings, progress)
        seen.append((tasks, res))
        return res

    def spy_task(task):
        r = real_task(task)
        for it, res in zip(task["items"], r["results"], strict=True):
            for c, v in (res[0] if res else {}).items():
                key = (tuple(it[0]), tuple(it[1]), c)
                v = float(dc_mod._mpf_unpack(v))
                trusted[key] = min(v, trusted.get(key, math.inf))  # both are bounds
        return r

    monkeypatch.setattr(dc_mod, "_trusted_cover", spy_cover)
    monkeypatch.setattr(dc_mod, "_iv_task", spy_task)
    X, init, m, T = _case(seed=3, m=8, n=3, T=5, d=2, alpha0=0.9)
    s = BoundsSettings(rel_tol=0.05, box_budget=300, lower_samples=8, engine=engine)
    dc = certify_data_constants("tanh", X, init, Ball(m, "1", "1"), None, T, settings=s)
    assert dc.checks() == [] and len(seen) == 1
    tasks, (_best, _own, _cheap, n_eval) = seen[0]
    upper = [float(v) for v in dc.upper("L") + dc.upper("beta")]
    n_items = sum(len(tk["items"]) for tk in tasks)
    assert 0 < n_eval < n_items, (n_eval, n_items)
    assert dc.boxes["cover_trusted"] == n_eval
    assert dc.boxes["cover_below_trusted_max"] == dc.boxes["cover"] - n_eval
    skipped = 0
    for tk in tasks:
        for lo_, hi_, mask, _is_anc, U in tk["items"]:
            for c in range(2 * T):
                if not mask[c]:
                    continue
                v = trusted.get((tuple(lo_), tuple(hi_), c))
                skipped += v is None
                bound = U[c] if v is None else v  # the screen's, where it was skipped
                assert bound <= upper[c], (engine, c, lo_, hi_, U[c], v, upper[c])
    assert skipped > 0


def test_trusted_all_evaluates_every_cover_box_and_agrees():
    """``trusted_all`` (the rule before) evaluates the whole cover; the bounds agree with
    the pruned evaluation up to the cheap-or-own form of the maximising boxes."""
    X, init, m, T = _case(seed=3, m=8, n=3, T=5, d=2, alpha0=0.9)
    out = {}
    for every in (False, True):
        s = BoundsSettings(rel_tol=0.05, box_budget=300, lower_samples=8, trusted_all=every)
        dc = certify_data_constants("tanh", X, init, Ball(m, "1", "1"), None, T, settings=s)
        assert dc.checks() == [] and dc.settings["trusted_all"] is every
        assert ("cover, every box" in dc.tightness["method"]) is every
        out[every] = dc
    assert out[True].boxes["cover_trusted"] == out[True].boxes["cover"]
    assert out[False].boxes["cover_trusted"] < out[False].boxes["cover"]
    for kind in ("L", "beta"):
        for a, b in zip(out[False].upper(kind), out[True].upper(kind), strict=True):
            assert abs(a - b) <= 0.05 * b, (kind, a, b)
