"""User-facing errors: one line that names the problem and the fix.

Every error a user can cause (a missing file, a wrong shape, an unreadable format) is raised as a
`GesticulatorError` subclass; the CLI prints its message on one line and exits non-zero, with the
traceback only under `--debug`.
"""

from __future__ import annotations


class GesticulatorError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""

    exit_code = 1

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} — {fix}" if fix else problem)


class InputFileError(GesticulatorError):
    """A file is missing, unreadable or in the wrong format."""


class MotionError(GesticulatorError):
    """Motion data with the wrong shape or values."""


class ExportError(GesticulatorError):
    """An output could not be written."""


class MissingDependencyError(GesticulatorError):
    """An optional component is not installed or has no local model."""
