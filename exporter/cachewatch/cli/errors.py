"""Errors that end a command with one line on stderr instead of a traceback."""

from __future__ import annotations


class UserFacingError(RuntimeError):
    """A failure to report in one line (unreachable service, port in use): exit status 1."""


_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


def one_line(text: str) -> str:
    """``text`` with every character that could start a new line escaped: an error message
    quoting a user's value (a path, an argument) stays one line whatever the value holds."""
    return text.translate(_LINE_BREAKS)
