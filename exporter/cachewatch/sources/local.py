"""The in-process caches of this application, read from the cache table."""

from __future__ import annotations

import time

from ..instrument.table import CacheTable
from ..snapshot import SourceSnapshot


class LocalSource:
    """Snapshots every recorder in a table; cheap enough to run on every scrape."""

    def __init__(self, table: CacheTable, name: str = "local") -> None:
        self.name = name
        self.table = table

    def poll(self) -> SourceSnapshot:
        start = time.perf_counter()
        caches = [recorder.snapshot() for recorder in self.table.recorders()]
        return SourceSnapshot(
            source=self.name,
            up=True,
            timestamp=time.time(),
            duration_seconds=time.perf_counter() - start,
            caches=caches,
        )

    def close(self) -> None:
        return None
