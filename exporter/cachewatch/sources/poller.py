"""The poller: the one place where sources are polled, so that every consumer of a round of
snapshots (the scrape, the analysis's sampler, ``/health``) shares it.

A scrape asks for a fresh round (``poll``); concurrent callers share the round in flight
(single flight), so that scrapes arriving together cost each source one poll. The sampler
asks for a round no older than its interval (``recent``) and so reuses the one the last
scrape made: with Prometheus scraping as often as the sampler samples, each source is polled
once per interval, not twice. ``/health`` reads the last round (``latest``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from ..instrument.forks import at_fork
from ..instrument.recorder import Tally
from ..singleflight import SingleFlight
from ..snapshot import SourceSnapshot
from ..tracing import spans
from ..tracing.attributes import ERROR_TYPE, SOURCE_UP
from . import Source

log = logging.getLogger(__name__)

WAIT_SECONDS = 60.0
"""Longest wait for another caller's round; each source bounds its own poll far below."""


class Poller:
    """Sources in, rounds of snapshots out; ``poll`` never raises."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = list(sources)
        self.errors: dict[str, Tally] = {source.name: Tally() for source in self.sources}
        self.rounds = 0
        """Rounds polled (not shared), for tests and benchmarks."""
        self._latest: dict[str, SourceSnapshot] = {}
        self._latest_at: float | None = None
        self._lock = threading.Lock()
        self._flight: SingleFlight[list[SourceSnapshot]] = SingleFlight()
        at_fork(after_in_child=self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        """A forked child inherits the round a thread of the parent had in flight, but not
        the thread that would finish it: forget it, or the child's rounds would wait for it."""
        self._lock = threading.Lock()
        self._flight = SingleFlight()

    def poll(self) -> list[SourceSnapshot]:
        """A fresh round: every source polled now, or the round in flight when one is."""
        try:
            return self._flight.do("round", self._round, timeout=WAIT_SECONDS)
        except TimeoutError:
            return [self._down(source.name, "timed out waiting for the poll in flight")
                    for source in self.sources]  # fmt: skip

    def recent(self, max_age: float) -> tuple[list[SourceSnapshot], float]:
        """(the last round, its age in seconds) when it is at most ``max_age`` old and covers
        every source; otherwise a fresh round. The age counts from the start of the round, for
        a fresh one too (its poll took time), so that a round is dated the same whether it
        was fresh or reused, and dates never go backwards."""
        with self._lock:
            at = self._latest_at
            latest = list(self._latest.values())
        if at is not None and len(latest) == len(self.sources):
            age = time.time() - at
            if 0 <= age <= max_age:
                return latest, age
        snapshots = self.poll()
        with self._lock:
            at = self._latest_at
        return snapshots, (0.0 if at is None else max(0.0, time.time() - at))

    def latest(self) -> list[SourceSnapshot]:
        """The last snapshot of every source that was polled at least once."""
        with self._lock:
            return list(self._latest.values())

    def _round(self) -> list[SourceSnapshot]:
        started_at = time.time()
        snapshots = [self._poll_one(source) for source in self.sources]
        with self._lock:
            for snapshot in snapshots:
                self._latest[snapshot.source] = snapshot
            self._latest_at = started_at
            self.rounds += 1
        return snapshots

    def _poll_one(self, source: Source) -> SourceSnapshot:
        """One source's snapshot; a source that raises is reported down, never propagated."""
        span = spans.trace_poll(source.name) if spans.TRACING else None
        start = time.perf_counter()
        try:
            snapshot = source.poll()
        except Exception as exc:  # noqa: BLE001 - a broken source must not break a scrape
            log.warning("source %s failed: %s", source.name, type(exc).__name__)
            snapshot = self._down(source.name, type(exc).__name__, time.perf_counter() - start)
        if not snapshot.up:
            self.errors[source.name].inc()
        if span is not None:
            span.set(SOURCE_UP, snapshot.up)
            if snapshot.error:
                span.set(ERROR_TYPE, snapshot.error)
                span.fail(snapshot.error)
            span.end()
        return snapshot

    @staticmethod
    def _down(name: str, error: str, duration: float = 0.0) -> SourceSnapshot:
        return SourceSnapshot(
            source=name, up=False, timestamp=time.time(), duration_seconds=duration, error=error
        )

    def close(self) -> None:
        for source in self.sources:
            try:
                source.close()
            except Exception:
                log.debug("closing source %s failed", source.name, exc_info=True)
