"""Alert statistics since the process started, per alert and cache: how often it fired, how
long it spent firing, how long it took to resolve, when it last fired and resolved.

The evaluator reports each start of a firing and each resolution; the current firing counts
into the time spent firing up to the last evaluation, so the figures move with the
evaluator's clock (tests drive it) and never go backwards. ``/alerts``, ``/report`` and
``cachewatch report`` show them; ``StatisticsCollector`` publishes them for Prometheus: the
counters to take ``rate()`` or ``increase()`` of, the time to resolve as a summary (sum /
count is the mean), and the last times as timestamps.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .. import catalog


@dataclass
class AlertRecord:
    """The history of one alert for one cache (or source)."""

    alertname: str
    cache: str
    fired: int = 0
    resolved: int = 0
    resolve_seconds: float = 0.0
    """Sum over the resolved firings of the time from firing to resolved."""
    firing_since: float | None = None
    last_fired: float | None = None
    last_resolved: float | None = None

    def firing_seconds(self, now: float) -> float:
        """Time spent firing, the current firing included up to ``now``."""
        current = 0.0 if self.firing_since is None else max(0.0, now - self.firing_since)
        return self.resolve_seconds + current

    def as_json(self, now: float) -> dict[str, Any]:
        mean = self.resolve_seconds / self.resolved if self.resolved else None
        return {
            "alertname": self.alertname,
            "cache": self.cache,
            "fired": self.fired,
            "resolved": self.resolved,
            "firing_now": self.firing_since is not None,
            "firing_seconds": round(self.firing_seconds(now), 3),
            "mean_time_to_resolve_seconds": None if mean is None else round(mean, 3),
            "last_fired": self.last_fired,
            "last_resolved": self.last_resolved,
        }


class AlertStatistics:
    """Every alert's record since start; thread-safe."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], AlertRecord] = {}
        self._now = 0.0
        self._lock = threading.Lock()

    def _record(self, alertname: str, cache: str) -> AlertRecord:
        key = (alertname, cache)
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = AlertRecord(alertname, cache)
        return record

    def fired(self, alertname: str, cache: str, now: float) -> None:
        with self._lock:
            record = self._record(alertname, cache)
            if record.firing_since is None:
                record.fired += 1
                record.firing_since = record.last_fired = now
            self._now = max(self._now, now)

    def resolved(self, alertname: str, cache: str, now: float) -> None:
        with self._lock:
            record = self._record(alertname, cache)
            if record.firing_since is not None:
                record.resolved += 1
                record.resolve_seconds += max(0.0, now - record.firing_since)
                record.firing_since = None
                record.last_resolved = now
            self._now = max(self._now, now)

    def advance(self, now: float) -> None:
        """The evaluator's time: a current firing counts up to here."""
        with self._lock:
            self._now = max(self._now, now)

    def snapshot(self) -> tuple[list[AlertRecord], float]:
        """Copies of the records by alert and cache, and the time they are counted up to."""
        with self._lock:
            copies = [dataclasses.replace(r) for r in self._records.values()]
            now = self._now
        return sorted(copies, key=lambda r: (r.alertname, r.cache)), now

    def records(self, cache: str | None = None) -> list[dict[str, Any]]:
        """The records as JSON, of one cache or of all, by alert and cache."""
        records, now = self.snapshot()
        return [r.as_json(now) for r in records if cache is None or r.cache == cache]


class StatisticsCollector(Collector):
    """The alert statistics as metrics, per alert and cache."""

    def __init__(self, statistics: AlertStatistics) -> None:
        self.statistics = statistics

    def collect(self) -> Iterator[Metric]:
        c = catalog
        fired = c.ALERT_FIRED.family()
        firing = c.ALERT_FIRING_SECONDS.family()
        resolve = c.ALERT_TIME_TO_RESOLVE.family()
        last_fired = c.ALERT_LAST_FIRED.family()
        last_resolved = c.ALERT_LAST_RESOLVED.family()
        records, now = self.statistics.snapshot()
        for record in records:
            labels = [record.alertname, record.cache]
            fired.add_metric(labels, record.fired)
            firing.add_metric(labels, record.firing_seconds(now))
            resolve.add_metric(labels, record.resolved, record.resolve_seconds)
            if record.last_fired is not None:
                last_fired.add_metric(labels, record.last_fired)
            if record.last_resolved is not None:
                last_resolved.add_metric(labels, record.last_resolved)
        yield from (fired, firing, resolve, last_fired, last_resolved)
