"""Polls the sources and keeps their latest snapshots for exposition and analysis."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from . import telemetry
from .recorder import Tally
from .snapshot import SourceSnapshot
from .sources import Source

log = logging.getLogger(__name__)


class Hub:
    """The meeting point of the one-way flow: sources in, snapshots out."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = list(sources)
        self.errors: dict[str, Tally] = {source.name: Tally() for source in self.sources}
        self._latest: dict[str, SourceSnapshot] = {}
        self._lock = threading.Lock()

    def poll(self) -> list[SourceSnapshot]:
        """Poll every source now; a source that raises is reported down, never propagated."""
        snapshots = []
        for source in self.sources:
            span = telemetry.trace_poll(source.name) if telemetry.TRACING else None
            start = time.perf_counter()
            try:
                snapshot = source.poll()
            except Exception as exc:  # noqa: BLE001 - a broken source must not break a scrape
                log.warning("source %s failed: %s", source.name, type(exc).__name__)
                snapshot = SourceSnapshot(
                    source=source.name,
                    up=False,
                    timestamp=time.time(),
                    duration_seconds=time.perf_counter() - start,
                    error=type(exc).__name__,
                )
            if not snapshot.up:
                self.errors[source.name].inc()
            if span is not None:
                span.set(telemetry.SOURCE_UP, snapshot.up)
                if snapshot.error:
                    span.set(telemetry.ERROR_TYPE, snapshot.error)
                    span.fail(snapshot.error)
                span.end()
            snapshots.append(snapshot)
        with self._lock:
            for snapshot in snapshots:
                self._latest[snapshot.source] = snapshot
        return snapshots

    def latest(self) -> list[SourceSnapshot]:
        """The last snapshot of every source that was polled at least once."""
        with self._lock:
            return list(self._latest.values())

    def close(self) -> None:
        for source in self.sources:
            try:
                source.close()
            except Exception:
                log.debug("closing source %s failed", source.name, exc_info=True)
