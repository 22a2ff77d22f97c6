"""User-facing errors.

Anything a user can cause (a bad recipe, a missing file, an unreadable
annotation file, a refused publish) raises :class:`UserError`. The CLI prints
its message on one line and exits with status 2; no traceback is shown.
"""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input; printed as one line by the CLI."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # always a single line
        return " ".join(self.message.split("\n"))


class BuildFailed(UserError):
    """A build stopped on purpose (e.g. the bad-record threshold was passed)."""

    exit_code = 3
