"""/proc files read on every scrape, through descriptors kept open: opening one from Python
costs ~10 us (two objects and a path walk), reading it again with ``pread`` 2-7 us, and a
scrape reads four of them (the process's stat, limits and statm, the host's meminfo), some
twice. A forked child opens its own: /proc/self named the parent when it was opened."""

from __future__ import annotations

import contextlib
import os

_open_files: dict[str, int] = {}
_CHUNK = 16384


def _forget_files() -> None:
    for fd in _open_files.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _open_files.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_files)


def read(path: str) -> bytes:
    """The whole of a /proc file as it is now (opened on first use; raises OSError)."""
    fd = _open_files.get(path)
    if fd is None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        kept = _open_files.setdefault(path, fd)
        if kept != fd:  # another thread opened it first
            os.close(fd)
            fd = kept
    chunks = [os.pread(fd, _CHUNK, 0)]
    while len(chunks[-1]) == _CHUNK:  # never for these files, but read on rather than cut
        chunks.append(os.pread(fd, _CHUNK, _CHUNK * len(chunks)))
    return b"".join(chunks)


def kept_descriptor(path: str) -> int | None:
    """The descriptor kept for ``path``, if it was read (for tests)."""
    return _open_files.get(path)
