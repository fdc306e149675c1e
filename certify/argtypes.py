"""argparse types that fail with one-line :class:`UserError` messages naming the argument."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .errors import UserError


def _number(name: str, convert, what: str, minimum, strict: bool):
    def parse(text: str):
        try:
            v = convert(text)
        except (ValueError, InvalidOperation):
            raise UserError(f"argument {name}: not {what}: {text!r}") from None
        if isinstance(v, Decimal | float) and not (v == v and abs(v) != float("inf")):
            raise UserError(f"argument {name}: must be finite, got {text!r}")
        if minimum is not None and (v <= minimum if strict else v < minimum):
            raise UserError(f"argument {name}: must be {'>' if strict else '>='} {minimum}, "
                            f"got {text}")
        return v

    return parse


def int_at_least(name: str, minimum: int):
    """An integer ≥ minimum."""
    return _number(name, int, "an integer", minimum, strict=False)


def float_above(name: str, minimum: float):
    """A finite float > minimum."""
    return _number(name, float, "a number", minimum, strict=True)


def decimal_at_least(name: str, minimum):
    """A finite decimal ≥ minimum, returned as the original *text* (read exactly later)."""
    check = _number(name, Decimal, "a decimal number", Decimal(minimum), strict=False)

    def parse(text: str) -> str:
        check(text)
        return text

    return parse
