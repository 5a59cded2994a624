"""Every metric cachewatch publishes: the only place where names, types, labels and help live.

Core per-cache metrics keep Micrometer's names so JVM and Python caches share one dashboard;
the rest carry the ``cachewatch_`` prefix. Everything else (collectors, rule and dashboard
generators, tests) refers to these specs instead of spelling a name again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

MetricType = Literal["counter", "gauge", "histogram"]

# Cache operations span ~100 ns (in-process dict) to seconds (a stalled Redis).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
CLEANUP_BUCKETS: tuple[float, ...] = (
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0,
)  # fmt: skip


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its exposition name, type, unit, label names and help text."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""

    @property
    def family_name(self) -> str:
        """The name prometheus_client wants: counters without their ``_total`` suffix."""
        if self.type == "counter" and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name

    @property
    def sample_name(self) -> str:
        """The name of the series as Prometheus stores it (counters with ``_total``)."""
        return self.name

    def family(self) -> Any:
        """A new, empty metric family for this spec, with label names preset.

        Typed ``Any`` because the three family classes' ``add_metric`` signatures differ.
        """
        labels = list(self.labels)
        if self.type == "counter":
            return CounterMetricFamily(self.family_name, self.help, labels=labels, unit=self.unit)
        if self.type == "gauge":
            return GaugeMetricFamily(self.name, self.help, labels=labels, unit=self.unit)
        return HistogramMetricFamily(self.name, self.help, labels=labels, unit=self.unit)


def _c(name: str, help: str, labels: Sequence[str] = (), unit: str = "") -> MetricSpec:
    return MetricSpec(name, "counter", help, tuple(labels), unit)


def _g(name: str, help: str, labels: Sequence[str] = (), unit: str = "") -> MetricSpec:
    return MetricSpec(name, "gauge", help, tuple(labels), unit)


def _h(name: str, help: str, labels: Sequence[str] = (), unit: str = "") -> MetricSpec:
    return MetricSpec(name, "histogram", help, tuple(labels), unit)


# --- per-cache activity (Micrometer names) ---------------------------------------------------
CACHE_GETS = _c("cache_gets_total", "Cache lookups, by result (hit or miss).", ("cache", "result"))
CACHE_PUTS = _c("cache_puts_total", "Entries written to the cache.", ("cache",))
CACHE_REMOVALS = _c("cache_removals_total", "Entries deleted explicitly.", ("cache",))
CACHE_EVICTIONS = _c(
    "cache_evictions_total", "Entries removed by the cache itself for capacity.", ("cache",)
)
CACHE_SIZE = _g("cache_size", "Entries in the cache now.", ("cache",))

# --- per-cache, cachewatch's own ---------------------------------------------------------------
EXPIRATIONS = _c("cachewatch_cache_expirations_total", "Entries removed by TTL.", ("cache",))
MEMORY = _g(
    "cachewatch_cache_memory_bytes",
    "Memory held by the cache's entries (exact where the source knows it, else estimated "
    "from samples).",
    ("cache",),
    "bytes",
)
MEMORY_LIMIT = _g(
    "cachewatch_cache_memory_limit_bytes", "Configured memory limit of the cache.", ("cache",),
    "bytes",
)  # fmt: skip
MAX_ENTRIES = _g("cachewatch_cache_max_entries", "Configured entry limit of the cache.", ("cache",))
OPERATION_DURATION = _h(
    "cachewatch_cache_operation_duration_seconds",
    "Latency of cache operations (in-process mappings time a sample of operations).",
    ("cache", "operation"),
    "seconds",
)
ERRORS = _c(
    "cachewatch_cache_errors_total",
    "Failed cache operations, by exception class.",
    ("cache", "operation", "error"),
)
CLEANUPS = _c("cachewatch_cache_cleanups_total", "Cleanup runs, by trigger.", ("cache", "trigger"))
CLEANUP_REMOVED = _c(
    "cachewatch_cache_cleanup_removed_entries_total", "Entries removed by cleanups.", ("cache",)
)
CLEANUP_DURATION = _h(
    "cachewatch_cache_cleanup_duration_seconds", "Time spent in cleanup runs.", ("cache",),
    "seconds",
)  # fmt: skip
LAST_CLEANUP = _g(
    "cachewatch_cache_last_cleanup_timestamp_seconds",
    "Unix time of the last cleanup run.",
    ("cache",),
    "seconds",
)

# --- analysis: trends and forecasts ----------------------------------------------------------
HIT_RATIO = _g("cachewatch_cache_hit_ratio", "Hit ratio over the trend window.", ("cache",))
MEMORY_GROWTH = _g(
    "cachewatch_cache_memory_growth_bytes_per_second",
    "Least-squares slope of the cache's memory over the trend window.",
    ("cache",),
    "bytes_per_second",
)
SIZE_GROWTH = _g(
    "cachewatch_cache_size_growth_per_second",
    "Least-squares slope of the cache's entries over the trend window.",
    ("cache",),
)
HIT_RATIO_CHANGE = _g(
    "cachewatch_cache_hit_ratio_change_per_hour",
    "Least-squares slope of the hit ratio over the trend window, per hour.",
    ("cache",),
)
MEMORY_FULL = _g(
    "cachewatch_cache_memory_full_seconds",
    "Forecast time until the cache's memory limit is reached; absent when not growing.",
    ("cache",),
    "seconds",
)

CLEANUPS_PER_HOUR = _g(
    "cachewatch_cache_cleanups_per_hour",
    "Cleanup runs per hour over the trend window.",
    ("cache",),
)
HOST_MEMORY_TOTAL = _g(
    "cachewatch_host_memory_total_bytes", "Physical memory of the host.", (), "bytes"
)
HOST_MEMORY_AVAILABLE = _g(
    "cachewatch_host_memory_available_bytes",
    "Memory of the host available to new allocations without swapping.",
    (),
    "bytes",
)
PROCESS_MEMORY = _g(
    "cachewatch_process_memory_rss_bytes", "Resident memory of the exporting process.", (),
    "bytes",
)  # fmt: skip
CACHES_MEMORY_SHARE = _g(
    "cachewatch_caches_memory_share_ratio",
    'Share of memory held by the watched caches: scope="process" is the in-process caches '
    'against this process\'s resident memory, scope="host" every cache against host memory.',
    ("scope",),
)
LAST_SAMPLE = _g(
    "cachewatch_analysis_last_sample_timestamp_seconds",
    "Unix time of the analysis's last sample of the caches.",
    (),
    "seconds",
)

# --- analysis: alerts and health -------------------------------------------------------------
ALERT_ACTIVE = _g(
    "cachewatch_alert_active",
    "The exporter's own alert state: 1 while the alert fires.",
    ("alertname", "cache", "severity"),
)
ALERT_THRESHOLD = _g(
    "cachewatch_alert_threshold", "Configured alert thresholds.", ("alertname", "severity")
)
ALERT_TRANSITIONS = _c(
    "cachewatch_alert_transitions_total",
    "Alert state transitions.",
    ("alertname", "severity", "state"),
)
HEALTH_CHECK_OK = _g("cachewatch_health_check_ok", "1 when the health check passes.", ("check",))

# --- the exporter itself ---------------------------------------------------------------------
SOURCE_UP = _g("cachewatch_source_up", "1 when the last poll of the source worked.", ("source",))
SOURCE_POLL_DURATION = _g(
    "cachewatch_source_poll_duration_seconds", "Duration of the source's last poll.",
    ("source",), "seconds",
)  # fmt: skip
SOURCE_ERRORS = _c("cachewatch_source_errors_total", "Failed polls of the source.", ("source",))
CACHES_DROPPED = _c(
    "cachewatch_cache_names_dropped_total",
    'Cache registrations folded into cache="other" because the cache-name limit was reached.',
)
BUILD_INFO = _g("cachewatch_build_info", "Always 1; the version that runs.", ("version",))

ALL: tuple[MetricSpec, ...] = tuple(
    v for v in list(globals().values()) if isinstance(v, MetricSpec)
)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in ALL}

OTHER_CACHE = "other"
"""The ``cache`` label value that absorbs names beyond the cardinality limit."""


def families(specs: Iterable[MetricSpec]) -> dict[str, Any]:
    """Fresh families for several specs, keyed by spec name."""
    return {spec.name: spec.family() for spec in specs}
