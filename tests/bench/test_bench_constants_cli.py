"""Issue target: ``constants --activation tanh --alpha 0.9 --steps 200 --json`` cold
(fresh process, empty code cache) in under 3 s on one core.

Reported against a reference measured in the same run: the start-up of a bare
``python -c "import numpy, mpmath"`` process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

pytestmark = pytest.mark.bench

CMD = [sys.executable, "-m", "certify", "constants", "--activation", "tanh", "--alpha", "0.9",
       "--steps", "200", "--json"]


def _cold():
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, RNN_CERTIFY_CACHE=d, OMP_NUM_THREADS="1",
                   OPENBLAS_NUM_THREADS="1")
        subprocess.run(["taskset", "-c", "0", *CMD] if _has_taskset() else CMD, env=env,
                       check=True, capture_output=True)


def _reference():
    subprocess.run([sys.executable, "-c", "import numpy, mpmath"], check=True,
                   capture_output=True)


def _has_taskset() -> bool:
    from shutil import which

    return which("taskset") is not None


def test_reference_python_startup(benchmark):
    benchmark.group = "constants-cli"
    benchmark.pedantic(_reference, rounds=5, iterations=1)


def test_constants_cli_cold(benchmark):
    benchmark.group = "constants-cli"
    benchmark.pedantic(_cold, rounds=3, iterations=1)
    mean = benchmark.stats.stats.mean
    benchmark.extra_info["target_seconds"] = 3.0
    benchmark.extra_info["cold_seconds"] = mean
    assert mean < 3.0, f"cold constants CLI took {mean:.2f}s (target < 3 s on one core)"
