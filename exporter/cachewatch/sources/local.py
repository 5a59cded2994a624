"""The in-process caches of this application, read from the cache registry."""

from __future__ import annotations

import time

from ..registry import CacheRegistry
from ..snapshot import SourceSnapshot


class LocalSource:
    """Snapshots every recorder in a registry; cheap enough to run on every scrape."""

    def __init__(self, registry: CacheRegistry, name: str = "local") -> None:
        self.name = name
        self.registry = registry

    def poll(self) -> SourceSnapshot:
        start = time.perf_counter()
        caches = [recorder.snapshot() for recorder in self.registry.recorders()]
        return SourceSnapshot(
            source=self.name,
            up=True,
            timestamp=time.time(),
            duration_seconds=time.perf_counter() - start,
            caches=caches,
        )

    def close(self) -> None:
        return None
