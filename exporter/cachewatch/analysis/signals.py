"""Per-cache signals from successive snapshots: ratios from counter deltas, fitted trends.

One ``CacheTracker`` per logical cache turns the cumulative counters of its snapshots into
what alerts, gauges and the report read: hit ratio, request rate, error and eviction ratios
and p99 latency over the rate window; hit ratio over the trend window; least-squares slopes
of memory, entries and hit ratio over the trend window; the memory-full forecast; and the
cleanup rhythm (runs per hour, time since the last run, the usual interval between runs).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .. import catalog as c
from ..snapshot import CacheSnapshot, HistogramSnapshot
from .trends import CounterWindow, SlidingFit

COUNTERS = (
    "hits", "misses", "puts", "removals", "evictions", "expirations", "errors", "cleanups",
    "cleanup_removed",
)  # fmt: skip
_LATENCY = "latency"
CLEANUP_INTERVALS_KEPT = 16


@dataclass(frozen=True)
class CacheSignals:
    """One cache at one sample: every derived value, None where it is not known yet."""

    cache: str
    source: str
    timestamp: float
    snapshot: CacheSnapshot
    request_rate: float | None = None
    hit_ratio: float | None = None
    trend_hit_ratio: float | None = None
    error_ratio: float | None = None
    eviction_ratio: float | None = None
    latency_p99_seconds: float | None = None
    latency_p99_by_operation: dict[str, float] = field(default_factory=dict)
    memory_growth_bytes_per_second: float | None = None
    size_growth_per_second: float | None = None
    hit_ratio_change_per_hour: float | None = None
    memory_full_seconds: float | None = None
    memory_limit_ratio: float | None = None
    cleanups_per_hour: float | None = None
    seconds_since_cleanup: float | None = None
    usual_cleanup_interval_seconds: float | None = None
    cleanup_overdue_factor: float | None = None
    window_increase: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    """Per-second rates of the counters over the rate window (``COUNTERS`` and ``gets``);
    empty until the window has two samples, or when the source does not count traffic."""

    def signal(self, name: str) -> float | None:
        """The value an alert definition's ``signal`` names: a signal, or a catalogued metric
        (``catalog.ALERTABLE``) as the generated rules read it."""
        if name in METRIC_VALUES:
            return METRIC_VALUES[name](self)
        if name == "memory_bytes":
            return self.snapshot.memory_bytes
        value = getattr(self, name, None)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _rate(counter: str) -> Callable[[CacheSignals], float | None]:
    return lambda s: s.rates.get(counter)


METRIC_VALUES: dict[str, Callable[[CacheSignals], float | None]] = {
    c.CACHE_GETS.name: _rate("gets"),
    c.CACHE_PUTS.name: _rate("puts"),
    c.CACHE_REMOVALS.name: _rate("removals"),
    c.CACHE_EVICTIONS.name: _rate("evictions"),
    c.EXPIRATIONS.name: _rate("expirations"),
    c.ERRORS.name: _rate("errors"),
    c.CLEANUPS.name: _rate("cleanups"),
    c.CLEANUP_REMOVED.name: _rate("cleanup_removed"),
    c.CACHE_SIZE.name: lambda s: s.snapshot.size,
    c.MEMORY.name: lambda s: s.snapshot.memory_bytes,
    c.MEMORY_LIMIT.name: lambda s: s.snapshot.memory_limit_bytes,
    c.MAX_ENTRIES.name: lambda s: s.snapshot.max_entries,
    c.LAST_CLEANUP.name: lambda s: s.snapshot.last_cleanup_timestamp,
    c.HIT_RATIO.name: lambda s: s.trend_hit_ratio,
    c.MEMORY_GROWTH.name: lambda s: s.memory_growth_bytes_per_second,
    c.SIZE_GROWTH.name: lambda s: s.size_growth_per_second,
    c.HIT_RATIO_CHANGE.name: lambda s: s.hit_ratio_change_per_hour,
    c.MEMORY_FULL.name: lambda s: s.memory_full_seconds,
    c.CLEANUPS_PER_HOUR.name: lambda s: s.cleanups_per_hour if s.snapshot.cleanups else None,
}
"""How the exporter reads each metric a custom alert may name: what /metrics publishes for
the cache (a counter as its rate over the rate window)."""


def _counters(snapshot: CacheSnapshot) -> dict[str, float]:
    values: dict[str, float] = {
        "hits": snapshot.hits,
        "misses": snapshot.misses,
        "puts": snapshot.puts,
        "removals": snapshot.removals,
        "evictions": snapshot.evictions,
        "expirations": snapshot.expirations,
        "errors": snapshot.error_count,
        "cleanups": sum(snapshot.cleanups.values()),
        "cleanup_removed": snapshot.cleanup_removed,
    }
    for operation, histogram in snapshot.latency.items():
        for bound, count in histogram.buckets:
            values[f"{_LATENCY}\0{operation}\0{bound!r}"] = count
    return values


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _latency_deltas(increase: dict[str, float]) -> dict[str, HistogramSnapshot]:
    """Per-operation histograms of the observations made within the window."""
    buckets: dict[str, list[tuple[float, int]]] = {}
    for key, value in increase.items():
        if key.startswith(_LATENCY + "\0"):
            _, operation, bound = key.split("\0")
            buckets.setdefault(operation, []).append((float(bound), int(value)))
    histograms = {}
    for operation, pairs in buckets.items():
        pairs.sort()
        count = pairs[-1][1] if pairs else 0
        histograms[operation] = HistogramSnapshot(tuple(pairs), 0.0, count)
    return histograms


class CacheTracker:
    """The sampled history of one cache."""

    def __init__(self, name: str, trend_window: float, rate_window: float, capacity: int) -> None:
        self.name = name
        self.memory_fit = SlidingFit(trend_window, capacity)
        self.size_fit = SlidingFit(trend_window, capacity)
        self.ratio_fit = SlidingFit(trend_window, capacity)
        self.recent = CounterWindow(rate_window)
        self.long = CounterWindow(trend_window)
        self.last_seen = 0.0
        self._cleanups: float | None = None
        self._last_cleanup: float | None = None
        self._intervals: deque[float] = deque(maxlen=CLEANUP_INTERVALS_KEPT)

    def update(self, snapshot: CacheSnapshot, now: float) -> CacheSignals:
        self.last_seen = now
        counters = _counters(snapshot)
        self.recent.add(now, counters)
        self.long.add(now, counters)
        recent = self.recent.delta()
        long = self.long.delta()

        request_rate = hit_ratio = error_ratio = eviction_ratio = None
        p99: float | None = None
        p99_by_operation: dict[str, float] = {}
        rates: dict[str, float] = {}
        if recent is not None:
            span, inc = recent
            gets = inc["hits"] + inc["misses"]
            if snapshot.counts_known:
                rates = {name: inc[name] / span for name in COUNTERS}
                rates["gets"] = gets / span
            request_rate = gets / span
            hit_ratio = _ratio(inc["hits"], gets)
            operations = gets + inc["puts"] + inc["removals"]
            error_ratio = _ratio(inc["errors"], operations)
            if error_ratio is None and inc["errors"] > 0:
                error_ratio = 1.0
            eviction_ratio = _ratio(inc["evictions"], inc["puts"])
            for operation, histogram in _latency_deltas(inc).items():
                quantile = histogram.quantile(0.99)
                if quantile is not None:
                    p99_by_operation[operation] = quantile
            if p99_by_operation:
                p99 = max(p99_by_operation.values())
        trend_hit_ratio = cleanups_per_hour = None
        window_increase: dict[str, float] = {}
        if long is not None:
            span, inc = long
            trend_hit_ratio = _ratio(inc["hits"], inc["hits"] + inc["misses"])
            cleanups_per_hour = inc["cleanups"] / span * 3600.0
            window_increase = {k: v for k, v in inc.items() if k in COUNTERS}

        if snapshot.memory_bytes is not None:
            self.memory_fit.add(now, snapshot.memory_bytes)
        if snapshot.size is not None:
            self.size_fit.add(now, snapshot.size)
        if hit_ratio is not None:
            self.ratio_fit.add(now, hit_ratio)
        for fit in (self.memory_fit, self.size_fit, self.ratio_fit):
            fit.expire(now)

        memory_slope = self.memory_fit.slope()
        ratio_slope = self.ratio_fit.slope()
        limit = snapshot.memory_limit_bytes
        memory_full = limit_ratio = None
        if limit and snapshot.memory_bytes is not None:
            limit_ratio = snapshot.memory_bytes / limit
            memory_line = self.memory_fit.fit()
            if memory_line is not None:
                memory_full = memory_line.time_to_rise_to(limit, snapshot.memory_bytes)

        since, usual, overdue = self._cleanup_rhythm(snapshot, counters["cleanups"], now)
        return CacheSignals(
            cache=snapshot.name,
            source=snapshot.source,
            timestamp=now,
            snapshot=snapshot,
            request_rate=request_rate,
            hit_ratio=hit_ratio,
            trend_hit_ratio=trend_hit_ratio,
            error_ratio=error_ratio,
            eviction_ratio=eviction_ratio,
            latency_p99_seconds=p99,
            latency_p99_by_operation=p99_by_operation,
            memory_growth_bytes_per_second=memory_slope,
            size_growth_per_second=self.size_fit.slope(),
            hit_ratio_change_per_hour=None if ratio_slope is None else ratio_slope * 3600.0,
            memory_full_seconds=memory_full,
            memory_limit_ratio=limit_ratio,
            cleanups_per_hour=cleanups_per_hour,
            seconds_since_cleanup=since,
            usual_cleanup_interval_seconds=usual,
            cleanup_overdue_factor=overdue,
            window_increase=window_increase,
            rates=rates,
        )

    def _cleanup_rhythm(
        self, snapshot: CacheSnapshot, count: float, now: float
    ) -> tuple[float | None, float | None, float | None]:
        """(seconds since the last cleanup, usual interval, how many usual intervals overdue).

        The usual interval is the median of recently observed intervals between runs; it is
        kept while cleanups stop, which is exactly when it is needed.
        """
        last = snapshot.last_cleanup_timestamp
        if (
            self._cleanups is not None
            and count > self._cleanups
            and last is not None
            and self._last_cleanup is not None
            and last > self._last_cleanup
        ):
            self._intervals.append((last - self._last_cleanup) / (count - self._cleanups))
        if count < (self._cleanups or 0):
            self._intervals.clear()
        self._cleanups, self._last_cleanup = count, last
        if last is None:
            return None, None, None
        since = max(0.0, now - last)
        if not self._intervals:
            return since, None, None
        usual = median(self._intervals)
        return since, usual, (since / usual if usual > 0 else None)


def median(values: Iterable[float]) -> float:
    """``statistics.median``, the same arithmetic: importing statistics (decimal, fractions,
    random) cost ~0.5 MiB of the exporter's resident memory for this one call."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
