"""User-facing errors.

A :class:`UserError` is a mistake in the user's input (a case file, a data
file, a command-line argument), not a bug.  Its message is a single line that
names the file and the offending key or argument, e.g.::

    cases/x.toml: [model].width: must be even, got 7

The command line prints it and exits with status 2, without a traceback.
"""

from __future__ import annotations

__all__ = ["UserError", "FieldError"]


class UserError(Exception):
    """A user mistake.  ``str(err)`` is one line: ``FILE: [table].key: what is wrong``."""

    def __init__(self, message: str):
        # a user mistake must read as ONE line, whatever text it quotes
        one_line = " ".join(str(message).replace("\r", "\n").split("\n")).strip()
        super().__init__(one_line)

    @property
    def message(self) -> str:
        return self.args[0]


class FieldError(Exception):
    """A bad value found while building something a case file describes.

    Raised by the data, target and init builders, which do not know the case
    file's path; :func:`certify.cases.case.load_case` turns it into a
    :class:`UserError` ``f"{path}: [{table}].{key}: {message}"``.
    """

    def __init__(self, table: str, key: str, message: str):
        super().__init__(f"[{table}].{key}: {message}")
        self.table = table
        self.key = key
        self.message = message
