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


@pytest.fixture(autouse=True)
def _written_certificates_match_the_schema(monkeypatch):
    """Every certificate a test writes in this process (``Certificate.to_json``, which
    ``write`` goes through) is checked against ``certificate.schema.json`` first; the
    tests that run the CLI in a subprocess check the files it wrote themselves."""
    from certify.output.certificate import Certificate
    from tests.schema_util import assert_matches_schema

    to_json = Certificate.to_json

    def checked(self, *args, **kwargs):
        assert_matches_schema(self.data)
        return to_json(self, *args, **kwargs)

    monkeypatch.setattr(Certificate, "to_json", checked)


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


#: lines a test module adds for the end of the run (e.g. tests/test_fault_injection.py)
SUMMARY_LINES: list[str] = []


def pytest_terminal_summary(terminalreporter):
    for line in SUMMARY_LINES:
        terminalreporter.write_line(line)
