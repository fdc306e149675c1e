"""Skip helpers for the GPU tests (CI has no CUDA device: they must skip cleanly)."""

from __future__ import annotations

import pytest


def cupy_or_skip():
    """The cupy module when it imports and sees a CUDA device; otherwise skip the test."""
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception:  # noqa: BLE001 - any CUDA runtime error means no usable device
        pytest.skip("no CUDA device")
    return cp
