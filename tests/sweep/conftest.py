"""Tiny cases and specs for the sweep tests: each point certifies in well under a second
(width ≤ 8, n ≤ 4, T = 3, 20 iterations, no data-specific constants)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from certify import cli
from tests.case_util import tiny_case_toml

TINY_CASE = tiny_case_toml()

GRID = """\
[grid]
"model.width" = [4, 8]
"data.n" = [3, 4]
"""


def write_spec(folder: Path, body: str = GRID, name: str = "tiny-sweep",
               base: str = "tiny.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.toml").write_text(TINY_CASE)
    spec = folder / "spec.toml"
    head = f'name = "{name}"\n' + (f'base = "{base}"\n' if base else "")
    spec.write_text(head + textwrap.dedent(body))
    return spec


def sweep(capsys, *args) -> tuple[int, str, str]:
    rc = cli.main(["sweep", *map(str, args), "--quiet"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def rows_without_times(out_dir: Path) -> list[dict]:
    from certify.sweep.results import read_csv

    return [{k: v for k, v in r.items() if k != "seconds"} for r in read_csv(out_dir /
                                                                             "results.csv")]


def certificate(out_dir: Path, pid: str) -> dict:
    return json.loads((out_dir / "points" / f"{pid}.json").read_text())


@pytest.fixture
def spec(tmp_path) -> Path:
    return write_spec(tmp_path / "spec")
