"""Many processes' files -> one set of cache snapshots, with one rule per metric (as
prometheus_client's ``multiprocess_mode`` gives one per gauge; docs/multiprocess.md has the
table):

- ``sum`` over every process ever seen (live, dead, archived), so that a recycled worker's
  counts stay and no counter goes backwards: the counters (gets, puts, removals, evictions,
  expirations, errors, cleanups, cleanup removed entries) and the histograms (operation and
  cleanup durations: buckets, sum, count);
- ``livesum``, over live processes only (each has its own copy of the cache): entries,
  memory, memory limit, max entries;
- ``max`` over every process: the last cleanup time; the latest exemplar per bucket;
- the cap on cache names applies to the aggregate: the ``max_caches`` names first seen
  earliest keep their series, later names are folded into ``other`` (stable from scrape to
  scrape, since no name is ever forgotten).

Files with the same layout (identical workers) are summed as flat arrays with one ``zip``,
and only then merged by name.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..catalog import OTHER
from ..instrument import procfile
from ..instrument.procfile import CacheLayout, ProcessFile
from ..snapshot import CacheSnapshot, Exemplar

NO_GAUGES = (None,) * procfile.LIVE_GAUGES


def _add(into: list[float], values: Sequence[float], start: int) -> None:
    for i in range(len(into)):
        into[i] += values[start + i]


@dataclass
class _Cache:
    """One cache's numbers summed so far."""

    first_seen: float
    base: list[float] = field(default_factory=lambda: [0.0] * len(procfile.BASE_COUNTERS))
    latency: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[tuple[str, str], float] = field(default_factory=dict)
    cleanups: dict[str, float] = field(default_factory=dict)
    cleanup: list[float] | None = None
    gauges: list[float | None] = field(default_factory=lambda: list(NO_GAUGES))
    last_cleanup: float | None = None
    exemplars: dict[tuple[str, float], Exemplar] = field(default_factory=dict)

    def add_counters(self, layout: CacheLayout, counters: Sequence[float]) -> None:
        self.first_seen = min(self.first_seen, layout.first_seen)
        at = layout.offset
        _add(self.base, counters, at)
        at += len(self.base)
        for operation in layout.operations:
            found = self.latency.setdefault(operation, [0.0] * procfile.LATENCY_WIDTH)
            _add(found, counters, at)
            at += procfile.LATENCY_WIDTH
        for key in layout.errors:
            self.errors[key] = self.errors.get(key, 0.0) + counters[at]
            at += 1
        for trigger in layout.triggers:
            self.cleanups[trigger] = self.cleanups.get(trigger, 0.0) + counters[at]
            at += 1
        if layout.cleanup_histogram:
            if self.cleanup is None:
                self.cleanup = [0.0] * procfile.CLEANUP_WIDTH
            _add(self.cleanup, counters, at)

    def add_gauges(self, live: Sequence[float | None], last_cleanup: float | None) -> None:
        for i, value in enumerate(live):
            if value is not None:
                known = self.gauges[i]
                self.gauges[i] = value if known is None else known + value
        if last_cleanup is not None:
            self.last_cleanup = max(last_cleanup, self.last_cleanup or last_cleanup)

    def add_exemplars(self, found: dict[tuple[str, float], Exemplar]) -> None:
        for key, exemplar in found.items():
            known = self.exemplars.get(key)
            if known is None or exemplar.timestamp > known.timestamp:
                self.exemplars[key] = exemplar

    def merge(self, other: _Cache) -> None:
        """Fold ``other`` in (a cache beyond the cap into ``other``)."""
        self.first_seen = min(self.first_seen, other.first_seen)
        _add(self.base, other.base, 0)
        for operation, values in other.latency.items():
            _add(self.latency.setdefault(operation, [0.0] * len(values)), values, 0)
        for key, count in other.errors.items():
            self.errors[key] = self.errors.get(key, 0.0) + count
        for trigger, count in other.cleanups.items():
            self.cleanups[trigger] = self.cleanups.get(trigger, 0.0) + count
        if other.cleanup is not None:
            if self.cleanup is None:
                self.cleanup = [0.0] * len(other.cleanup)
            _add(self.cleanup, other.cleanup, 0)
        self.add_gauges(other.gauges, other.last_cleanup)
        self.add_exemplars(other.exemplars)

    def snapshot(self, name: str, source: str) -> CacheSnapshot:
        hits, misses, puts, removals, evictions, expirations, removed = (int(v) for v in self.base)
        latency = {}
        for operation, values in sorted(self.latency.items()):
            histogram = procfile.histogram_at(values, 0, procfile.LATENCY_BOUNDS)
            exemplars = {b: ex for (op, b), ex in self.exemplars.items() if op == operation}
            if exemplars:
                histogram = dataclasses.replace(histogram, exemplars=exemplars)
            latency[operation] = histogram
        size, memory, limit, max_entries = self.gauges
        return CacheSnapshot(
            name=name,
            source=source,
            hits=hits,
            misses=misses,
            puts=puts,
            removals=removals,
            evictions=evictions,
            expirations=expirations,
            size=None if size is None else int(size),
            memory_bytes=memory,
            memory_limit_bytes=limit,
            max_entries=None if max_entries is None else int(max_entries),
            errors={key: int(count) for key, count in sorted(self.errors.items())},
            cleanups={key: int(count) for key, count in sorted(self.cleanups.items())},
            cleanup_removed=removed,
            cleanup_duration=(
                procfile.histogram_at(self.cleanup, 0, procfile.CLEANUP_BOUNDS)
                if self.cleanup is not None
                else None
            ),
            last_cleanup_timestamp=self.last_cleanup,
            latency=latency,
        )


