"""Progress display: one updating line on a terminal, silent in CI or when piped."""

from __future__ import annotations

import os
import sys
import time


class Progress:
    """``stage``/``case k of N``/``iteration i of I`` on one terminal line.

    Enabled only when stderr is a TTY and the environment variable ``CI`` is
    not set (CI stays quiet); ``enabled`` forces it either way.
    """

    def __init__(self, total_cases: int = 1, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)()) and not os.environ.get(
                "CI")
        self.enabled = enabled
        self.total = total_cases
        self.k = 0
        self.case = ""
        self.stage = ""
        self._last = 0.0

    def start_case(self, k: int, name: str) -> None:
        self.k, self.case = k, name
        self.set_stage("load")

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self._draw(force=True)

    def iteration(self, i: int, total: int) -> None:
        self._draw(extra=f"iteration {i}/{total}")

    def substage(self, stage: str, done: int, total: int) -> None:
        """A step inside a stage (e.g. boxes of the data-specific certification)."""
        self._draw(extra=f"{stage} {done}/{total}")

    def _draw(self, extra: str = "", force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        line = f"[case {self.k}/{self.total}] {self.case}: {self.stage} {extra}"
        self.stream.write("\r" + line[:120].ljust(120))
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 120 + "\r")
            self.stream.flush()
