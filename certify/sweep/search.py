"""The adaptive search of ``[search]``: for each point of grid × zip and each criterion,
the smallest value of the key (min, min+step, …, max) at which the criterion holds.

Galloping (min, then doubling the index) until the criterion holds or max fails,
then bisection between the last value that failed and the first that held: about
2·log₂ of the answer's index in points, each round's probes running in parallel.
The criterion is taken to be monotone in the key (more width, smaller error); a
point that fails (its worker died) ends its search as ``failed``.

Criteria (of a certificate):
- ``observed``: the final training error R̂(Θ(τ)) ≤ target;
- ``certified``: the a-priori bound of the mean training error, with the THEORY §5–6
  bound of R̂(Θ̄) (``executor.apriori.bound_certified_comparator``), ≤ target;
- ``held-out``: the error on the case's held-out samples (``[data].test_n``) at the
  last iterate, as a fraction of its value at Θ(0) (``executor.held_out.relative``,
  observed), ≤ target: with the key ``data.n``, the samples needed.
"""

from __future__ import annotations

from dataclasses import dataclass


def holds(criterion: str, cert: dict, target: float) -> bool:
    ex = cert["executor"]
    if criterion == "observed":
        x = ex.get("final_loss")
    elif criterion == "held-out":
        x = (ex.get("held_out") or {}).get("relative")
    else:
        ap = ex.get("apriori") or {}
        x = ap.get("bound_certified_comparator") if ap.get("applicable") else None
    return x is not None and x <= target


@dataclass
class Bisection:
    """One search: indices into ``values``; ``failed_i`` the largest index known to fail,
    ``held_i`` the smallest known to hold (None: none yet)."""

    n: int
    failed_i: int = -1
    held_i: int | None = None
    broken: str = ""  # a point of this search failed: the reason

    def next_index(self) -> int | None:
        """The next index to try, or None when the search is over."""
        if self.broken:
            return None
        if self.held_i is None:
            if self.failed_i >= self.n - 1:
                return None
            return min(2 * self.failed_i + 2, self.n - 1)  # 0, 2, 6, 14, …: doubling
        if self.held_i - self.failed_i <= 1:
            return None
        return (self.failed_i + self.held_i) // 2

    def update(self, i: int, ok: bool) -> None:
        if ok:
            self.held_i = i if self.held_i is None else min(self.held_i, i)
        else:
            self.failed_i = max(self.failed_i, i)


def run_search(spec, evaluate) -> list[dict]:
    """Drive all searches; ``evaluate(list of value dicts)`` certifies those points (in
    parallel) and returns, for each, its certificate or None (failed) and the reason.

    Returns, per point of grid × zip: its values and, per criterion, the smallest value
    found (None: not reached by max, or the search broke; ``reason`` says which)."""
    from .points import outer_values

    s = spec.search
    values = s.values
    outer = outer_values(spec)
    searches = {(k, c): Bisection(len(values)) for k in range(len(outer)) for c in s.criteria}
    while True:
        probes = {}
        for (k, c), b in searches.items():
            i = b.next_index()
            if i is not None:
                probes.setdefault((k, i), []).append(c)
        if not probes:
            break
        order = list(probes)
        results = evaluate([outer[k] | {s.key: values[i]} for k, i in order])
        for (k, i), (cert, reason) in zip(order, results, strict=True):
            for c in probes[(k, i)]:
                if cert is None:
                    searches[(k, c)].broken = reason or "a point failed"
                else:
                    searches[(k, c)].update(i, holds(c, cert, s.target_for(c)))
    return [_found(outer[k], s, {c: searches[(k, c)] for c in s.criteria}, values)
            for k in range(len(outer))]


def _found(outer: dict, s, by_criterion: dict, values: list) -> dict:
    from .execute import json_values

    out = {"point": json_values(outer)}
    for c, b in by_criterion.items():
        if b.broken:
            out[c] = {"value": None, "reason": f"search broke: {b.broken}"}
        elif b.held_i is None:
            out[c] = {"value": None, "reason": f"not reached by {s.key} = {s.max}"}
        else:
            out[c] = {"value": values[b.held_i], "reason": ""}
    return out
