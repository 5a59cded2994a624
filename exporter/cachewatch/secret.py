"""Secrets (passwords) that cannot leak by accident: masked in repr, str, logs and errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

MASK = "***"
_URL_PASSWORD = re.compile(r"(?i)([a-z][a-z0-9+.\-]*://[^:@/\s]*:)[^@/\s]*@")


class Secret:
    """A string that shows as ``***`` everywhere except through ``reveal()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def mask_url_passwords(text: str) -> str:
    """``redis://user:pw@host`` becomes ``redis://user:***@host`` wherever it appears."""
    return _URL_PASSWORD.sub(rf"\1{MASK}@", text)


def redact(text: str, secrets: Iterable[Secret | str | None]) -> str:
    """``text`` with URL passwords and every given secret replaced by ``***``."""
    text = mask_url_passwords(text)
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value:
            text = text.replace(value, MASK)
    return text


def read_secret_file(path: str) -> Secret | None:
    """The first line of a password file, trimmed; None when it is empty. Raises OSError or
    UnicodeDecodeError for the caller to name its setting."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return Secret(lines[0].strip()) if lines and lines[0].strip() else None
