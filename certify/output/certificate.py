"""Certificates: one versioned JSON document per case, written atomically.

A certificate separates what is **certified** (outward-rounded enclosures from
the trusted engine, written as ``["lo", "hi"]`` decimal strings that round
outward, or as one decimal string rounded up for an upper bound) from what is
**observed** (floating point from the executor, written as JSON numbers).  The
``rigor`` section lists which field is which.  The document is plain JSON: no
NaN or infinity anywhere (a non-finite observed value is stored as ``null``
and forces the verdict ``unknown``).
"""

from __future__ import annotations

import json
import math
import os
import platform
import secrets
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

#: the certificate format's version; ``certificate.schema.json`` beside this module is its
#: JSON Schema (Draft 2020-12) and states the same version (a test checks both agree)
SCHEMA_VERSION = "1.1"
SCHEMA_FILE = "certificate.schema.json"

REQUIRED = {
    "schema_version": None,
    "case": ("name", "path", "sha256"),
    "environment": ("package", "python", "numpy", "mpmath", "sympy", "backend", "device",
                    "git_commit", "git_dirty", "machine", "interval_engine"),
    "seeds": None,
    "activation": ("name", "sigma0", "sigma1", "sigma2"),
    "constants": ("t", "alpha_m", "closed_form", "certified", "lower"),
    "executor": ("algorithm", "eta", "iterations", "loss", "avg_loss", "loss_comparator",
                 "drift", "radius", "exit_time", "apriori"),
    "verdict": None,
    "reasons": None,
    "timings": None,
}

RIGOR = {
    "certified": [
        "activation.sigma0/sigma1/sigma2: enclosures of sup|σ^(k)| over R",
        "constants.alpha_m: enclosure of α₀ + ρ_w/√m from the case's decimal strings",
        "constants.closed_form.L/beta: enclosures of the closed-form bounds (THEORY §5)",
        "constants.certified.L/beta: upper bounds of sup over Ω_ρ of max_{i,j} ‖g_t‖, ‖H_t‖ "
        "for the case's data and initialization",
    ],
    "observed": [
        "executor.*: floating-point values from the executor (losses, Ψ_k, gradients, slack)",
        "constants.lower.*: best observed ‖g_t‖, ‖H_t‖ at sampled / optimized points of Ω_ρ",
        "target.stderr: Monte Carlo standard error of the realizable target",
    ],
    "checked": [
        "executor.drift: observed LHS ≤ RHS + fp_allowance at every iterate, with the "
        "certified β_t of the ball holding the iterates",
        "constants: closed_form ≥ certified ≥ lower for every t",
        "executor.apriori: observed average loss ≤ a-priori bound (when applicable)",
    ],
}


class CertificateError(ValueError):
    pass


@dataclass(frozen=True)
class Certificate(Mapping):
    """A read-only, dict-like certificate.  ``to_json()`` gives the JSON text."""

    data: dict = field(repr=False)

    def __getitem__(self, key):
        return self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)

    @property
    def verdict(self) -> str:
        return self.data["verdict"]

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.data, indent=indent, allow_nan=False, sort_keys=False)

    def write(self, path: Path) -> Path:
        write_atomic(Path(path), self.to_json() + "\n")
        return Path(path)


def write_atomic(path: Path, text: str, mode: str = "w") -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``:
    readers see the old file or the whole new one, never a part.

    The file gets the mode a plain ``open(path, "w")`` would give (0o666 less the
    umask, e.g. 0644), like the plots beside it: the temporary file is created with
    ``os.open(..., 0o666)``, so the kernel applies the umask (and any default ACL);
    ``tempfile.mkstemp`` would give 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, mode) as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new hidden file beside ``path``, opened for writing with mode 0o666 & ~umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary name")  # pragma: no cover


def check_out_dir(folder: Path, what: str = "argument --out") -> None:
    """Raise :class:`~certify.errors.UserError` unless ``folder`` is (or can be made)
    a folder we can write into: not a file, not under a file, writable.

    Probes by creating the missing folders and a temporary file in it, then removes
    what it created: nothing is left behind, whatever the outcome.
    """
    from ..errors import UserError

    folder = Path(folder)
    for p in (folder, *folder.parents):
        if p.is_dir():
            break
        if p.exists() or p.is_symlink():
            if p == folder:
                raise UserError(f"{what}: {folder}: is a file, not a folder")
            raise UserError(f"{what}: {folder}: lies under {p}, which is a file")
    created: list[Path] = []
    try:
        for p in reversed([q for q in (folder, *folder.parents) if not q.is_dir()]):
            p.mkdir()
            created.append(p)
        fd, tmp = _create_temp(folder / "write-test")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise UserError(f"{what}: {folder}: cannot write there "
                        f"({exc.strerror or exc})") from None
    finally:
        for p in reversed(created):
            try:
                p.rmdir()
            except OSError:  # pragma: no cover - someone else wrote into it meanwhile
                pass


def finite_or_none(x):
    """An observed float for JSON: None when NaN/inf (the caller marks it unknown)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def float_list(xs) -> list:
    return [finite_or_none(x) for x in xs]


def load_schema() -> dict:
    """The published JSON Schema of the certificate (package data ``certify/output/
    certificate.schema.json``), for ``jsonschema`` or any other Draft 2020-12 validator."""
    from importlib import resources

    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text("utf-8"))


def validate(doc: Mapping) -> list[str]:
    """Problems with a certificate's shape (missing fields); empty when valid."""
    problems = []
    for key, sub in REQUIRED.items():
        if key not in doc:
            problems.append(f"missing field {key!r}")
            continue
        if sub:
            if doc[key] is None:
                continue
            for s in sub:
                if s not in doc[key]:
                    problems.append(f"missing field {key}.{s}")
    if doc.get("verdict") not in ("pass", "fail", "unknown"):
        problems.append(f"verdict must be pass/fail/unknown, got {doc.get('verdict')!r}")
    try:
        json.dumps(doc, allow_nan=False)
    except ValueError:
        problems.append("certificate contains NaN or infinity")
    return problems


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _git(*args) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def environment(backend: str, device: str, engine: str) -> dict:
    import mpmath
    import numpy
    import sympy

    from .._version import __version__

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "package": f"rnn-certify {__version__}",
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "mpmath": mpmath.__version__,
        "sympy": sympy.__version__,
        "backend": backend,
        "device": device,
        "git_commit": commit,
        "git_dirty": (bool(status) if status is not None else None),
        "machine": {"node": platform.node(), "system": platform.system(),
                    "arch": platform.machine(), "cpus": os.cpu_count()},
        "interval_engine": engine,
        # mpmath's mpf kernels: "gmpy" (GMP through gmpy2, when installed) or "python";
        # both round correctly: certified numbers agree bit for bit (test_mpmath_backends)
        "mpmath_backend": mpmath.libmp.BACKEND,
    }
