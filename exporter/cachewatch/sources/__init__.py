"""Where snapshots come from: the ``Source`` protocol, the in-process caches (``local``),
Redis (``redis``, ``redis_info``, ``census``), the targets of /probe (``probe``), and the one
``poller`` whose rounds every consumer shares."""

from __future__ import annotations

from typing import Protocol

from ..snapshot import SourceSnapshot


class Source(Protocol):
    """Anything that can be polled for a snapshot of its caches."""

    name: str

    def poll(self) -> SourceSnapshot:
        """Read the source now. Must not raise: a failure is a snapshot with ``up=False``."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...
