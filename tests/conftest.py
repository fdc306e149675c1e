"""Shared fixtures.  Tests are grouped by cost (see tests/README.md)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

# Hypothesis: random exploration on a developer's machine (it found real defects
# there), fixed examples in CI (``CI`` set), so that a CI failure is a change's
# doing and reruns the same; every failure prints the blob that reproduces it.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

BUILTINS = ("tanh", "logistic", "gaussian")


@pytest.fixture(params=BUILTINS)
def builtin_activation(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


#: lines a test module adds for the end of the run (e.g. tests/test_fault_injection.py)
SUMMARY_LINES: list[str] = []


def pytest_terminal_summary(terminalreporter):
    for line in SUMMARY_LINES:
        terminalreporter.write_line(line)
