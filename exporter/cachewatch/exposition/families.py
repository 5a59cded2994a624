"""Snapshots -> Prometheus metric families, at scrape time: the catalogue's per-cache and
per-source families, the extra families sources bring (Redis's), and the build info."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar as PromExemplar
from prometheus_client.samples import Sample

from .. import catalog
from .._version import __version__
from ..instrument.table import CacheTable
from ..snapshot import CacheSnapshot, FamilyCache, HistogramSnapshot, SourceSnapshot
from ..sources.poller import Poller
from .encoders import floatToGoString

_LE: dict[float, str] = {}
"""Bucket bounds as the exposition spells them, computed once per bound."""


def _le(bound: float) -> str:
    text = _LE.get(bound)
    if text is None:
        text = _LE[bound] = floatToGoString(bound)
    return text


def _add_histogram(
    family: HistogramMetricFamily, labels: dict[str, str], histogram: HistogramSnapshot
) -> None:
    """The samples ``HistogramMetricFamily.add_metric`` would make, made directly: it builds
    each bucket's labels through a list of pairs, which was 70% of a scrape of 200
    aggregated caches (measured with bench/multiprocess.py)."""
    bucket = family.name + "_bucket"
    samples = family.samples
    exemplars = histogram.exemplars
    for bound, count in histogram.buckets:
        exemplar = exemplars.get(bound) if exemplars else None
        shown = None
        if exemplar is not None:
            shown = PromExemplar(
                {"trace_id": exemplar.trace_id}, exemplar.value, exemplar.timestamp
            )
        samples.append(Sample(bucket, {**labels, "le": _le(bound)}, count, None, shown))
    samples.append(Sample(family.name + "_count", labels, histogram.count))
    samples.append(Sample(family.name + "_sum", labels, histogram.sum))


def cache_families(caches: Iterable[CacheSnapshot]) -> list[Metric]:
    """The per-cache families of the catalogue, filled from snapshots."""
    c = catalog
    f = catalog.families(
        [
            c.CACHE_GETS, c.CACHE_PUTS, c.CACHE_REMOVALS, c.CACHE_EVICTIONS, c.CACHE_SIZE,
            c.EXPIRATIONS, c.MEMORY, c.MEMORY_LIMIT, c.MAX_ENTRIES, c.OPERATION_DURATION,
            c.ERRORS, c.CLEANUPS, c.CLEANUP_REMOVED, c.CLEANUP_DURATION, c.LAST_CLEANUP,
        ]
    )  # fmt: skip
    for cache in caches:
        name = [cache.name]
        if cache.counts_known:
            f[c.CACHE_GETS.name].add_metric([cache.name, "hit"], cache.hits)
            f[c.CACHE_GETS.name].add_metric([cache.name, "miss"], cache.misses)
            f[c.CACHE_PUTS.name].add_metric(name, cache.puts)
            f[c.CACHE_REMOVALS.name].add_metric(name, cache.removals)
            f[c.CACHE_EVICTIONS.name].add_metric(name, cache.evictions)
            f[c.EXPIRATIONS.name].add_metric(name, cache.expirations)
        if cache.size is not None:
            f[c.CACHE_SIZE.name].add_metric(name, cache.size)
        if cache.memory_bytes is not None:
            f[c.MEMORY.name].add_metric(name, cache.memory_bytes)
        if cache.memory_limit_bytes is not None:
            f[c.MEMORY_LIMIT.name].add_metric(name, cache.memory_limit_bytes)
        if cache.max_entries is not None:
            f[c.MAX_ENTRIES.name].add_metric(name, cache.max_entries)
        for operation, histogram in sorted(cache.latency.items()):
            family = f[c.OPERATION_DURATION.name]
            assert isinstance(family, HistogramMetricFamily)
            _add_histogram(family, {"cache": cache.name, "operation": operation}, histogram)
        for (operation, error), count in sorted(cache.errors.items()):
            f[c.ERRORS.name].add_metric([cache.name, operation, error], count)
        for trigger, count in sorted(cache.cleanups.items()):
            f[c.CLEANUPS.name].add_metric([cache.name, trigger], count)
        if cache.counts_known:
            f[c.CLEANUP_REMOVED.name].add_metric(name, cache.cleanup_removed)
        if cache.cleanup_duration is not None:
            family = f[c.CLEANUP_DURATION.name]
            assert isinstance(family, HistogramMetricFamily)
            _add_histogram(family, {"cache": cache.name}, cache.cleanup_duration)
        if cache.last_cleanup_timestamp is not None:
            f[c.LAST_CLEANUP.name].add_metric(name, cache.last_cleanup_timestamp)
    return list(f.values())


def source_families(snapshots: Iterable[SourceSnapshot], poller: Poller) -> list[Metric]:
    """Whether each source answered, how long it took, and how often it failed."""
    f = catalog.families([catalog.SOURCE_UP, catalog.SOURCE_POLL_DURATION, catalog.SOURCE_ERRORS])
    for snapshot in snapshots:
        f[catalog.SOURCE_UP.name].add_metric([snapshot.source], 1 if snapshot.up else 0)
        duration = f[catalog.SOURCE_POLL_DURATION.name]
        duration.add_metric([snapshot.source], snapshot.duration_seconds)
    for source, tally in poller.errors.items():
        f[catalog.SOURCE_ERRORS.name].add_metric([source], tally.value)
    return list(f.values())


class SnapshotCollector(Collector):
    """Polls on each scrape and yields the catalogue's cache and source families."""

    def __init__(self, poller: Poller, caches: CacheTable | None = None) -> None:
        self.poller = poller
        self.caches = caches
        self._cache_families = FamilyCache()
        """The per-cache families while no cache changed (a Redis census moves once per
        census step; idle in-process caches not at all). Snapshots compare exactly: counts
        are ints, and no source makes a negative zero of a size, a sum or a time."""
        self._tail = FamilyCache()

    def collect(self) -> Iterator[Metric]:
        snapshots = self.poller.poll()
        caches = tuple(cache for snapshot in snapshots for cache in snapshot.caches)
        yield from self._cache_families.get(caches, lambda: cache_families(caches))
        yield from source_families(snapshots, self.poller)
        for snapshot in snapshots:
            yield from snapshot.extra_families
        dropped = None if self.caches is None else self.caches.dropped.value
        yield from self._tail.get(dropped, lambda: _tail_families(dropped))


def _tail_families(dropped: int | None) -> Iterator[Metric]:
    """Caches dropped beyond the table's cap (when this exporter has a table) and the build."""
    if dropped is not None:
        family = catalog.CACHES_DROPPED.family()
        family.add_metric([], dropped)
        yield family
    build = catalog.BUILD_INFO.family()
    build.add_metric([__version__], 1)
    yield build
