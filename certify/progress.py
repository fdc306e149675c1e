"""Progress display with tqdm: on a terminal, silent in CI or when piped.

Two bars on stderr: the cases (``[case k/N] NAME: stage``) and, below it, the steps
of the current stage (executor iterations, boxes of the data-specific certification)
with tqdm's rate and time left.  Both vanish when the run ends (``done``), so the
verdict lines that follow stand alone.
"""

from __future__ import annotations

import os
import sys

from tqdm import tqdm

#: seconds between two redraws (tqdm's ``mininterval``)
REDRAW = 0.1


class Progress:
    """``stage``/``case k of N``/``iteration i of I`` on a terminal.

    Enabled only when the stream (stderr) is a TTY and the environment variable ``CI``
    is not set (CI stays quiet); ``enabled`` forces it either way.  Disabled, no tqdm
    bar is created and nothing is written.
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
        self._cases: tqdm | None = None
        self._steps: tqdm | None = None
        self._what = ""

    def _bar(self, **kw) -> tqdm:
        return tqdm(file=self.stream, leave=False, mininterval=REDRAW, dynamic_ncols=True,
                    **kw)

    def start_case(self, k: int, name: str) -> None:
        self.k, self.case = k, name
        if self.enabled:
            if self._cases is None:
                self._cases = self._bar(total=self.total, unit="case", position=0,
                                        bar_format="{desc} {bar:12} {n_fmt}/{total_fmt} "
                                                   "cases [{elapsed}]")
            self._cases.n = max(k - 1, 0)  # cases finished before this one
        self.set_stage("load")

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        if not self.enabled:
            return
        self._close_steps()
        if self._cases is not None:
            self._cases.set_description_str(f"[case {self.k}/{self.total}] {self.case}: "
                                            f"{stage}", refresh=True)

    def iteration(self, i: int, total: int) -> None:
        self._step("iteration", i, total)

    def substage(self, stage: str, done: int, total: int) -> None:
        """A step inside a stage (e.g. boxes of the data-specific certification)."""
        self._step(stage, done, total)

    def _step(self, what: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self._steps
        if bar is None or self._what != what or bar.total != total:
            self._close_steps()
            bar = self._steps = self._bar(total=total, desc=what, position=1, unit="step")
            self._what = what
        if done > bar.n:
            bar.update(done - bar.n)

    def _close_steps(self) -> None:
        if self._steps is not None:
            self._steps.close()
            self._steps = None

    def done(self) -> None:
        self._close_steps()
        if self._cases is not None:
            self._cases.close()
            self._cases = None
