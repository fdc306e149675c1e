"""``rnn-certify sweep``: spec → points → cluster → results, summary, report.

Order: the spec and every point are validated and ``--out`` is checked to be a
writable folder before dask is started (a mistake is one line, exit 2, nothing
written).  Then the points run (a grid all at once; a search round by round), each
certificate written as it arrives; results.csv, summary.json and report.md come last
(each written atomically) and cover every point of the spec, done now or before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SweepResult:
    """What the command prints: counts and where the files are."""

    out_dir: Path
    total: int
    already: int
    computed: int
    failed: list
    verdicts: dict


def _task(spec, point, settings):
    from .execute import PointTask

    return PointTask(id=point.id, sha256=point.sha256, base_path=str(spec.base_path),
                     doc=point.doc, values=point.values, backend=settings.backend,
                     threads=settings.threads)


def _evaluate(client, spec, settings, out_dir, state, progress):
    """A function that certifies a list of value dicts on the cluster (for the search),
    remembering every point and outcome in ``state``."""
    from .execute import run_points
    from .points import make_point, unique

    def evaluate(values_list):
        pts = [make_point(spec, v) for v in values_list]
        new = [p for p in unique(pts) if p.id not in state["outcomes"]]
        state["tally"].total += len(new)
        state["points"] += new
        state["outcomes"] |= run_points(client, [_task(spec, p, settings) for p in new],
                                        out_dir / "points", state["tally"], progress)
        out = []
        for p in pts:
            o = state["outcomes"][p.id]
            out.append((o.certificate, o.reason))
        return out

    return evaluate


def run_sweep(spec_path, out_dir, settings, progress=None) -> SweepResult:
    """Run the sweep in ``spec_path`` into ``out_dir`` (see the module docstring)."""
    from ..output.certificate import check_out_dir, write_atomic
    from .execute import Tally, import_distributed, open_client, run_points
    from .experiments import derive
    from .points import expand
    from .results import csv_text, make_row, summary
    from .search import run_search
    from .spec import load_spec

    spec = load_spec(spec_path)
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    import_distributed()  # before anything is written
    points = expand(spec)
    state = {"tally": Tally(total=len(points)), "points": list(points), "outcomes": {}}
    search = None
    with open_client(settings) as client:
        if spec.search is None:
            tasks = [_task(spec, p, settings) for p in points]
            state["outcomes"] = run_points(client, tasks, out_dir / "points", state["tally"],
                                           progress)
        else:
            search = run_search(spec, _evaluate(client, spec, settings, out_dir, state,
                                                progress))
    target = spec.experiment.target or (spec.search.target if spec.search else None)
    rows = [make_row(p, state["outcomes"][p.id], target, spec.experiment.relative)
            for p in state["points"]]
    summ = summary(spec, rows, state["tally"], derive(spec, rows, search))
    write_atomic(out_dir / "results.csv", csv_text(spec.varied, rows))
    write_atomic(out_dir / "summary.json", json.dumps(summ, indent=1, allow_nan=False) + "\n")
    from .report import write_report

    write_report(out_dir, spec, rows, summ)
    t = state["tally"]
    return SweepResult(out_dir, len(rows), t.already, t.done, t.failures, summ["verdicts"])
