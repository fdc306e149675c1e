"""Regression checks between two certificates (or two folders of them).

Every guarded field is compared against the baseline (``base``) with the
tolerance stated here; a field that the baseline has (finite, not ``null``) but
that is missing, ``null`` or not finite in the new certificate is a regression.
Each message names the field, the two values and the tolerance it broke.

========================================  ==========================  ==============================
field                                     regression                  tolerance
========================================  ==========================  ==============================
``verdict``                               worse: pass → unknown →     none
                                          fail
``activation.sigma0/sigma1/sigma2``,      certified upper end grew    ``DEFAULT_RTOL`` relative
``constants.alpha_m``, ``constants.q``                                (``--rtol``)
``constants.closed_form.L/beta``,         certified upper end grew    ``DEFAULT_RTOL`` relative
``constants.certified.L/beta``,           at some t, or t missing     (``--rtol``)
``constants.drift_beta``
``executor.avg_loss``,                    observed value grew         ``OBSERVED_RTOL`` relative
``executor.final_loss``,
``executor.apriori.bound``
``executor.drift.fp_allowance.max`` and   drift allowance grew (at    ``OBSERVED_RTOL`` relative
``…fp_allowance.values`` (per iterate)    some k)
``executor.drift.min_slack``              lower                       ``OBSERVED_RTOL`` × abs(base),
                                                                      at least the base's
                                                                      ``fp_allowance.max``
``executor.drift.min_slack``              negative where base ≥ 0     none
``executor.drift.violations``,            an iterate k not in base    none
``executor.drift.not_checked``
``executor.drift.checked``                fewer iterates checked      none
``executor.apriori.holds/applicable``     true → not true             none
``executor.exit_time``                    earlier exit from Ω_ρ (or   none
                                          an exit where base had
                                          none)
``executor.gradient_check.status``        worse: ok → inconclusive /  none
                                          skipped → mismatch
``timings`` (sum)                         above ``DEFAULT_SLOWDOWN``  and above ``MIN_SECONDS``
                                          × base
a case of the base folder                 missing from the new one    none
========================================  ==========================  ==============================

Schema versions: both files must be certificates (the fields
``certificate.REQUIRED`` names, else a one-line error) of the same *major*
``schema_version``; across major versions compare refuses (renew the baseline).
Within a major version a minor version only adds fields: compare reads the
fields the baseline has, so a field new in the new certificate is not compared
until the baseline is renewed.

Why these tolerances: certified numbers are deterministic (the same bits with
mpmath's pure-Python and gmpy2 backends), so ``DEFAULT_RTOL`` only absorbs the
last printed digit.  Observed floats are deterministic on one machine
(``PYTHONHASHSEED`` and BLAS thread count do not change them).  Measured on
``tanh-gd-exit`` and ``sunspots``: numpy against torch backend, at most 3e-14
relative; the baselines against fresh runs of later code, at most 6e-11.  So
``OBSERVED_RTOL`` = 1e-6 leaves a margin of 10⁴ and still flags any real
change.  Wall times are noise, hence the factor and the floor.  A lower
``min_slack`` can also come from a *tighter* certified β_t (the drift
inequality's right-hand side uses it); the message says so when
``constants.drift_beta`` tightened, and the baseline should then be renewed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..errors import UserError
from .certificate import validate

#: relative tolerance of a certified upper bound (``--rtol``)
DEFAULT_RTOL = 1e-6
#: relative tolerance of an observed float (losses, slack, drift allowance)
OBSERVED_RTOL = 1e-6
#: allowed factor on the total wall time (``--slowdown``) ...
DEFAULT_SLOWDOWN = 3.0
#: ... counted only when the new total is above this many seconds
MIN_SECONDS = 5.0

CERTIFIED_SCALARS = ("activation.sigma0", "activation.sigma1", "activation.sigma2",
                     "constants.alpha_m", "constants.q")
CERTIFIED_PER_T = ("constants.closed_form.L", "constants.closed_form.beta",
                   "constants.certified.L", "constants.certified.beta", "constants.drift_beta")
OBSERVED_HIGHER_WORSE = ("executor.avg_loss", "executor.final_loss",
                         "executor.apriori.bound", "executor.drift.fp_allowance.max")
FP_VALUES = "executor.drift.fp_allowance.values"
VERDICT_RANK = {"fail": 0, "unknown": 1, "pass": 2}
GRADIENT_RANK = {"mismatch": 0, "inconclusive": 1, "skipped": 1, "ok": 2}


def _at(doc, path: str):
    """``doc["a"]["b"]…`` for ``path`` "a.b…"; None where any level is missing."""
    for key in path.split("."):
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


def _upper(v) -> Decimal | None:
    """Upper end of a certified value (``["lo", "hi"]`` or one string); None if not finite."""
    if isinstance(v, list):
        v = v[-1] if v else None
    if v is None or isinstance(v, bool):
        return None
    try:
        d = Decimal(str(v))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _obs(v) -> float | None:
    """An observed float, or None where it is missing or not finite."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _grew(label: str, b, n, rtol, read) -> str | None:
    """Message if ``n`` exceeds ``b`` by more than ``rtol`` relative (or is missing)."""
    bv = read(b)
    if bv is None:
        return None
    nv = read(n)
    if nv is None:
        return f"{label} missing or not finite (base {bv})"
    tol = abs(bv) * (Decimal(str(rtol)) if read is _upper else rtol)
    if nv - bv > tol:
        return f"{label} grew: {bv} -> {nv}"
    return None


