"""The sweep's progress line: points done / total, running, failed.

On a terminal only, quiet in CI or when piped: the same rule as
:class:`certify.progress.Progress`, whose decision (``enabled``) and stream it uses.
"""

from __future__ import annotations

import time

from ..progress import Progress

WIDTH = 100


class PointsLine:
    """One updating line ``[sweep] D/N points done, R running, F failed``."""

    def __init__(self, enabled: bool | None = None, stream=None):
        base = Progress(1, enabled=enabled, stream=stream)
        self.enabled, self.stream = base.enabled, base.stream
        self._last = 0.0

    def points(self, done: int, total: int, running: int, failed: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        line = f"[sweep] {done}/{total} points done, {running} running, {failed} failed"
        self.stream.write("\r" + line[:WIDTH].ljust(WIDTH))
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * WIDTH + "\r")
            self.stream.flush()