def _known_sums(columns: Iterable[tuple[float, ...]]) -> list[float | None]:
    """Per column, the sum of the known values (None when none is): summed in C, and only
    the columns that come out NaN (an unknown somewhere) summed again without them."""
    sums: list[float | None] = []
    for column in columns:
        total = sum(column)
        if total != total:  # NaN
            known = [v for v in column if v == v]
            sums.append(math.fsum(known) if known else None)
        else:
            sums.append(total)
    return sums


def _known_maxes(columns: Iterable[tuple[float, ...]]) -> list[float | None]:
    maxes: list[float | None] = []
    for column in columns:
        if sum(column) == sum(column):  # no NaN: max is exact
            maxes.append(max(column))
        else:
            known = [v for v in column if v == v]
            maxes.append(max(known) if known else None)
    return maxes


@dataclass(frozen=True)
class Aggregate:
    caches: list[CacheSnapshot]
    first_seen: dict[str, float]
    dropped: int
    """Registrations folded into ``other`` by the processes' own tables..."""
    folded: int
    """...and names folded into ``other`` by the cap on the aggregate."""


def aggregate(files: Sequence[tuple[ProcessFile, bool]], max_caches: int, source: str) -> Aggregate:
    """The snapshots of all ``files`` (each with whether its process is live)."""
    groups: dict[int, list[tuple[ProcessFile, bool]]] = {}
    for entry in files:
        groups.setdefault(id(entry[0].layout), []).append(entry)
    caches: dict[str, _Cache] = {}
    for group in groups.values():
        _add_group(caches, group)
    for file, _live in files:
        for name, rows in file.meta.exemplars.items():
            if name in caches and isinstance(rows, list):
                caches[name].add_exemplars(procfile.exemplars_of(rows))
    folded = _cap(caches, max_caches)
    return Aggregate(
        caches=[cache.snapshot(name, source) for name, cache in caches.items()],
        first_seen={name: cache.first_seen for name, cache in caches.items()},
        dropped=sum(file.meta.dropped for file, _live in files),
        folded=folded,
    )


def _add_group(caches: dict[str, _Cache], group: Sequence[tuple[ProcessFile, bool]]) -> None:
    layout = group[0][0].layout
    if len(group) == 1:
        counters: Sequence[float] = group[0][0].counters
    else:
        counters = list(map(sum, zip(*(file.counters for file, _ in group), strict=True)))
    live = [file.gauges for file, is_live in group if is_live]
    live_sums = _known_sums(zip(*live, strict=True)) if live else None
    width = len(procfile.GAUGES)
    last = (file.gauges[width - 1 :: width] for file, _ in group)
    cleanup_times = _known_maxes(zip(*last, strict=True))
    for i, cache_layout in enumerate(layout.caches):
        cache = caches.get(cache_layout.name)
        if cache is None:
            cache = caches[cache_layout.name] = _Cache(cache_layout.first_seen)
        cache.add_counters(cache_layout, counters)
        start = i * width
        gauges = live_sums[start : start + procfile.LIVE_GAUGES] if live_sums else NO_GAUGES
        cache.add_gauges(gauges, cleanup_times[i] if cleanup_times else None)


def _cap(caches: dict[str, _Cache], max_caches: int) -> int:
    """Fold the names beyond the ``max_caches`` first seen into ``other``; how many were."""
    ranked = sorted((cache.first_seen, name) for name, cache in caches.items() if name != OTHER)
    beyond = [name for _first, name in ranked[max_caches:]]
    if not beyond:
        return 0
    other = caches.pop(OTHER, None)
    for name in beyond:
        folded = caches.pop(name)
        if other is None:
            other = folded
        else:
            other.merge(folded)
    assert other is not None
    caches[OTHER] = other
    return len(beyond)
