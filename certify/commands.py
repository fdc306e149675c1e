"""Subcommands ``run``, ``report``, ``compare`` and ``sweep`` (``constants`` lives in
cli.py)."""

from __future__ import annotations

from pathlib import Path

from .argtypes import float_above, int_at_least
from .errors import UserError

BACKENDS = ("numpy", "torch", "cupy", "array_api_strict")


def add_subcommands(sub) -> None:
    r = sub.add_parser("run", help="certify a case file or a folder of them")
    r.add_argument("path", help="a case file (.toml) or a folder of case files")
    r.add_argument("--out", default="out/certificates",
                   help="folder for NAME.json certificates and NAME.md reports")
    r.add_argument("--backend", default="numpy",
                   help=f"array backend of the executor: {', '.join(BACKENDS)}")
    r.add_argument("--jobs", type=int_at_least("--jobs", 1), default=1,
                   help="processes: cases in parallel (a folder) or neurons in parallel "
                        "(one case)")
    r.add_argument("--engine", default=None,
                   help="trusted interval engine of the data-specific bounds: mpmath.iv or "
                        "python-flint (default: each case's [certify].engine, else mpmath.iv)")
    r.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a dask.distributed scheduler (tcp://HOST:PORT): the data-specific "
                        "bounds fan out over that cluster (same result as a serial run)")
    r.add_argument("--no-report", action="store_true", help="write certificates only")
    r.add_argument("--quiet", action="store_true", help="no progress display")
    r.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="index page over the certificates in a folder")
    p.add_argument("folder")
    p.set_defaults(func=cmd_report)

    c = sub.add_parser("compare", help="regressions of NEW against BASE (files or folders)")
    c.add_argument("base")
    c.add_argument("new")
    c.add_argument("--rtol", type=float_above("--rtol", 0), default=None,
                   help="relative tolerance for a loosened certified constant (1e-6)")
    c.add_argument("--slowdown", type=float_above("--slowdown", 1), default=None,
                   help="allowed wall-time factor (3.0)")
    c.set_defaults(func=cmd_compare)

    w = sub.add_parser("sweep", help="a grid of cases on dask.distributed (resumable)")
    w.add_argument("spec", help="a sweep spec (.toml): name, base, [grid], [zip], [search]")
    w.add_argument("--out", required=True,
                   help="folder for points/ID.json, results.csv, summary.json, report.md")
    where = w.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int_at_least("--jobs", 1), default=None,
                       help="worker processes of the local Dask cluster (default: the cores)")
    where.add_argument("--scheduler", default=None,
                       help="address of an existing Dask scheduler (tcp://HOST:PORT)")
    w.add_argument("--backend", default="numpy",
                   help=f"array backend of the executor: {', '.join(BACKENDS)}")
    w.add_argument("--threads", type=int_at_least("--threads", 1), default=None,
                   help="NumPy threads of each point's executor and comparator (default: "
                        "the worker's cores; results do not depend on it)")
    w.add_argument("--quiet", action="store_true", help="no progress display")
    w.set_defaults(func=cmd_sweep)


def case_files(path: Path) -> list[Path]:
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.glob("*.toml"))
        if not files:
            raise UserError(f"{path}: no case files (*.toml) in this folder")
        return files
    if path.suffix != ".toml":
        raise UserError(f"{path}: a case file must end in .toml")
    return [path]


def cmd_run(args) -> int:
    import sys

    from .progress import Progress
    from .runner import run_many

    if args.backend not in BACKENDS:
        raise UserError(f"argument --backend: unknown backend {args.backend!r} "
                        f"(choose from {', '.join(BACKENDS)})")
    engine = None
    if args.engine is not None:
        from .trusted.engines import ENGINE_NAMES, canonical_engine, engine_unavailable

        try:
            engine = canonical_engine(args.engine)
        except ValueError:
            raise UserError(f"argument --engine: unknown interval engine {args.engine!r} "
                            f"(choose from {', '.join(ENGINE_NAMES)})") from None
        why = engine_unavailable(engine)
        if why:
            raise UserError(f"argument --engine: {why}")
    files = case_files(Path(args.path))
    if args.scheduler:
        _check_scheduler(args.scheduler)
    progress = Progress(len(files), enabled=False if args.quiet else None)
    try:
        results = run_many(files, Path(args.out), backend=args.backend, jobs=args.jobs,
                           report=not args.no_report, progress=progress, engine=engine,
                           scheduler=args.scheduler)
    finally:  # also on Ctrl-C or an error: clear the progress line before the message
        progress.done()
    counts = {"pass": 0, "fail": 0, "unknown": 0}
    for name, verdict, reasons in results:
        mark = {"pass": "PASS", "fail": "FAIL", "unknown": "UNKNOWN"}[verdict]
        line = f"{mark:8} {name}"
        counts[verdict] += 1
        if verdict != "pass":
            line += ": " + "; ".join(reasons[:3])
        print(line)
    if not args.no_report:
        from .output.report import write_index

        write_index(Path(args.out))
    unknown = f", {counts['unknown']} unknown" if counts["unknown"] else ""
    print(f"{counts['pass']} passed, {counts['fail']} failed{unknown}", file=sys.stdout)
    return 0 if counts["pass"] == len(results) else 1  # unknown is not a pass


def cmd_report(args) -> int:
    from .output.report import write_index

    path = write_index(Path(args.folder))
    print(path)
    return 0


def cmd_compare(args) -> int:
    from .output.compare import DEFAULT_RTOL, DEFAULT_SLOWDOWN, compare_paths

    probs = compare_paths(Path(args.base), Path(args.new),
                          rtol=args.rtol or DEFAULT_RTOL,
                          slowdown=args.slowdown or DEFAULT_SLOWDOWN)
    for p in probs:
        print(f"REGRESSION {p}")
    if not probs:
        print("no regressions")
    return 1 if probs else 0


def cmd_sweep(args) -> int:
    from .sweep.driver import run_sweep
    from .sweep.execute import ClusterSettings
    from .sweep.progress import PointsLine

    if args.backend not in BACKENDS:
        raise UserError(f"argument --backend: unknown backend {args.backend!r} "
                        f"(choose from {', '.join(BACKENDS)})")
    if not Path(args.spec).is_file():
        raise UserError(f"{args.spec}: no such sweep spec")
    progress = PointsLine(enabled=False if args.quiet else None)
    settings = ClusterSettings(jobs=args.jobs, scheduler=args.scheduler, backend=args.backend,
                               threads=args.threads)
    try:
        res = run_sweep(Path(args.spec), Path(args.out), settings, progress=progress)
    finally:
        progress.done()
    print(f"{res.already} of {res.total} points already done in {res.out_dir / 'points'}; "
          f"{res.computed} computed now, {len(res.failed)} failed")
    for pid, reason in res.failed:
        print(f"FAILED   {pid}: {reason}")
    v = res.verdicts
    print(f"{v.get('pass', 0)} passed, {v.get('fail', 0)} failed, {v.get('unknown', 0)} "
          f"unknown; results in {res.out_dir / 'results.csv'}, report {res.out_dir / 'report.md'}")
    return 0 if v.get("pass", 0) == res.total else 1


def _check_scheduler(address: str) -> None:
    """One line (exit 2) before any work when the scheduler cannot be reached."""
    from .bounds.data_constants import connect_scheduler

    try:
        connect_scheduler(address).close()
    except ValueError as exc:
        raise UserError(f"argument --scheduler: {exc}") from None
