"""Points of a sweep: the base case with keys replaced, and their stable IDs.

A point's ID is a hash of its *canonical case content*: the validated specs of the
case (defaults filled in, decimals as exact fractions, floats as the exact value of
their double, the activation by its canonical name), not of the TOML text, the order
of its keys or how a number was written (``0.5``, ``"0.50"``, ``5e-1`` are one point).
The name and ``[meta]`` do not enter it: a point is named ``SWEEP-ID``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..cases.case import DecimalValue, case_from_doc

#: spec fields left out of the canonical content (derived, or machine-dependent)
_LEFT_OUT = {"act", "resolved_path", "source"}
ID_LENGTH = 16


@dataclass(frozen=True)
class Point:
    """One case of a sweep: its varied values (as written), its TOML document, its ID."""

    values: dict
    doc: dict
    id: str
    name: str
    sha256: str  # of the canonical content; the ID is its first ID_LENGTH hex digits

    @property
    def file(self) -> str:
        return f"{self.id}.json"


def with_values(base_doc: dict, values: dict, name: str) -> dict:
    """The base document with the dotted keys replaced (a missing table is created; a key
    that names a table replaces it whole)."""
    doc = copy.deepcopy(base_doc)
    for key, value in values.items():
        if "." not in key:
            doc[key] = copy.deepcopy(value)
            continue
        table, sub = key.split(".", 1)
        if not isinstance(doc.get(table), dict):
            doc[table] = {}
        doc[table][sub] = copy.deepcopy(value)
    doc["name"] = name
    return doc


def _canon(v):
    if isinstance(v, DecimalValue):
        return ["decimal", str(v.exact)]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return ["int", str(v)]
    if isinstance(v, float):
        return ["float", str(Fraction(v))]
    if isinstance(v, list | tuple):
        return [_canon(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"no canonical form for {type(v).__name__}")  # pragma: no cover


def canonical_content(base_path: Path, doc: dict) -> dict:
    """The validated case of ``doc`` as a plain, canonical dict (the ID's preimage)."""
    case = case_from_doc(base_path, doc, "", build=False)
    out = {}
    for table in ("model", "init_spec", "ball", "data_spec", "target_spec", "train",
                  "certify"):
        spec = getattr(case, table)
        out[table] = {f.name: _canon(getattr(spec, f.name)) for f in dataclasses.fields(spec)
                      if f.name not in _LEFT_OUT}
    return out


def content_sha256(base_path: Path, doc: dict) -> str:
    """sha256 of the canonical content (sorted-key compact JSON)."""
    text = json.dumps(canonical_content(base_path, doc), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def make_point(spec, values: dict) -> Point:
    doc = with_values(spec.base_doc, values, spec.name)
    sha = content_sha256(spec.base_path, doc)
    pid = sha[:ID_LENGTH]
    name = f"{spec.name}-{pid}"
    doc["name"] = name
    return Point(values=dict(values), doc=doc, id=pid, name=name, sha256=sha)


def outer_values(spec) -> list[dict]:
    """The product of ``[grid]`` crossed with the rows of ``[zip]``, in the spec's order."""
    grid_keys = [k for k, _ in spec.grid]
    rows = list(itertools.product(*(v for _, v in spec.grid))) or [()]
    zip_keys = [k for k, _ in spec.zip]
    zip_rows = list(zip(*(v for _, v in spec.zip), strict=True)) or [()]
    return [dict(zip(grid_keys, g, strict=True)) | dict(zip(zip_keys, z, strict=True))
            for g in rows for z in zip_rows]


def all_values(spec, search_values: str = "none") -> list[dict]:
    """The varied values of grid × zip; with a search, ``search_values`` "ends" (its min
    and max: what the spec is validated at) or "none" (the search chooses its points as
    it goes, so there are none up front)."""
    outer = outer_values(spec)
    if spec.search is None:
        return outer
    if search_values == "none":
        return []
    ends = sorted({spec.search.values[0], spec.search.values[-1]})
    return [v | {spec.search.key: e} for v in outer for e in ends]


def expand(spec, search_values: str = "none") -> list[Point]:
    """The points of :func:`all_values`, duplicates removed."""
    return unique([make_point(spec, v) for v in all_values(spec, search_values)])


def unique(points: list[Point]) -> list[Point]:
    """The points with duplicates (same ID: the same case) removed, first kept."""
    seen, out = set(), []
    for p in points:
        if p.id not in seen:
            seen.add(p.id)
            out.append(p)
    return out
