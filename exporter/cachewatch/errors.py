"""Errors that end a command with one line on stderr instead of a traceback."""


class UserFacingError(RuntimeError):
    """A failure to report in one line (unreachable service, port in use): exit status 1."""
