"""The sweep spec: read, validate, expand (INTERFACE.md "Sweep spec").

Schema (``*`` = required)::

    name*          letters, digits, '.', '_', '-' (names the points: NAME-ID)
    base*          a case file, relative to the spec
    [grid]         dotted case keys ("model.width"), each a non-empty list: their product;
                   a key naming a case table ("target") replaces it whole (inline tables)
    [zip]          dotted case keys, lists of one common length: one point per position
    [search]       (optional) an adaptive search over one more key, for each point of
                   grid × zip: key*, min*, max*, step (2), target* (a training error),
                   certified_target (target: the error the a-priori bound must certify),
                   criteria (["observed", "certified"]; also "held-out": the relative
                   error on the case's [data].test_n held-out samples)
    [experiment]   (optional) kind (width-vs-n | memory-cutoff | pgd-vs-gd |
                   concept-classes), target (a training error for iterations-to-target),
                   relative (false; true: target is a fraction of R̂(Θ(0))),
                   x (the key on the x axis of the figures)
    [meta]         (optional, free-form) description

Every point (the base document with the keys replaced) is validated exactly like a
case file (:func:`certify.cases.case.case_from_doc`, not built) when the spec is
loaded: a bad key or value is one :class:`~certify.errors.UserError` naming the spec
and the key, before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..cases.case import DecimalValue, case_from_doc, read_case_doc
from ..errors import UserError

TOP_KEYS = ("name", "base", "grid", "zip", "search", "experiment", "meta")
EXPERIMENTS = ("width-vs-n", "memory-cutoff", "pgd-vs-gd", "concept-classes")
CRITERIA = ("observed", "certified", "held-out")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_KEY = re.compile(r"[a-z_]+\.[a-z_0-9]+")
#: case tables a spec may replace whole (a list of inline tables: e.g. targets of two kinds)
WHOLE_TABLES = ("model", "init", "ball", "data", "target", "train", "certify")


@dataclass(frozen=True)
class Search:
    """``[search]``: the smallest value of ``key`` in min, min+step, …, max at which
    each criterion holds (galloping, then bisection: the criteria are taken monotone).

    ``observed``: the final training error ≤ ``target``; ``certified``: the a-priori
    bound (THEORY §7 with the §5–6 bound of R̂(Θ̄)) ≤ ``target``.
    """

    key: str
    min: int
    max: int
    step: int
    target: float
    criteria: tuple[str, ...]
    certified_target: float | None = None  # None: the same target

    @property
    def values(self) -> list[int]:
        return list(range(self.min, self.max + 1, self.step))

    def target_for(self, criterion: str) -> float:
        if criterion == "certified" and self.certified_target is not None:
            return self.certified_target
        return self.target


@dataclass(frozen=True)
class Experiment:
    """``[experiment]``: the kind of derived results, the target error of the column
    iters_to_target (``relative``: as a fraction of the initial error R̂(Θ(0))), and the
    key on the figures' x axis."""

    kind: str | None = None
    target: float | None = None
    x: str | None = None
    relative: bool = False


@dataclass(frozen=True)
class SweepSpec:
    """A validated spec: the base document and the axes (values as written in TOML)."""

    name: str
    path: Path
    base_path: Path
    base_doc: dict
    grid: tuple[tuple[str, tuple], ...]
    zip: tuple[tuple[str, tuple], ...]
    search: Search | None
    experiment: Experiment
    description: str = ""

    @property
    def varied(self) -> list[str]:
        """The varied keys, as the columns of results.csv: grid, zip, then the search key."""
        keys = [k for k, _ in self.grid] + [k for k, _ in self.zip]
        return keys + ([self.search.key] if self.search else [])


