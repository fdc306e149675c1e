"""Shared fixtures.  Tests are grouped by cost (see tests/README.md)."""

from __future__ import annotations

import numpy as np
import pytest

BUILTINS = ("tanh", "logistic", "gaussian")


@pytest.fixture(params=BUILTINS)
def builtin_activation(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)
