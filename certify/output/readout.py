"""Numbers read out of a certificate for people: floats for plots and tables, intervals
printed the way a paper would, and the ratios that say how tight each bound is.

Everything here reads a finished certificate (a plain dict) and tolerates what an
``unknown`` certificate holds: a missing, null, non-finite or unreadable value reads as
``None`` (or NaN in a plotted series) and prints as "—".
"""

from __future__ import annotations

import math
import statistics
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, InvalidOperation

#: an interval whose ends agree to this many significant digits prints as "≈ x"
SAME_DIGITS = 6
#: digits of each end of an interval that does not (rounded outward: still an enclosure)
INTERVAL_DIGITS = 4


def num(v):
    """A float from a number, a decimal string or a ``["lo", "hi"]`` pair (its upper end);
    None when absent or unreadable."""
    if isinstance(v, list):
        v = v[1] if len(v) == 2 else None
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def finite(v) -> float | None:
    """num(v) when finite, else None."""
    x = num(v)
    return x if x is not None and math.isfinite(x) else None


def series(values, positive: bool = False) -> list[float]:
    """Floats for a plot: None, non-finite (and, with ``positive``, ≤ 0) become NaN (a gap)."""
    out = []
    for v in values or []:
        x = num(v)
        ok = x is not None and math.isfinite(x) and (x > 0 or not positive)
        out.append(x if ok else math.nan)
    return out


def has_data(ys) -> bool:
    return any(y == y for y in ys)


def fmt(v, digits: int = 4) -> str:
    """A value for the text: "—" when absent (null: missing or not finite)."""
    if v is None:
        return "—"
    if isinstance(v, list):
        if len(v) != 2:
            return str(v)
        return f"[{fmt(v[0], digits)}, {fmt(v[1], digits)}]"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _dec(s) -> Decimal | None:
    try:
        d = Decimal(str(s))
    except (InvalidOperation, ValueError):
        return None
    return None if d.is_nan() else d


def _short(d: Decimal, digits: int, rounding) -> str:
    if d.is_infinite():
        return "∞" if d > 0 else "−∞"
    if d == 0:
        return "0"
    r = Context(prec=digits, rounding=rounding).plus(d)
    if -5 < r.adjusted() < 6:
        text = f"{r.normalize():f}"
    else:
        text = f"{r.normalize():e}".replace("E", "e")
    return text.replace("-", "−")


def interval_text(v, same: int = SAME_DIGITS) -> str:
    """A certified ``["lo", "hi"]`` as a paper prints it: ``= 1`` when the ends are equal,
    ``≈ 0.7698`` when they agree to ``same`` significant digits (printed with those
    digits, trailing zeros dropped), else ``∈ [a, b]`` with :data:`INTERVAL_DIGITS` digits
    rounded outward (still an enclosure); "—" when unreadable."""
    if not isinstance(v, list) or len(v) != 2:
        d = _dec(v) if v is not None and not isinstance(v, bool) else None
        return "—" if d is None else f"≤ {_short(d, INTERVAL_DIGITS, ROUND_CEILING)}"
    a, b = _dec(v[0]), _dec(v[1])
    if a is None or b is None:
        return "—"
    if a == b:
        return f"= {_short(a, 17, ROUND_FLOOR)}"
    if a.is_finite() and b.is_finite():
        near = [Context(prec=same).plus(x) for x in (a, b)]
        if near[0] == near[1]:
            return f"≈ {_short(near[0], same, ROUND_FLOOR)}"
    return (f"∈ [{_short(a, INTERVAL_DIGITS, ROUND_FLOOR)}, "
            f"{_short(b, INTERVAL_DIGITS, ROUND_CEILING)}]")


def ratio(a, b) -> float | None:
    """a / b for finite a and b > 0 (None otherwise)."""
    a, b = finite(a), finite(b)
    if a is None or b is None or b <= 0:
        return None
    return a / b


def tightness(const: dict, q: str) -> dict:
    """Per t, for the constant ``q`` ("L" or "beta"): the closed form's and the certified
    upper ends, the observed lower bound, and the ratios ``cert_over_lower`` (how far the
    certified bound may be above the truth: the truth lies between lower and certified)
    and ``closed_over_cert`` (the gain over the paper's closed form)."""
    t = const.get("t") or []
    cf = (const.get("closed_form") or {}).get(q) or []
    ce = (const.get("certified") or {}).get(q) or []
    lo = (const.get("lower") or {}).get(q) or []

    def at(xs, i):
        return xs[i] if i < len(xs) else None

    rows = []
    for i in range(len(t)):
        # an upper end "inf" stays inf in the table (a bound that is not finite), a ratio
        # with it is None
        c, d, w = num(at(cf, i)), num(at(ce, i)), num(at(lo, i))
        rows.append({"t": t[i], "closed": c, "certified": d, "lower": w,
                     "cert_over_lower": ratio(d, w), "closed_over_cert": ratio(c, d)})
    return {"rows": rows}


def headline(const: dict) -> dict:
    """What the index answers per case: the gain over the closed form at the last step
    (``gain``: {q: closed/certified at t = T−1}) and the worst tightness (``worst``:
    {q: (max over t of certified/lower, that t)}); empty dicts without data-specific
    bounds."""
    gain, worst = {}, {}
    for q in ("L", "beta"):
        rows = tightness(const, q)["rows"]
        if rows and rows[-1]["closed_over_cert"] is not None:
            gain[q] = rows[-1]["closed_over_cert"]
        pairs = [(r["cert_over_lower"], r["t"]) for r in rows if r["cert_over_lower"] is not None]
        if pairs:
            worst[q] = max(pairs)
    return {"gain": gain, "worst": worst}


def allowance_stats(fp) -> dict:
    """Largest and median per-iterate floating-point allowance (observed) and the formula."""
    if not isinstance(fp, dict):
        x = finite(fp)
        return {"max": x, "median": x, "formula": None, "count": 0}
    vals = [x for x in (finite(v) for v in fp.get("values") or []) if x is not None]
    return {"max": finite(fp.get("max")) if fp.get("max") is not None else
            (max(vals) if vals else None),
            "median": statistics.median(vals) if vals else None,
            "formula": fp.get("formula"), "count": len(vals)}


#: the a-priori bound's reasons (certify.train.executor) in words
APRIORI_REASONS = {
    "eta * mean_t L_t^2 >= 1": "it needs η·Λ < 1 (Λ = mean_t L_t²), and here "
                               "η·Λ = {eta_L2}: the step size is too large for it",
    "some steps not checked (E_k unknown)": "some steps were not checked, so their E_k is "
                                            "unknown",
    "no finite L_t for a ball holding every iterate": "no finite L_t is certified for a ball "
                                                      "that holds every iterate",
}


def apriori_text(ap: dict) -> str:
    """``applicable`` of the a-priori bound in words, with the reason when it is not."""
    if ap.get("applicable"):
        holds = ap.get("holds")
        return "applies" + ("" if holds is None else
                            (" and holds" if holds else " and does NOT hold"))
    reason = str(ap.get("reason") or "")
    words = APRIORI_REASONS.get(reason)
    if words:
        return "does not apply: " + words.format(eta_L2=fmt(finite(ap.get("eta_L2"))))
    return f"does not apply: {reason}" if reason else "does not apply"
