"""Sources produce snapshots: in-process caches (local), Redis, the process and host."""

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
