"""Command line: ``python -m certify …`` and the ``rnn-certify`` console script.

User mistakes (bad arguments, bad case files) print one line on stderr and
exit with status 2, never a traceback.  Exit status 1 means a certificate
failed or a regression was found; 0 means everything passed.
"""

from __future__ import annotations

import argparse
import json
import sys

from .argtypes import decimal_at_least, int_at_least
from .errors import UserError

PROG = "rnn-certify"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Certify convergence constants and drift inequalities "
                "of gradient descent on diagonal Elman RNNs.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    c = sub.add_parser("constants", help="certified σ-constants and closed-form L_t, β_t")
    c.add_argument("--activation", required=True,
                   help="tanh | logistic | gaussian | a sympy expression in z")
    c.add_argument("--alpha", required=True, type=decimal_at_least("--alpha", 0),
                   help="α_m (decimal; read exactly)")
    c.add_argument("--steps", required=True, type=int_at_least("--steps", 1), help="T")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_constants)

    from . import commands

    commands.add_subcommands(sub)
    return p


def bound_strings(x) -> list[str]:
    """``["lo", "hi"]`` decimal strings of a certified enclosure of a nonnegative bound.

    An upper end beyond the double range prints as ``"inf"`` (still a valid upper
    bound, but not finite: a certification that needs it is ``unknown``, THEORY),
    and the lower end is then capped at the largest double (still ≤ the true value).
    Writing a number like 10^(10^4) out in decimal takes time quadratic in its
    length; this keeps ``constants`` linear in ``--steps``.
    """
    from mpmath import mpf

    from .trusted.intervals import hi, interval_strings, lo, to_decimal

    big = mpf(sys.float_info.max)
    if hi(x) <= big:
        return interval_strings(x)
    return [to_decimal(min(lo(x), big), "floor"), "inf"]


def cmd_constants(args) -> int:
    from symbolic.activations import ActivationError

    from .trusted.activation_constants import closed_form_constants
    from .trusted.intervals import interval_strings, lo

    try:
        res = closed_form_constants(args.activation, args.alpha, args.steps)
    except ActivationError as exc:
        raise UserError(f"argument --activation: {exc}") from None
    act = res["activation"]
    q = res["q"]
    regime = "short memory (q < 1)" if q.b < 1 else (
        "long memory (q > 1)" if lo(q) > 1 else "at the cutoff (q ∋ 1)")
    L = [bound_strings(x) for x in res["L"]]
    B = [bound_strings(x) for x in res["beta"]]
    inf_t = next((t for t, lb in zip(res["t"], zip(L, B, strict=True), strict=True)
                  if "inf" in (lb[0][1], lb[1][1])), None)
    out = {
        "activation": act.to_json(),
        "alpha_m": interval_strings(res["alpha_m"]),
        "q": interval_strings(q),
        "regime": regime,
        "t": res["t"],
        "L": L,
        "beta": B,
        "first_inf_t": inf_t,
        "engine": "mpmath.iv",
        "certified": True,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    _print_constants_table(args, out)
    return 0


def _print_constants_table(args, out: dict) -> None:
    a = out["activation"]
    lines = [f"activation {a['name']} ({a['expression']}); all values certified enclosures "
             f"(mpmath.iv, outward rounding)"]
    lines += [f"  sigma{k} in {a[f'sigma{k}']}" for k in range(3)]
    lines.append(f"alpha_m = {args.alpha}, q = sigma1*alpha_m in {out['q']}: {out['regime']}")
    lines.append(f"{'t':>5}  {'L_t <=':>24}  {'beta_t <=':>24}")
    lines += [f"{t:>5}  {L[1]:>24}  {B[1]:>24}"
              for t, L, B in zip(out["t"], out["L"], out["beta"], strict=True)]
    if out["first_inf_t"] is not None:
        lines.append(f"inf: beyond the double range (> {sys.float_info.max:.6g}) from "
                     f"t = {out['first_inf_t']} on; not finite, so a certificate that needs "
                     "these bounds is unknown")
    sys.stdout.write("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            raise UserError(f"{PROG}: a command is required (constants, run, report, compare, "
                            "sweep); see --help")
        return int(args.func(args) or 0)
    except UserError as exc:
        msg = str(exc).replace("\n", " ")
        print(f"{PROG}: error: {msg}" if not msg.startswith(PROG) else f"{msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted: stopped, nothing more written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
