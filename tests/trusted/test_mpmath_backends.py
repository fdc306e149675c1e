"""mpmath's two backends give the same certificates, bit for bit.

mpmath runs its mpf kernels in pure Python, or through GMP (gmpy2) when gmpy2 is
installed (``mpmath.libmp.BACKEND`` is then ``"gmpy"``; ``MPMATH_NOGMPY=1``
forces ``"python"``).  Both round correctly, so every certified number must be
identical; the backend is chosen when mpmath is imported, so each run is a
subprocess.  This caught a real defect: with gmpy2 installed, mantissas are
``mpz`` and writing a certificate failed (``Decimal(mpz)``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.test_runner import write_case

pytestmark = pytest.mark.slow


def _observed_times_removed(x):
    """The certificate without wall times and rates (the only fields that may differ)."""
    if isinstance(x, dict):
        return {k: _observed_times_removed(v) for k, v in x.items()
                if k not in ("timings", "timing", "seconds") and not k.endswith("_per_second")}
    if isinstance(x, list):
        return [_observed_times_removed(v) for v in x]
    return x


def _run(case, out, nogmpy: bool):
    env = dict(os.environ)
    env.pop("MPMATH_NOGMPY", None)
    # a cache of its own: the σ-constants and their tables are computed with this backend
    env["RNN_CERTIFY_CACHE"] = str(out.parent / f"cache-{int(nogmpy)}")
    if nogmpy:
        env["MPMATH_NOGMPY"] = "1"
    r = subprocess.run([sys.executable, "-m", "certify", "run", str(case), "--out", str(out),
                        "--quiet", "--no-report"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    cert = json.loads((out / f"{case.stem}.json").read_text())
    return cert["environment"]["mpmath_backend"], _observed_times_removed(cert)


def test_python_and_gmpy_backends_certify_identically(tmp_path):
    pytest.importorskip("gmpy2", reason="gmpy2 not installed (the 'gmpy' extra)")
    d = tmp_path / "cases"
    d.mkdir()
    case = write_case(d, ds="true", alpha0="0.9")  # q > 1: long memory, data-specific bounds
    b_py, c_py = _run(case, tmp_path / "py", nogmpy=True)
    b_gmp, c_gmp = _run(case, tmp_path / "gmp", nogmpy=False)
    assert (b_py, b_gmp) == ("python", "gmpy")
    assert c_py["constants"]["certified"] is not None
    assert c_py["verdict"] == "pass"
    for key in ("activation", "constants", "target", "comparator", "executor", "verdict",
                "reasons"):
        assert c_py.get(key) == c_gmp.get(key), f"{key} differs between mpmath backends"