def _grew_per_index(label: str, base_list, new_list, rtol, read, index: str) -> str | None:
    """First index where ``new_list`` grew past ``base_list`` (and how many more)."""
    if not isinstance(base_list, list):
        return None
    new_list = new_list if isinstance(new_list, list) else []
    bad = []
    for i, b in enumerate(base_list):
        n = new_list[i] if i < len(new_list) else None
        msg = _grew(f"{label} at {index}={i}", b, n, rtol, read)
        if msg:
            bad.append(msg)
    if not bad:
        return None
    return bad[0] + (f" (and at {len(bad) - 1} more {index})" if len(bad) > 1 else "")


def _certified(base, new, rtol) -> list[str]:
    tail = f" (certified upper bound; tolerance {rtol:g} relative)"
    msgs = [_grew(p, _at(base, p), _at(new, p), rtol, _upper) for p in CERTIFIED_SCALARS]
    msgs += [_grew_per_index(p, _at(base, p), _at(new, p), rtol, _upper, "t")
             for p in CERTIFIED_PER_T]
    return [m.replace(" grew:", " loosened:") + tail for m in msgs if m]


def _observed(base, new, rtol) -> list[str]:
    tail = f" (observed; tolerance {rtol:g} relative)"
    msgs = [_grew(p, _at(base, p), _at(new, p), rtol, _obs) for p in OBSERVED_HIGHER_WORSE]
    msgs.append(_grew_per_index(FP_VALUES, _at(base, FP_VALUES), _at(new, FP_VALUES),
                                rtol, _obs, "k"))
    return [m + tail for m in msgs if m] + _min_slack(base, new, rtol)


def _beta_tightened(base, new) -> bool:
    b, n = _at(base, "constants.drift_beta") or [], _at(new, "constants.drift_beta") or []
    pairs = [(_upper(x), _upper(y)) for x, y in zip(b, n, strict=False)]
    return any(x is not None and y is not None and y < x for x, y in pairs)


def _min_slack(base, new, rtol) -> list[str]:
    p = "executor.drift.min_slack"
    b, n = _obs(_at(base, p)), _obs(_at(new, p))
    if b is None:
        return []
    if n is None:
        return [f"{p} missing or not finite (base {b})"]
    fp = _obs(_at(base, "executor.drift.fp_allowance.max")) or 0.0
    tol = max(rtol * abs(b), fp)
    hint = "; constants.drift_beta tightened, which lowers the slack" \
        if _beta_tightened(base, new) else ""
    if b >= 0 > n:
        return [f"{p} negative: {b} -> {n} (observed; base was >= 0, no tolerance{hint})"]
    if n < b - tol:
        return [f"{p} lower: {b} -> {n} (observed; tolerance max({rtol:g} × |base|, "
                f"base fp_allowance.max {fp:.3g}) = {tol:.3g}{hint})"]
    return []


def _new_indices(base, new, path: str) -> list[int]:
    b, n = (v if isinstance(v, list) else [] for v in (_at(base, path), _at(new, path)))
    return sorted({k for k in n if isinstance(k, int)} - {k for k in b if isinstance(k, int)})