def load_spec(path) -> SweepSpec:
    """Read and validate the spec in ``path`` and every point it describes."""
    where = str(path)
    doc, _ = read_case_doc(path)  # same TOML reading (decimals kept) as a case file
    unknown = [k for k in doc if k not in TOP_KEYS]
    if unknown:
        raise UserError(f"{where}: {unknown[0]}: unknown key (allowed: name, base, [grid], "
                        "[zip], [search], [experiment], [meta])")
    name = _string(where, doc, "name")
    if not _NAME.fullmatch(name):
        raise UserError(f"{where}: name: must be letters, digits, '.', '_' or '-', "
                        f"got {name!r}")
    base_path = _base(where, Path(path), doc)
    base_doc, _ = read_case_doc(base_path)
    grid = _axes(where, doc, "grid", base_doc)
    zipped = _axes(where, doc, "zip", base_doc)
    _equal_lengths(where, zipped)
    search = _search(where, doc.get("search"), grid + zipped)
    if not grid and not zipped and search is None:
        raise UserError(f"{where}: [grid]: empty (no [grid], [zip] or [search]: no points)")
    spec = SweepSpec(name=name, path=Path(path), base_path=base_path, base_doc=base_doc,
                     grid=grid, zip=zipped, search=search,
                     experiment=_experiment(where, doc.get("experiment")),
                     description=_description(where, doc.get("meta")))
    x = spec.experiment.x
    if x is not None and x not in spec.varied:
        raise UserError(f"{where}: [experiment].x: \"{x}\" is not a varied key (one of "
                        f"{', '.join(spec.varied)})")
    from .points import all_values, with_values

    for values in all_values(spec, search_values="ends"):
        case = check_point(spec, values, with_values(base_doc, values, name))
        if search is not None and "held-out" in search.criteria and not case.data_spec.test_n:
            shown = ", ".join(f'"{k}" = {_show(v)}' for k, v in values.items())
            raise UserError(f'{where}: [search].criteria: "held-out" needs held-out samples '
                            f"([data].test_n > 0), and point {{{shown}}} has none")
    return spec


def check_point(spec: SweepSpec, values: dict, doc: dict):
    """Validate one point like a case file (the unbuilt case); a mistake names the spec
    and the key."""
    try:
        return case_from_doc(spec.base_path, doc, "", build=False)
    except UserError as exc:
        raise UserError(_point_message(spec, values, str(exc))) from None


def _point_message(spec: SweepSpec, values: dict, msg: str) -> str:
    """``SPEC: [grid]."model.width" = 7: [model].width: must be even, got 7``: the varied
    key the case's message names, else every varied key of the point."""
    prefix = f"{spec.base_path}: "
    inner = msg[len(prefix):] if msg.startswith(prefix) else msg
    for key, value in values.items():
        table, sub = (key.split(".", 1) + [""])[:2]
        if inner.startswith(f"[{table}].{sub}:") or inner.startswith(f"[{table}]") and not sub:
            return f"{spec.path}: {_where(spec, key)}.\"{key}\" = {_show(value)}: {inner}"
    shown = ", ".join(f'"{k}" = {_show(v)}' for k, v in values.items())
    return f"{spec.path}: point {{{shown}}}: {inner}"


def _where(spec: SweepSpec, key: str) -> str:
    for table in ("grid", "zip"):
        if key in dict(getattr(spec, table)):
            return f"[{table}]"
    return "[search]"


def _show(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, DecimalValue):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v)
    return str(v)


def _string(where: str, doc: dict, key: str) -> str:
    if key not in doc:
        raise UserError(f"{where}: {key}: missing (required)")
    v = doc[key]
    if not isinstance(v, str) or not v.strip():
        raise UserError(f"{where}: {key}: expected a non-empty string, got {_show(v)}")
    return v


def _base(where: str, path: Path, doc: dict) -> Path:
    base = _string(where, doc, "base")
    p = Path(base)
    p = p if p.is_absolute() else path.resolve().parent / p
    if not p.is_file():
        raise UserError(f"{where}: base: no such case file: {base} (relative to the spec)")
    return p


def _axes(where: str, doc: dict, table: str, base_doc: dict) -> tuple:
    """``[grid]`` or ``[zip]``: dotted keys of a case table, each a non-empty list."""
    t = doc.get(table, {})
    if not isinstance(t, dict):
        raise UserError(f"{where}: [{table}]: expected a table")
    out = []
    for key, values in t.items():
        if isinstance(values, dict):  # "model.width" unquoted is a sub-table in TOML
            raise UserError(f"{where}: [{table}].{key}: quote the dotted key "
                            f"(\"{key}.…\" = [...])")
        whole = key in WHOLE_TABLES
        if whole and not (isinstance(values, list) and all(isinstance(v, dict)
                                                           for v in values)):
            raise UserError(f"{where}: [{table}].{key}: a whole table is replaced by a list "
                            "of inline tables ({kind = ..., ...})")
        if not whole and not _KEY.fullmatch(key):
            raise UserError(f"{where}: [{table}].\"{key}\": expected a dotted case key "
                            "TABLE.KEY (like \"model.width\")")
        if key.split(".")[0] == "meta":
            raise UserError(f"{where}: [{table}].\"{key}\": [meta] is not a case setting")
        if not isinstance(values, list) or not values:
            raise UserError(f"{where}: [{table}].\"{key}\": expected a non-empty list of "
                            "values")
        if any(key == k for k, _ in out):  # pragma: no cover - TOML rejects duplicate keys
            raise UserError(f"{where}: [{table}].\"{key}\": given twice")
        out.append((key, tuple(values)))
    return tuple(out)


