"""Immutable snapshots: what sources hand to exposition and analysis.

Data flows one way: sources (instrumented caches, Redis, the process) produce snapshots;
the collector turns them into metric families and the analysis samples them. Nothing
downstream reaches back into a source.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric


@dataclass(frozen=True)
class Exemplar:
    """A trace that produced one observation, so a dashboard can jump to it."""

    trace_id: str
    value: float
    timestamp: float


@dataclass(frozen=True)
class HistogramSnapshot:
    """Cumulative bucket counts (``le`` ascending, ending with +Inf), sum and count."""

    buckets: tuple[tuple[float, int], ...]
    sum: float
    count: int
    exemplars: Mapping[float, Exemplar] = field(default_factory=dict)

    def quantile(self, q: float) -> float | None:
        """Estimate a quantile the way PromQL's histogram_quantile does (linear in a bucket)."""
        if self.count == 0:
            return None
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0
        for upper_bound, cumulative in self.buckets:
            if cumulative >= rank:
                if upper_bound == float("inf"):
                    return lower_bound
                in_bucket = cumulative - lower_count
                if in_bucket == 0:
                    return upper_bound
                return lower_bound + (upper_bound - lower_bound) * (rank - lower_count) / in_bucket
            lower_bound, lower_count = upper_bound, cumulative
        return lower_bound


@dataclass(frozen=True)
class CacheSnapshot:
    """One logical cache at one moment. ``None`` means the source does not know the value."""

    name: str
    source: str
    hits: int = 0
    misses: int = 0
    puts: int = 0
    removals: int = 0
    evictions: int = 0
    expirations: int = 0
    size: int | None = None
    memory_bytes: float | None = None
    memory_limit_bytes: float | None = None
    max_entries: int | None = None
    errors: Mapping[tuple[str, str], int] = field(default_factory=dict)
    cleanups: Mapping[str, int] = field(default_factory=dict)
    cleanup_removed: int = 0
    cleanup_duration: HistogramSnapshot | None = None
    last_cleanup_timestamp: float | None = None
    latency: Mapping[str, HistogramSnapshot] = field(default_factory=dict)
    counts_known: bool = True
    """False for sources that see a cache's contents but not its traffic (the Redis key
    census): then the activity counters are not published at all rather than as zeros."""

    @property
    def gets(self) -> int:
        return self.hits + self.misses

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class SourceSnapshot:
    """The result of polling one source: its caches, any extra families, and whether it worked."""

    source: str
    up: bool
    timestamp: float
    duration_seconds: float
    caches: Sequence[CacheSnapshot] = ()
    extra_families: Sequence[Metric] = ()
    error: str | None = None


RENDERINGS = "_cachewatch_renderings"
"""The attribute of a frozen family that holds its encoded text, by format."""


def freeze(family: Metric) -> Metric:
    """Promise that ``family`` will not change again. The encoders then keep its encoded text
    on it, so that a source which hands the same object to the next scrape (the values it was
    made from did not change: most of a Redis server's INFO between two scrapes) costs one
    dictionary look-up to encode instead of a pass over its samples."""
    family.__dict__[RENDERINGS] = {}
    return family


def renderings(family: Metric) -> dict[str, str] | None:
    """The encoded text kept on a frozen family, by format; None when it is not frozen."""
    kept: dict[str, str] | None = family.__dict__.get(RENDERINGS)
    return kept


class FamilyCache:
    """Frozen families made from a key and kept until the key changes. A collector whose
    output moves once per sampler interval, or once per reload, then costs one comparison a
    scrape instead of building its families and encoding their samples again."""

    def __init__(self) -> None:
        self._kept: tuple[Hashable, tuple[Metric, ...]] | None = None

    def get(self, key: Hashable, make: Callable[[], Iterable[Metric]]) -> tuple[Metric, ...]:
        """The families of ``key``: those kept when it equals the last key, else ``make()``'s.
        ``key`` must say everything the families show (floats as their ``repr``: 0.0 equals
        -0.0 but is not spelt the same). Scrapes at once may both make them; neither waits."""
        kept = self._kept
        if kept is None or kept[0] != key:
            kept = self._kept = (key, tuple(freeze(family) for family in make()))
        return kept[1]