def _checks(base, new) -> list[str]:
    """Verdict, drift violations and coverage, a-priori bound, exit time, gradient check (no
    tolerance)."""
    out = []
    bv, nv = base.get("verdict"), new.get("verdict")
    if bv in VERDICT_RANK and VERDICT_RANK.get(nv, -1) < VERDICT_RANK[bv]:
        out.append(f"verdict {bv} -> {nv} ({'; '.join(new.get('reasons') or [])})")
    for path, what in (("executor.drift.violations", "new drift violations"),
                       ("executor.drift.not_checked", "iterates no longer checked")):
        ks = _new_indices(base, new, path)
        if ks:
            out.append(f"{path}: {what} at k={ks[:10]}" + (" …" if len(ks) > 10 else ""))
    bc, nc = _at(base, "executor.drift.checked"), _at(new, "executor.drift.checked")
    if isinstance(bc, int) and not (isinstance(nc, int) and nc >= bc):
        out.append(f"executor.drift.checked: fewer iterates checked: {bc} -> {nc}")
    for key in ("holds", "applicable"):
        if _at(base, f"executor.apriori.{key}") is True and \
                _at(new, f"executor.apriori.{key}") is not True:
            out.append(f"executor.apriori.{key}: true -> {_at(new, f'executor.apriori.{key}')} "
                       f"(bound {_at(new, 'executor.apriori.bound')}, observed "
                       f"{_at(new, 'executor.apriori.observed')})")
    be, ne = _at(base, "executor.exit_time"), _at(new, "executor.exit_time")
    if isinstance(ne, int) and (be is None or (isinstance(be, int) and ne < be)):
        out.append(f"executor.exit_time: iterates leave Ω_ρ earlier: {be} -> {ne}")
    path = "executor.gradient_check.status"
    bg, ng = _at(base, path), _at(new, path)
    if bg in GRADIENT_RANK and GRADIENT_RANK.get(ng, -1) < GRADIENT_RANK[bg]:
        out.append(f"{path}: gradient check worse: {bg} -> {ng}")
    return out


def _slowdown(base, new, slowdown, min_seconds) -> list[str]:
    bt, nt = (sum(v for v in t.values() if _obs(v) is not None) if isinstance(t, Mapping)
              else 0.0 for t in (base.get("timings"), new.get("timings")))
    if bt > 0 and nt > slowdown * bt and nt > min_seconds:
        return [f"timings: slowdown {nt / bt:.1f}x ({bt:.1f}s -> {nt:.1f}s; "
                f"allowed {slowdown}x, counted above {min_seconds}s)"]
    return []


def compare_certificates(base: Mapping, new: Mapping, rtol: float = DEFAULT_RTOL,
                         slowdown: float = DEFAULT_SLOWDOWN,
                         min_seconds: float = MIN_SECONDS,
                         observed_rtol: float = OBSERVED_RTOL) -> list[str]:
    """Regressions of ``new`` against ``base`` (empty list: none); see the module docstring."""
    name = (new.get("case") or {}).get("name") or (base.get("case") or {}).get("name", "?")
    probs = _checks(base, new) + _certified(base, new, rtol)
    probs += _observed(base, new, observed_rtol) + _slowdown(base, new, slowdown, min_seconds)
    return [f"{name}: {p}" for p in probs]


def _read(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise UserError(f"{path}: not a JSON certificate{where}") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path}: not a JSON certificate (not an object)")
    problems = validate(doc)
    if problems:
        more = f"; {len(problems) - 1} more" if len(problems) > 1 else ""
        raise UserError(f"{path}: not a valid certificate ({problems[0]}{more})")
    return doc


def _major(doc) -> str:
    return str(doc.get("schema_version")).split(".")[0]


def _pair(base_path: Path, new_path: Path) -> tuple[dict, dict]:
    """Both certificates, read and checked; certificates of different major schema
    versions are not compared (a one-line error: renew the baseline).  Within one major
    version a later minor version only adds fields, and compare reads the fields both
    have (a field the base has and the new one lacks is a regression)."""
    base, new = _read(base_path), _read(new_path)
    if _major(base) != _major(new):
        raise UserError(f"compare: {base_path} has schema_version {base['schema_version']}, "
                        f"{new_path} has {new['schema_version']}: different major versions "
                        "are not comparable (renew the baseline)")
    return base, new


def compare_paths(base: Path, new: Path, **kw) -> list[str]:
    """Compare two certificate files, or two folders of ``NAME.json`` files."""
    base, new = Path(base), Path(new)
    for p in (base, new):
        if not p.exists():
            raise UserError(f"{p}: no such file or folder")
    if base.is_file() and new.is_file():
        return compare_certificates(*_pair(base, new), **kw)
    if base.is_dir() and new.is_dir():
        probs = []
        for b in sorted(base.glob("*.json")):
            n = new / b.name
            if not n.exists():
                probs.append(f"{b.stem}: missing from {new}")
                continue
            probs += compare_certificates(*_pair(b, n), **kw)
        return probs
    raise UserError(f"compare: {base} and {new} must both be files or both folders")
