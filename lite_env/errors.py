"""The one exception type for user errors: a message, and a hint on what to do about it."""

from __future__ import annotations


class LiteEnvError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    Args:
        message: what went wrong, naming the file (and line) where one is at fault.
        hint: what the user can do about it, or extra detail such as a solver explanation.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def log_tail(text: str, lines: int = 40) -> str:
    """The last `lines` lines of a tool's output, for an error's hint."""
    return "\n".join(text.strip().splitlines()[-lines:])