def _equal_lengths(where: str, zipped: tuple) -> None:
    lengths = {len(v) for _, v in zipped}
    if len(lengths) > 1:
        key, first = zipped[0][0], len(zipped[0][1])
        bad = next(k for k, v in zipped if len(v) != first)
        raise UserError(f"{where}: [zip].\"{bad}\": has {len(dict(zipped)[bad])} values, "
                        f"\"{key}\" has {first} (zip needs lists of one length)")


def _int(where: str, t: dict, key: str, default=None, minimum=None) -> int:
    v = t.get(key, default)
    if v is None:
        raise UserError(f"{where}: [search].{key}: missing (required)")
    if isinstance(v, bool) or not isinstance(v, int):
        raise UserError(f"{where}: [search].{key}: expected an integer, got {_show(v)}")
    if minimum is not None and v < minimum:
        raise UserError(f"{where}: [search].{key}: must be ≥ {minimum}, got {v}")
    return v


def _positive(where: str, table: str, key: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise UserError(f"{where}: [{table}].{key}: expected a positive number, got {_show(v)}")
    try:
        x = float(DecimalValue(v)) if not isinstance(v, float) else float(v)
    except ValueError:
        raise UserError(f"{where}: [{table}].{key}: expected a positive number, "
                        f"got {_show(v)}") from None
    if not x > 0 or x != x or x == float("inf"):
        raise UserError(f"{where}: [{table}].{key}: must be positive and finite, got {_show(v)}")
    return x


def _search(where: str, t, axes: tuple) -> Search | None:
    if t is None:
        return None
    if not isinstance(t, dict):
        raise UserError(f"{where}: [search]: expected a table")
    allowed = ("key", "min", "max", "step", "target", "certified_target", "criteria")
    for k in t:
        if k not in allowed:
            raise UserError(f"{where}: [search].{k}: unknown key (allowed: "
                            f"{', '.join(allowed)})")
    key = t.get("key")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise UserError(f"{where}: [search].key: expected a dotted case key like "
                        f"\"model.width\", got {_show(key)}")
    if any(key == k for k, _ in axes):
        raise UserError(f"{where}: [search].key: \"{key}\" is also in [grid] or [zip]")
    lo, hi = _int(where, t, "min", minimum=1), _int(where, t, "max", minimum=1)
    step = _int(where, t, "step", default=2, minimum=1)
    if hi < lo:
        raise UserError(f"{where}: [search].max: must be ≥ min = {lo}, got {hi}")
    if "target" not in t:
        raise UserError(f"{where}: [search].target: missing (required)")
    crit = t.get("criteria", ["observed", "certified"])
    if not isinstance(crit, list) or not crit or any(c not in CRITERIA for c in crit):
        raise UserError(f"{where}: [search].criteria: expected a non-empty list of "
                        f"{', '.join(map(repr, CRITERIA))}, got {_show(crit)}")
    return Search(key=key, min=lo, max=hi, step=step,
                  target=_positive(where, "search", "target", t["target"]),
                  criteria=tuple(dict.fromkeys(crit)),
                  certified_target=(None if "certified_target" not in t else _positive(
                      where, "search", "certified_target", t["certified_target"])))


def _experiment(where: str, t) -> Experiment:
    if t is None:
        return Experiment()
    if not isinstance(t, dict):
        raise UserError(f"{where}: [experiment]: expected a table")
    for k in t:
        if k not in ("kind", "target", "x", "relative"):
            raise UserError(f"{where}: [experiment].{k}: unknown key (allowed: kind, target, "
                            "x, relative)")
    kind = t.get("kind")
    if kind is not None and kind not in EXPERIMENTS:
        raise UserError(f"{where}: [experiment].kind: must be one of "
                        f"{', '.join(map(repr, EXPERIMENTS))}, got {_show(kind)}")
    x = t.get("x")
    if x is not None and not isinstance(x, str):
        raise UserError(f"{where}: [experiment].x: expected a string, got {_show(x)}")
    target = t.get("target")
    relative = t.get("relative", False)
    if not isinstance(relative, bool):
        raise UserError(f"{where}: [experiment].relative: expected true or false, "
                        f"got {_show(relative)}")
    return Experiment(kind=kind, x=x, relative=relative, target=None if target is None else
                      _positive(where, "experiment", "target", target))


def _description(where: str, meta) -> str:
    if meta is None:
        return ""
    if not isinstance(meta, dict):
        raise UserError(f"{where}: [meta]: expected a table")
    d = meta.get("description", "")
    if not isinstance(d, str):
        raise UserError(f"{where}: [meta].description: expected a string")
    return d
