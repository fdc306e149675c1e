"""Regression checks between two certificates (or two folders of them).

A regression is any of:

* verdict went from ``pass`` to ``fail`` or ``unknown``;
* a certified constant (closed form or data-specific upper bound) loosened by
  more than ``rtol`` (relative) at some t;
* a drift violation that the baseline did not have (more violations, or
  violations where there were none);
* the a-priori bound stopped holding;
* a slowdown: total wall time above ``slowdown`` × the baseline's (and above
  ``min_seconds``, so that noise on tiny cases does not count);
* a case present in the baseline but missing from the new folder.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from .errors import UserError

DEFAULT_RTOL = 1e-6
DEFAULT_SLOWDOWN = 3.0
MIN_SECONDS = 5.0


def _upper(v) -> Decimal | None:
    if v is None:
        return None
    if isinstance(v, list):
        v = v[1]
    try:
        return Decimal(str(v))
    except ArithmeticError:
        return None


def _loosened(name, base_list, new_list, rtol) -> list[str]:
    out = []
    if not base_list or not new_list:
        return out
    for t, (b, n) in enumerate(zip(base_list, new_list, strict=False)):
        bu, nu = _upper(b), _upper(n)
        if bu is None or nu is None:
            continue
        if nu > bu * (1 + Decimal(str(rtol))) and nu - bu > Decimal("1e-300"):
            out.append(f"{name} loosened at t={t}: {bu} -> {nu}")
    return out


def compare_certificates(base: dict, new: dict, rtol: float = DEFAULT_RTOL,
                         slowdown: float = DEFAULT_SLOWDOWN,
                         min_seconds: float = MIN_SECONDS) -> list[str]:
    """Regressions of ``new`` against ``base`` (empty list: none)."""
    name = new.get("case", {}).get("name", "?")
    probs = []
    bv, nv = base.get("verdict"), new.get("verdict")
    if bv == "pass" and nv != "pass":
        probs.append(f"{name}: verdict pass -> {nv} ({'; '.join(new.get('reasons', []))})")
    bc, nc = base.get("constants") or {}, new.get("constants") or {}
    for kind in ("closed_form", "certified"):
        for q in ("L", "beta"):
            b = (bc.get(kind) or {}).get(q)
            n = (nc.get(kind) or {}).get(q)
            probs += [f"{name}: {m}" for m in _loosened(f"{kind}.{q}", b, n, rtol)]
    bd = ((base.get("executor") or {}).get("drift") or {})
    nd = ((new.get("executor") or {}).get("drift") or {})
    bviol, nviol = bd.get("violations") or [], nd.get("violations") or []
    if len(nviol) > len(bviol) or (set(nviol) - set(bviol) and not bviol):
        probs.append(f"{name}: new drift violations at k={sorted(set(nviol) - set(bviol))[:10]}")
    ba = ((base.get("executor") or {}).get("apriori") or {})
    na = ((new.get("executor") or {}).get("apriori") or {})
    if ba.get("holds") and na.get("holds") is False:
        probs.append(f"{name}: the a-priori bound no longer holds "
                     f"(bound {na.get('bound')}, observed {na.get('observed')})")
    bt = sum(v for v in (base.get("timings") or {}).values() if isinstance(v, int | float))
    nt = sum(v for v in (new.get("timings") or {}).values() if isinstance(v, int | float))
    if bt > 0 and nt > slowdown * bt and nt > min_seconds:
        probs.append(f"{name}: slowdown {nt / bt:.1f}x ({bt:.1f}s -> {nt:.1f}s; "
                     f"allowed {slowdown}x)")
    return probs


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not a JSON certificate (line {exc.lineno})") from None


def compare_paths(base: Path, new: Path, **kw) -> list[str]:
    """Compare two certificate files, or two folders of ``NAME.json`` files."""
    base, new = Path(base), Path(new)
    for p in (base, new):
        if not p.exists():
            raise UserError(f"{p}: no such file or folder")
    if base.is_file() and new.is_file():
        return compare_certificates(_read(base), _read(new), **kw)
    if base.is_dir() and new.is_dir():
        probs = []
        for b in sorted(base.glob("*.json")):
            n = new / b.name
            if not n.exists():
                probs.append(f"{b.stem}: missing from {new}")
                continue
            probs += compare_certificates(_read(b), _read(n), **kw)
        return probs
    raise UserError(f"compare: {base} and {new} must both be files or both folders")
